"""train_baseline: the driver that trains a classifier on real data only, in chunks of the
same compiled scan so a progress bar can follow it."""
from __future__ import annotations

import math

import jax
from jax.sharding import Mesh

from jaxsets.classifier.config import ClassifierConfig
from jaxsets.classifier.state import ClassifierState, init_state
from jaxsets.classifier.train import baseline_chunk, empty_support
from jaxsets.data.device import put_on_devices
from jaxsets.data.types import ImageSet
from jaxsets.errors import UserError


def chunk_size(total: int, parts: int = 10) -> int:
  """The largest divisor of `total` that is at most total / parts, so every chunk has one
  shape (one compile). 300 -> 30, 40 -> 4, 7 -> 1."""
  limit = max(1, total // parts)
  return max(d for d in range(1, limit + 1) if total % d == 0)


def check_batch(cfg: ClassifierConfig, mesh: Mesh) -> None:
  if cfg.batch_size % mesh.size:
    raise UserError(f"classifier.batch_size={cfg.batch_size} must be a multiple of the "
                    f"{mesh.size} devices: use {math.ceil(cfg.batch_size / mesh.size) * mesh.size}.")


def train_baseline(train: ImageSet, num_classes: int, key: jax.Array, *, cfg: ClassifierConfig,
                   mesh: Mesh, progress: bool = False) -> tuple[ClassifierState, list[float]]:
  """Trains cfg.model from scratch on `train` for cfg.baseline_steps steps.

  Returns the state (replicated over `mesh`) and the mean loss of each chunk."""
  check_batch(cfg, mesh)
  k_init, k_train = jax.random.split(key)
  state = init_state(k_init, cfg, train.images.shape[1:], num_classes, mesh)
  real = put_on_devices(train, mesh)
  support = empty_support(train.images.shape[1:], mesh.size)
  size = chunk_size(cfg.baseline_steps)
  bar = None
  if progress:
    from tqdm import tqdm
    bar = tqdm(total=cfg.baseline_steps, desc=f"baseline {cfg.model}", unit="step")
  chunk_losses = []
  for first in range(0, cfg.baseline_steps, size):
    state, losses = baseline_chunk(state, real, support, k_train, first, cfg=cfg,
                                   num_steps=size, mesh=mesh)
    if bar is not None:  # the only host read per chunk: one float for the bar
      chunk_losses.append(float(losses.mean()))
      bar.update(size)
      bar.set_postfix(loss=f"{chunk_losses[-1]:.3f}")
    else:
      chunk_losses.append(losses.mean())
  if bar is not None:
    bar.close()
  return state, [float(l) for l in chunk_losses]
