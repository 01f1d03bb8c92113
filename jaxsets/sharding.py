"""Data parallelism the current way: one-axis Mesh, batch sharded along "data", params replicated.

`jit` inserts the collectives where a replicated result depends on sharded data, so no stage
needs pmap. Every stage takes a mesh so tests can compare 1 device against 4 fake devices.

Sums of floats across devices are the exception: an all-reduce adds the per-device parts in
an order that its implementation picks (in-process on one host, gloo's ring across hosts), so
the same program gave other last bits on 2 processes x 2 devices than on 1 x 4. Stages that
add floats over a sharded batch do it in `shard_map` with `fixed_order_sum`, which only
copies between devices and adds in device order: every layout gives the same bits (on CPU
given the same XLA thread pool per process, see docs/multihost.md).

Several hosts (jaxsets.distributed): the mesh spans every process's devices. Every process holds
the same host data (same config, same seed), and `device_put` onto a global sharding keeps only
this process's shards, so each host feeds and computes its own part of a batch. A result that
is split over hosts is read on the host with `to_host`, never `np.asarray`.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
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


def _abstract_mesh(x):
  """The mesh `x` lies on, also for a value traced inside jit (the abstract mesh its inputs came
  on, from jax.typeof); None or an empty mesh for one device or plain numpy."""
  return getattr(getattr(jax.typeof(x), "sharding", None), "mesh", None)


def mesh_of(x):
  """The mesh over whose DATA_AXIS the leading axis of `x` can be split (a concrete array or a
  value traced inside jit). None on one device, on a mesh without DATA_AXIS (or of size 1),
  inside a shard_map over DATA_AXIS (each device already holds its own whole rows: the
  environments split over the mesh), or when the rows do not divide evenly over it."""
  mesh = _abstract_mesh(x)
  if mesh is None or DATA_AXIS not in mesh.axis_names or DATA_AXIS in mesh.manual_axes:
    return None
  size = dict(mesh.shape)[DATA_AXIS]
  if size == 1 or not jnp.ndim(x) or jnp.shape(x)[0] % size:
    return None
  return mesh


def gather_whole(tree):
  """Inside jit: every leaf that lies on a mesh, constrained to be whole on each of its devices
  (an all-gather: copies only). For small data (a PPO trajectory) whose float sums should be
  local, and so the same on any layout, rather than all-reduced. Other leaves as they are."""
  def whole(x):
    mesh = _abstract_mesh(x)
    if mesh is None or mesh.empty:
      return x
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P()))
  return jax.tree.map(whole, tree)


def fixed_order_sum(tree, axis_name: str = DATA_AXIS):
  """Inside `shard_map` over `axis_name`: the sum over its D devices of every (float) leaf,
  the same on every device, in place of `lax.psum`. Bit-identical on any layout of those devices
  over processes, because only copies cross devices and the adding is done locally in device
  order, ((x_0 + x_1) + x_2) + ...: all_to_all hands device i the i-th 1/D of everyone's
  flattened tree, device i adds those D pieces, all_gather puts the sums together. The same
  traffic as a ring all-reduce, and no device holds D copies of the tree."""
  d = jax.lax.axis_size(axis_name)
  if d == 1:
    return tree
  flat, unravel = ravel_pytree(tree)                                  # [S]
  size = flat.shape[0]
  cols = -(-size // d)
  pieces = jnp.pad(flat, (0, d * cols - size)).reshape(d, cols)      # row j goes to device j
  got = jax.lax.all_to_all(pieces, axis_name, 0, 0, tiled=True)      # [D, cols]: row j from device j
  total = got[0]
  for j in range(1, d):  # XLA does not reassociate float adds: this order is the order
    total = total + got[j]
  return unravel(jax.lax.all_gather(total, axis_name, tiled=True)[:size])


def _is_key(x) -> bool:
  return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def put(leaf, target: jax.sharding.Sharding):
  """jax.device_put of one leaf that also works onto devices of several hosts (see above), and
  on a traced value (under jit or eval_shape), where it states the placement."""
  if target.is_fully_addressable:
    return jax.device_put(leaf, target)
  if _is_key(leaf):
    # device_put refuses typed keys onto devices of other processes; their raw data moves fine.
    return jax.random.wrap_key_data(put(jax.random.key_data(leaf), target),
                                    impl=jax.random.key_impl(leaf))
  concrete = isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer)
  if concrete and leaf.is_fully_addressable:
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
