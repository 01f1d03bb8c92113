"""How fast a [1280, 5120] float32 kernel is copied into its transposed [5120, 1280] layout on
this CPU, one thread: numpy's plain copy, slabs of k source rows (what hf_weights does, k = 16),
square tiles, and XLA's transpose. `python studies/issue16/transpose_speed.py`"""
import time

import jax
import numpy as np

src = np.random.default_rng(0).standard_normal((1280, 5120)).astype(np.float32)
out = np.zeros((5120, 1280), np.float32)


def slabs(k):
  for r in range(0, src.shape[0], k):
    out[:, r:r + k] = src[r:r + k].T


def tiles(k):
  for r in range(0, src.shape[0], k):
    for c in range(0, src.shape[1], k):
      out[c:c + k, r:r + k] = src[r:r + k, c:c + k].T


def plain():
  out[...] = src.T


def timed(f, reps=5):
  f()
  start = time.perf_counter()
  for _ in range(reps):
    f()
  return (time.perf_counter() - start) / reps


for name, f in [("plain", plain)] + [(f"slab{k}", lambda k=k: slabs(k)) for k in (8, 16, 32, 64)] \
    + [(f"tiles{k}", lambda k=k: tiles(k)) for k in (64, 128, 256)]:
  dt = timed(f)
  assert np.array_equal(out, src.T)
  print(f"{name:8s} {dt * 1e3:6.1f} ms  {src.nbytes / dt / 1e9:5.2f} GB/s")
transpose, x = jax.jit(lambda a: a.T), jax.device_put(src)
dt = timed(lambda: transpose(x).block_until_ready())
print(f"{'xla':8s} {dt * 1e3:6.1f} ms  {src.nbytes / dt / 1e9:5.2f} GB/s")
