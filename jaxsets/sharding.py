"""Data parallelism the current way: one-axis Mesh, batch sharded along "data", params replicated.

`jit` inserts the all-reduce where a replicated result depends on sharded data, so no stage
needs pmap. Every stage takes a mesh so tests can compare 1 device against 4 fake devices.
"""
from __future__ import annotations

from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A one-axis mesh over `devices` (default: every device of every process)."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split across the mesh; other axes whole."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def padded_batch_size(batch: int, mesh: Mesh) -> int:
  """The smallest multiple of the device count that holds `batch` items."""
  n = mesh.size
  return -(-batch // n) * n


def replicate(tree, mesh: Mesh):
  """Puts every leaf of `tree` on every device of `mesh`."""
  return jax.device_put(tree, replicated(mesh))


def shard_batch(tree, mesh: Mesh):
  """Splits the leading axis of every leaf of `tree` across `mesh` (must divide evenly)."""
  return jax.device_put(tree, batch_sharding(mesh))
