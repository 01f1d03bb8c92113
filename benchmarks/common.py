"""Shared by the benchmark scripts: timing with block_until_ready, a description of the machine."""
from __future__ import annotations

import os
import platform
import sys
import time

# Benchmarks run from a checkout without installing: make `import jaxsets` find the package.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def timed(fn):
  """(fn()'s result, seconds), waiting for every device computation in it to finish."""
  import jax
  start = time.perf_counter()
  out = jax.block_until_ready(fn())
  return out, time.perf_counter() - start


def machine() -> dict:
  import jax
  return {"backend": jax.default_backend(), "devices": jax.device_count(),
          "platform": platform.platform(), "cpu_count": os.cpu_count(), "jax": jax.__version__}
