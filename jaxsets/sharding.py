"""Data parallelism the current way: one-axis Mesh, batch sharded along "data", params replicated.

`jit` inserts the all-reduce where a replicated result depends on sharded data, so no stage
needs pmap. Every stage takes a mesh so tests can compare 1 device against 4 fake devices.

Several hosts (jaxsets.distributed): the mesh spans every process's devices. Every process holds
the same host data (same config, same seed), and `device_put` onto a global sharding keeps only
this process's shards, so each host feeds and computes its own part of a batch. A result that
is split over hosts is read on the host with `to_host`, never `np.asarray`.
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


def _is_key(x) -> bool:
  return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def put(leaf, target: jax.sharding.Sharding):
  """jax.device_put of one leaf that also works onto devices of several hosts (see above)."""
  if target.is_fully_addressable:
    return jax.device_put(leaf, target)
  if _is_key(leaf):
    # device_put refuses typed keys onto devices of other processes; their raw data moves fine.
    return jax.random.wrap_key_data(put(jax.random.key_data(leaf), target),
                                    impl=jax.random.key_impl(leaf))
  if isinstance(leaf, jax.Array) and leaf.is_fully_addressable:
    # A value on this host's devices only (e.g. weights just loaded). Every host holds the same
    # one, so going through numpy lets each keep its own shards; JAX will not move it across
    # hosts itself (no cross-host transfers on CPU).
    leaf = np.asarray(leaf)
  return jax.device_put(leaf, target)


def replicate(tree, mesh: Mesh):
  """Puts every leaf of `tree` on every device of `mesh`."""
  target = replicated(mesh)
  return jax.tree.map(lambda x: put(x, target), tree)


def shard_batch(tree, mesh: Mesh):
  """Splits the leading axis of every leaf of `tree` across `mesh` (must divide evenly)."""
  target = batch_sharding(mesh)
  return jax.tree.map(lambda x: put(x, target), tree)


def to_host(x) -> np.ndarray:
  """The whole value of `x` as numpy on this host, also when its shards lie on several hosts
  (then every process must call this at the same point: it gathers across processes)."""
  if not isinstance(x, jax.Array) or x.is_fully_addressable:
    return np.asarray(x)
  if x.is_fully_replicated:
    return np.asarray(x.addressable_data(0))
  from jax.experimental import multihost_utils
  if _is_key(x):
    raise TypeError("to_host of a typed key split over hosts: gather jax.random.key_data(x)")
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))
