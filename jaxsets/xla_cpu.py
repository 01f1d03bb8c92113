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
