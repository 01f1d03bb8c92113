"""Shared by the benchmark scripts: timing (JAX and PyTorch), the machine, one result entry.

Every steady figure is the median of `repeats` calls after the warm-up call(s); the first call's
time minus the steady median is reported as compile (or, for PyTorch, first-call) overhead.
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time

# Benchmarks run from a checkout without installing: make `import jaxsets` find the package.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# jaxsets.generator.hf sets USE_TORCH=0 by default (the package never needs PyTorch); the peers
# here do, and transformers reads the flag once, at import: say "yes" before anyone imports it.
os.environ.setdefault("USE_TORCH", "1")


def timed(fn):
  """(fn()'s result, seconds), waiting for every device computation in it to finish."""
  import jax
  start = time.perf_counter()
  out = jax.block_until_ready(fn())
  return out, time.perf_counter() - start


def measure(fn, repeats: int, *, warmup: int = 1, sync=None) -> dict:
  """Times fn(i) for i = 0 .. warmup + repeats - 1 (a new i each call: a new seed, prompt...).

  `sync(result)` waits for the work to finish (default: jax.block_until_ready; PyTorch on the
  CPU is synchronous). Returns first_s (the first call: compile + run), compile_s (first minus
  the steady median), steady_s (median of the timed calls) and all_s."""
  import jax
  sync = sync or jax.block_until_ready
  times = []
  for i in range(warmup + repeats):
    start = time.perf_counter()
    sync(fn(i))
    times.append(time.perf_counter() - start)
  steady = statistics.median(times[warmup:])
  return {"first_s": times[0], "compile_s": max(times[0] - steady, 0.0), "steady_s": steady,
          "all_s": times[warmup:]}


def measure_sides(sides: dict, repeats: int, *, warmup: int = 1) -> dict:
  """Like `measure` for several implementations of the same work, timed in turn (call i of every
  side, then call i + 1 ...): the machine is shared, and interleaving exposes every side to the
  same background load instead of giving one side a quiet minute. sides: {name: (fn, sync)} or
  {name: (fn, sync, setup)}, where setup(i) prepares call i untimed (e.g. refills a buffer)."""
  import jax
  times = {name: [] for name in sides}
  for i in range(warmup + repeats):
    for name, (fn, sync, *setup) in sides.items():
      sync = sync or jax.block_until_ready
      if setup:
        setup[0](i)
      start = time.perf_counter()
      sync(fn(i))
      times[name].append(time.perf_counter() - start)
  out = {}
  for name, ts in times.items():
    steady = statistics.median(ts[warmup:])
    out[name] = {"first_s": ts[0], "compile_s": max(ts[0] - steady, 0.0), "steady_s": steady,
                 "all_s": ts[warmup:]}
  return out


def no_sync(x):
  return x


def speedup(jaxsets_s: float, peer_s: float) -> float:
  """> 1 when jaxsets takes less time than the peer for the same work."""
  return peer_s / jaxsets_s


def entry(name: str, jaxsets: dict, peer: dict, **extra) -> dict:
  """One benchmark row. Both sides carry steady_s for the same unit of work; a peer that could not
  run (`skipped_peer`) has none, and the row no speedup."""
  s = speedup(jaxsets["steady_s"], peer["steady_s"]) if "steady_s" in peer else None
  return {"name": name, "jaxsets": jaxsets, "peer": peer, "speedup": s, **extra}


PEER_PACKAGES = ("torch", "stable_baselines3", "gymnasium")  # the bench extra; CI has none


def missing_peers(*names: str) -> list[str]:
  """Which of `names` (default: the bench extra's packages) are not installed."""
  import importlib.util
  return [n for n in (names or PEER_PACKAGES) if importlib.util.find_spec(n) is None]


def skipped_peer(name: str, missing: list[str]) -> dict:
  """The peer side of a row whose peer cannot run here: the jaxsets side is still measured."""
  return {"name": name, "skipped": f"not installed: {', '.join(missing)} "
                                   "(pip install -e '.[bench]')"}


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def machine() -> dict:
  import jax
  info = {"backend": jax.default_backend(), "devices": jax.device_count(),
          "platform": platform.platform(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
          "python": platform.python_version(), "jax": jax.__version__,
          "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
          # The cores are shared with other work: the load says how quiet the run was.
          "load_average_1_5_15min": list(os.getloadavg())}
  try:
    import torch
    info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
  except ImportError:
    info["torch"] = None
  return info
