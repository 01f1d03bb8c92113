"""Datasets held on the devices, sharded along the batch axis, with a validity mask.

Row counts are padded to a multiple of the device count (and of an evaluation chunk) so every
shape is fixed; padded rows have mask False and are never sampled or scored.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxsets import sharding
from jaxsets.data.types import ImageSet


class DeviceSet(NamedTuple):
  """images uint8 [N, H, W, C], labels int32 [N], mask bool [N] (False = padding)."""
  images: jax.Array
  labels: jax.Array
  mask: jax.Array


def pad_rows(images: np.ndarray, labels: np.ndarray, rows: int):
  """Host arrays padded with zero rows to `rows`; returns (images, labels, mask)."""
  n = len(labels)
  if n > rows:
    raise ValueError(f"{n} rows do not fit in {rows}")
  mask = np.arange(rows) < n
  images = np.concatenate([images, np.zeros((rows - n,) + images.shape[1:], images.dtype)])
  labels = np.concatenate([labels, np.zeros(rows - n, labels.dtype)])
  return images, labels, mask


def put_on_devices(data: ImageSet, mesh: Mesh, *, multiple_of: int = 1,
                   rows: int | None = None) -> DeviceSet:
  """`data` padded to `rows` (default: the next multiple of lcm(devices, multiple_of)) and
  sharded along the batch axis of `mesh`."""
  step = int(np.lcm(mesh.size, multiple_of))
  rows = -(-max(len(data), 1) // step) * step if rows is None else rows
  if rows % mesh.size:
    raise ValueError(f"rows={rows} is not a multiple of the {mesh.size} devices")
  images, labels, mask = pad_rows(data.images, data.labels, rows)
  return DeviceSet(*sharding.shard_batch((images, labels, mask), mesh))


def whole_on_every_device(data: ImageSet, mesh: Mesh) -> DeviceSet:
  """`data` padded as put_on_devices pads it, but replicated rather than split over `mesh`: for
  stages in which each device works on its own whole copy (environments split over the mesh)."""
  rows = sharding.padded_batch_size(max(len(data), 1), mesh)
  return DeviceSet(*sharding.replicate(pad_rows(data.images, data.labels, rows), mesh))


def valid_first(mask: jax.Array) -> jax.Array:
  """Row indices with the valid rows first, in order: int32 [N]. Lets a uniform draw over the
  n_valid rows be an index into a fixed-shape array, whatever the mask looks like."""
  return jnp.argsort(~mask, stable=True).astype(jnp.int32)


def sample_union(key: jax.Array, a: DeviceSet, b: DeviceSet, batch: int):
  """A minibatch drawn uniformly with replacement from the valid rows of a and b together.

  Returns images uint8 [batch, H, W, C], labels int32 [batch]. Fixed shapes whatever the
  masks hold, so a growing support set (b) never recompiles.
  """
  n_a = jnp.sum(a.mask, dtype=jnp.int32)
  n_b = jnp.sum(b.mask, dtype=jnp.int32)
  u = jax.random.randint(key, (batch,), 0, jnp.maximum(n_a + n_b, 1))
  from_a = u < n_a
  ia = valid_first(a.mask)[jnp.clip(u, 0, a.mask.shape[0] - 1)]
  ib = valid_first(b.mask)[jnp.clip(u - n_a, 0, b.mask.shape[0] - 1)]
  images = jnp.where(from_a[:, None, None, None], a.images[ia], b.images[ib])
  labels = jnp.where(from_a, a.labels[ia], b.labels[ib])
  return images, labels


def sample(key: jax.Array, a: DeviceSet, batch: int):
  """A minibatch drawn uniformly with replacement from the valid rows of `a`."""
  n = jnp.maximum(jnp.sum(a.mask, dtype=jnp.int32), 1)
  idx = valid_first(a.mask)[jax.random.randint(key, (batch,), 0, n)]
  return a.images[idx], a.labels[idx]
