"""XLA:CPU settings that jaxsets makes before JAX starts its CPU backend.

jaxlib 0.10's XLA:CPU hands many fusions (elementwise, reductions, small dots and convolutions)
to the YNNPACK library. On jaxsets' CPU models they run slower than XLA's own kernels. The
embedded UNet's training step takes 122 ms instead of 165 ms without them, and the main job
8 min 58 s instead of 11 min 7 s (studies/issue18/README.md). The flag only affects CPU work.
GPU and TPU programs are unchanged.

A user's own setting of the flag in XLA_FLAGS is left as it is, whatever its value: e.g.
`--xla_cpu_experimental_ynn_fusion_type=-reduce` keeps XLA's default list but for reductions.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import MutableMapping

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"


def prefer_xla_kernels(environ: MutableMapping[str, str] = os.environ) -> bool:
  """Adds `YNN_FLAG=` (no YNNPACK fusions) to XLA_FLAGS unless it names the flag already.

  Must run before the first JAX computation: XLA reads XLA_FLAGS once, when the backend starts.
  Returns whether the flag was added.
  """
  flags = environ.get("XLA_FLAGS", "")
  if YNN_FLAG.lstrip("-") in flags:
    return False
  environ["XLA_FLAGS"] = f"{flags} {YNN_FLAG}=".strip()
  return True


def warn_if_started(added: bool) -> None:
  """Warns when the flag was just added but JAX had already started its backends (jax imported
  and used before jaxsets): XLA read XLA_FLAGS then, so the flag does nothing in this process."""
  if not added or "jax" not in sys.modules:  # jax not imported yet: nothing can have started
    return
  try:
    from jax._src import xla_bridge
    started = xla_bridge.backends_are_initialized()
  except (ImportError, AttributeError):  # another jax: say nothing rather than guess
    return
  if started:
    warnings.warn(
        "jaxsets was imported after JAX had started, so its XLA:CPU setting (no YNNPACK "
        "fusions; jaxsets' CPU work runs about 20% faster without them) does not apply in this "
        "process. Import jaxsets before the first JAX computation, or set XLA_FLAGS="
        f"{YNN_FLAG}= yourself. GPU and TPU work is unaffected.", RuntimeWarning, stacklevel=3)
