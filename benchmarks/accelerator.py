"""The accelerator benchmark: jaxsets at real size on whatever accelerator is present.

  python benchmarks/accelerator.py --out results.json [--markdown table.md] [--tiny]
                                   [--time-limit 470] [--only sampler_jaxsets,...]

Measures, at real size (SD 2.1-base with random weights in its hub layout, 512 px, 25 DPM-Solver
steps, guidance 7.5, bfloat16; batches 40, 8 and 1):
  sampler_jaxsets         jaxsets' sampler: images/s, compile time, peak device memory, FLOPs
  sampler_torch_pipeline  diffusers' PyTorch StableDiffusionPipeline on the same GPU (float16, SDPA)
  rl_step_jaxsets         one RL step of configs/cifar10_sd.py (4 envs x 10 images, ResNet-20
                          fine-tunes; CIFAR-shaped random data, no TFDS) + the baseline's step
  rl_step_authors         the authors' structure on the same GPU (peers/authors_loop.py)
  sampler_flax_pipeline   diffusers' FlaxStableDiffusionPipeline (jit=True: pmap, replicate/shard)
and from these: FLOP utilisation against the chip's bf16 peak, speedups, and the expected time of a
whole configs/cifar10_sd.py run. `--tiny` runs the same code with tiny models on the CPU.

Each section runs in its own process (a crash, an out-of-memory or a hang loses only that
section; device memory and its peak are the section's own) under a share of a global time limit,
and saves its figures as it goes, so the JSON is always written. Sections whose packages are
missing are recorded as skipped with the reason. Nothing here imports TensorFlow.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
os.environ.setdefault("USE_TF", "0")  # transformers must not import TensorFlow (absent on devices)


class _NoTensorFlow:
  """Makes `import tensorflow` fail as on the accelerator machines, which have none: libraries
  that use it only when present (tensorflow-probability's jax substrate, under distrax, copies
  TensorFlow's docstrings) take their TensorFlow-free path here too, and a --tiny run on a
  machine with TensorFlow proves the benchmark needs none. A lookup that only asks whether it is
  installed (importlib.util.find_spec, as torch._dynamo does) still gets a spec; loading it fails.
  Attempts to load it are counted, not hidden."""
  attempts = 0

  def find_spec(self, name, path=None, target=None):
    if name == "tensorflow" or name.startswith("tensorflow."):
      import importlib.machinery
      return importlib.machinery.ModuleSpec(name, self)
    return None

  def create_module(self, spec):
    _NoTensorFlow.attempts += 1
    raise ModuleNotFoundError(f"No module named {spec.name!r} (blocked by "
                              "benchmarks/accelerator.py)", name=spec.name)

  def exec_module(self, module):  # never reached: create_module raises
    raise ModuleNotFoundError(module.__name__)


# name -> (module, function, packages it needs, share of the time limit, jax may use the accelerator)
# Shares (seconds at the default limit) follow what each needs at real size: SD compiles at 512 px
# take tens of seconds each; the RL step compiles the whole loop. Order is priority: the Flax
# pipeline, least needed for the targets, runs last and is the one a slow machine cuts short.
SECTIONS = {
    "sampler_jaxsets": ("accel_sampler", "jaxsets_sampler", (), 130, True),
    "sampler_torch_pipeline": ("accel_sampler", "torch_pipeline", ("torch", "diffusers"), 50, False),
    "rl_step_jaxsets": ("accel_rl_step", "jaxsets_step", (), 160, True),
    "rl_step_authors": ("accel_rl_step", "authors_step",
                        ("torch", "diffusers", "stable_baselines3", "gymnasium"), 50, False),
    "sampler_flax_pipeline": ("accel_sampler", "flax_pipeline", ("diffusers",), 80, True),
}
BUILD_LIMIT_S = 150  # the SD folder and the data, before the sections: nothing runs without them


def make_plan(tiny: bool, scratch: str) -> dict:
  """Every size the sections use. Real: what issue 16 asks for; tiny: seconds on a CPU."""
  name = "tiny" if tiny else "sd21base"
  common = {"tiny": tiny, "folder": os.path.join(scratch, f"sd_{name}_hub"),
            "data": os.path.join(scratch, f"cifar_like_{'8' if tiny else '32'}px"),
            "config": os.path.join(HERE, "..", "configs", "cifar10_sd.py")}
  if not tiny:
    return {**common, "size": 512, "steps": 25, "guidance": 7.5, "dtype": "bfloat16",
            "batches": [40, 1, 8], "repeats": 2, "sd_size": 512,
            "data_sizes": {"train_per_class": 100, "val_per_class": 500, "test_per_class": 10,
                           "size": 32},
            "overrides": []}
  return {**common, "size": 16, "steps": 2, "guidance": 7.5, "dtype": "float32",
          "batches": [2, 1], "repeats": 1, "sd_size": 16,
          "data_sizes": {"train_per_class": 4, "val_per_class": 2, "test_per_class": 2, "size": 8},
          "overrides": ["--config.data.image_size=8", "--config.classifier.model=small_cnn",
                        "--config.classifier.batch_size=8", "--config.classifier.finetune_steps=2",
                        "--config.classifier.baseline_steps=2", "--config.generator.dtype=float32",
                        "--config.generator.num_inference_steps=2", "--config.loop.budget=16",
                        "--config.loop.images_per_step=2", "--config.loop.eval_repeats=1",
                        "--config.agent.num_envs=2", "--config.agent.hidden_sizes=(16,)",
                        "--config.agent.minibatches=2"]}


class Part(dict):
  """A section's figures, written atomically to `path` at every save()."""

  def __init__(self, path: str):
    super().__init__()
    self.path = path

  def save(self) -> None:
    from jaxsets import atomic
    atomic.write_json(self.path, dict(self))


def run_child(section: str, plan_path: str, part_path: str) -> int:
  """The body of one section's process."""
  module, function, *_ = SECTIONS.get(section, ("accel_sd_folder", "build", (), 0, False))
  with open(plan_path) as f:
    plan = json.load(f)
  part, start = Part(part_path), time.time()
  part["status"] = "running"
  try:
    if section == "build":
      _build(plan, part)
    else:
      getattr(importlib.import_module(module), function)(plan, part)
    part["status"] = "skipped" if "skipped" in part else "ok"
  except Exception:  # noqa: BLE001  (recorded; the parent goes on with the next section)
    part["status"], part["error"] = "failed", traceback.format_exc()
    print(part["error"], file=sys.stderr, flush=True)
  part["wall_s"] = time.time() - start
  part["device"] = _device_kind(section)
  part["tensorflow_imported"] = "tensorflow" in sys.modules
  part["tensorflow_import_attempts_blocked"] = _NoTensorFlow.attempts
  part.save()
  return 0 if part["status"] != "failed" else 1


def _build(plan: dict, part) -> None:
  from accel_rl_step import write_cifar_like_folder
  from accel_sd_folder import build_folder
  start = time.perf_counter()
  part["sd"] = build_folder(plan["folder"], tiny=plan["tiny"])
  part["sd_build_s"] = time.perf_counter() - start
  start = time.perf_counter()
  part["data"] = write_cifar_like_folder(plan["data"], **plan["data_sizes"])
  part["data_build_s"] = time.perf_counter() - start


def _device_kind(section: str) -> str | None:
  if section in SECTIONS and SECTIONS[section][4] and "jax" in sys.modules:
    import jax
    return jax.devices()[0].device_kind
  if "torch" in sys.modules:
    import torch
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
  return None


def _child_env(section: str) -> dict:
  env = dict(os.environ, USE_TF="0", PYTHONUNBUFFERED="1")
  uses_accelerator_jax = section in SECTIONS and SECTIONS[section][4]
  if not uses_accelerator_jax:
    env["JAX_PLATFORMS"] = "cpu"  # jax only for host work here: the GPU's memory is torch's
  needs_torch = section in SECTIONS and "torch" in SECTIONS[section][2]
  env["USE_TORCH"] = "1" if needs_torch else "0"
  return env


def _run_section(section: str, plan_path: str, scratch: str, timeout: float) -> dict:
  part_path = os.path.join(scratch, f"part_{section}.json")
  if os.path.exists(part_path):
    os.remove(part_path)
  cmd = [sys.executable, os.path.abspath(__file__), "--child", section, "--plan", plan_path,
         "--part", part_path]
  start = time.time()
  try:
    proc = subprocess.run(cmd, env=_child_env(section), timeout=timeout)
    code = proc.returncode
  except subprocess.TimeoutExpired:
    code = "timeout"
  part = {}
  if os.path.exists(part_path):
    with open(part_path) as f:
      part = json.load(f)
  if code == "timeout":
    part["status"] = "timed_out"
    part["error"] = f"stopped at its time limit of {timeout:.0f} s; figures so far are kept"
  elif code != 0 and part.get("status") in (None, "running"):
    part["status"] = "failed"
    part.setdefault("error", f"the process exited with code {code} (killed? out of memory?)")
  part["section_wall_s"], part["time_limit_s"] = time.time() - start, timeout
  return part


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  if not any(isinstance(f, _NoTensorFlow) for f in sys.meta_path):
    sys.meta_path.insert(0, _NoTensorFlow())
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", help="where to write the JSON results")
  parser.add_argument("--markdown", default="", help="also write the tables as markdown here")
  parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU (CI)")
  parser.add_argument("--time-limit", type=float, default=0.0,
                      help="seconds for everything (default 470; --tiny 1500, for a busy CI machine)")
  parser.add_argument("--only", default="", help="comma-separated subset of " + ", ".join(SECTIONS))
  parser.add_argument("--scratch", default=os.path.join(tempfile.gettempdir(), "jaxsets_accel"),
                      help="the SD folder and the data are built here once")
  parser.add_argument("--child", help=argparse.SUPPRESS)
  parser.add_argument("--plan", help=argparse.SUPPRESS)
  parser.add_argument("--part", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    return run_child(args.child, args.plan, args.part)
  if not args.out:
    parser.error("--out FILE.json is required")
  only = [s for s in args.only.split(",") if s] or list(SECTIONS)
  unknown = sorted(set(only) - set(SECTIONS))
  if unknown:
    parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")

  from accel_report import finish, machine_info, markdown
  from jaxsets import atomic
  start = time.time()
  limit = args.time_limit or (1500.0 if args.tiny else 470.0)
  os.makedirs(args.scratch, exist_ok=True)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  plan = make_plan(args.tiny, args.scratch)
  plan_path = os.path.join(args.scratch, "plan.json")
  atomic.write_json(plan_path, plan)
  result = {"machine": machine_info(), "command": "python benchmarks/accelerator.py " + " ".join(argv),
            "tiny": args.tiny, "time_limit_s": limit, "plan": plan, "sections": {}}
  if os.environ.get("JAXSETS_ACCEL_COMMAND"):  # benchmarks/device/run_accelerator.sh's own line
    result["device_command"] = os.environ["JAXSETS_ACCEL_COMMAND"]

  def save():  # after every section: a run stopped from outside keeps what it measured
    result["wall_s"] = time.time() - start
    finish(result)
    atomic.write_json(args.out, result)
    if args.markdown:
      with atomic.atomic_path(args.markdown) as tmp, open(tmp, "w") as f:
        f.write(markdown(result))

  pending = [s for s in SECTIONS if s in only]
  shares = {s: SECTIONS[s][3] for s in pending}
  for section in ["build"] + pending:
    missing = [p for p in SECTIONS.get(section, (0, 0, ()))[2] if importlib.util.find_spec(p) is None]
    left = limit - (time.time() - start) - 5.0  # 5 s to write the results
    if missing:
      result["sections"][section] = {"status": "skipped", "skipped": f"not installed: {', '.join(missing)}"}
    elif left < 10.0:
      result["sections"][section] = {"status": "skipped", "skipped": "no time left in --time-limit"}
    else:
      # This section's share of what is left: time a section does not use goes to the later ones.
      remaining_shares = sum(shares[s] for s in shares if s not in result["sections"])
      timeout = (min(BUILD_LIMIT_S, left) if section == "build" else
                 left * shares[section] / remaining_shares)
      print(f"[accelerator] {section} (up to {timeout:.0f} s) ...", flush=True)
      result["sections"][section] = _run_section(section, plan_path, args.scratch, timeout)
      print(f"[accelerator] {section}: {result['sections'][section].get('status')} in "
            f"{result['sections'][section]['section_wall_s']:.0f} s", flush=True)
    save()
    if section == "build" and result["sections"]["build"].get("status") != "ok":
      for s in pending:
        result["sections"][s] = {"status": "skipped", "skipped": "the build section failed"}
      break  # nothing can run without the model and the data
  save()
  print(json.dumps(result.get("summary", {}), indent=2))
  failed = [s for s, p in result["sections"].items() if p.get("status") in ("failed", "timed_out")]
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
