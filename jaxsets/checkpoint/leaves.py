"""How a state pytree is stored: a nested dict of plain arrays keyed by each leaf's pytree path.

Any pytree (dicts, NamedTuples, flax struct dataclasses) then round-trips through the template's
own structure. Typed PRNG keys are stored as their raw `key_data`; each array's CRC32 is kept
beside it (in `meta`) so that silent corruption is caught on restore.
"""
from __future__ import annotations

import zlib

import jax
import numpy as np

from jaxsets.errors import UserError
from jaxsets.sharding import put


def named_leaves(tree):
  """[(name, leaf)] with names like 'agent.params.w' from each leaf's pytree path."""
  out, seen = [], set()
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    parts = [str(getattr(p, "key", getattr(p, "name", getattr(p, "idx", p)))) for p in path]
    name = ".".join(parts)
    if name in seen or any("/" in p or "." in p for p in parts):
      raise ValueError(f"state leaf {jax.tree_util.keystr(path)} cannot be named uniquely "
                       "for a checkpoint: avoid '.' and '/' in its keys")
    seen.add(name)
    out.append((name, leaf))
  return out


def nest(flat: dict) -> dict:
  """{'a.b': x} -> {'a': {'b': x}}: the tree Orbax stores."""
  nested = {}
  for name, value in flat.items():
    *parents, last = name.split(".")
    node = nested
    for p in parents:
      node = node.setdefault(p, {})
    node[last] = value
  return nested


def _is_key(leaf) -> bool:
  return jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key)


def _key_impl(leaf):
  if isinstance(leaf, jax.Array):
    return jax.random.key_impl(leaf)
  # An abstract key (jax.eval_shape) has no public accessor for its impl: match the dtype.
  for impl in ("threefry2x32", "rbg", "unsafe_rbg"):
    if jax.eval_shape(lambda: jax.random.key(0, impl=impl)).dtype == leaf.dtype:
      return impl
  raise ValueError(f"unknown PRNG key type {leaf.dtype}")


def to_storable(leaf, name):
  """What is saved for a state leaf: a jax or numpy array (keys as their raw data)."""
  if _is_key(leaf):
    leaf = jax.random.key_data(leaf)
  if isinstance(leaf, jax.Array):
    if jax.process_count() > 1 and leaf.is_fully_addressable:
      # On several hosts Orbax saves only global arrays; one held by this host alone (a key
      # made outside jit, say) is the same on every host, so it is stored as numpy.
      return np.asarray(leaf)
    return leaf  # immutable
  if isinstance(leaf, (np.ndarray, np.generic, bool, int, float)):
    return np.array(leaf)  # a copy: the async save may read it after the caller reuses `leaf`
  raise TypeError(f"state leaf {name!r} is a {type(leaf).__name__}; checkpoints hold arrays")


def _default_sharding():
  # One process: where jax puts arrays by default. Several: replicated, valid on every host.
  if jax.process_count() == 1:
    return jax.sharding.SingleDeviceSharding(jax.devices()[0])
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("all",))
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


def abstract(leaf):
  """What Orbax should restore for a template leaf: numpy stays numpy, jax keeps its sharding."""
  if _is_key(leaf):
    shape = jax.eval_shape(jax.random.key_data, leaf)
    sharding = getattr(leaf, "sharding", None)
    if not isinstance(sharding, jax.sharding.NamedSharding) or (
        jax.process_count() > 1 and sharding.is_fully_addressable):
      sharding = _default_sharding()
    # A NamedSharding names the keys' axes, which key_data shares (its extra last axis stays
    # whole): the raw data comes back where the keys live, e.g. split over the environments.
    return jax.ShapeDtypeStruct(shape.shape, shape.dtype, sharding=sharding)
  if isinstance(leaf, np.ndarray):
    return leaf
  if isinstance(leaf, (np.generic, bool, int, float)):
    return np.asarray(leaf)
  if isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct)):
    sharding = getattr(leaf, "sharding", None)
    if sharding is None or (jax.process_count() > 1 and sharding.is_fully_addressable):
      sharding = _default_sharding()  # restore host-local leaves replicated over every host
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)
  raise TypeError(f"template leaf of type {type(leaf).__name__}; use arrays or ShapeDtypeStruct")


def from_stored(value, leaf):
  """The restored array back as the template leaf's kind (a typed key, a Python scalar, ...)."""
  if _is_key(leaf):
    key = jax.random.wrap_key_data(value, impl=_key_impl(leaf))
    sharding = getattr(leaf, "sharding", None)
    return key if sharding is None else put(key, sharding)  # also onto other hosts' devices
  if isinstance(leaf, (bool, int, float)):
    return type(leaf)(value.item())
  if isinstance(leaf, np.generic):
    return np.asarray(value, leaf.dtype)[()]
  return value


def check_layout(step, saved: dict, named, *, partial: bool = False):
  """Orbax would cast dtypes and reshape numpy leaves silently: refuse any difference.
  partial: the template is a part of the saved state (its other leaves are not restored)."""
  want = {}
  for name, leaf in named:
    a = abstract(leaf)
    want[name] = (tuple(a.shape), np.dtype(a.dtype))
  have = {n: (tuple(m.shape), np.dtype(m.dtype)) for n, m in saved.items()}
  problems = [f"{n}: missing in checkpoint" for n in want if n not in have]
  if not partial:
    problems += [f"{n}: not in template" for n in have if n not in want]
  problems += [f"{n}: saved {have[n][1]}{list(have[n][0])}, template {w[1]}{list(w[0])}"
               for n, w in want.items() if n in have and have[n] != w]
  if problems:
    raise UserError(f"the state saved at step {step} does not fit this code's state ("
                    + "; ".join(problems[:8]) + (" ..." if len(problems) > 8 else "")
                    + "). The code or config changed since it was saved: use a new workdir.")


def crc(a):
  """CRC32 of the bytes, so silent corruption in an array is caught on restore."""
  if isinstance(a, jax.Array) and not a.is_fully_addressable:
    return None  # spread over hosts: no single process sees all of it
  return zlib.crc32(np.ascontiguousarray(np.asarray(a)).view(np.uint8).reshape(-1))
