"""Device placement for the public API: the one-axis data-parallel mesh every stage uses."""
from __future__ import annotations

from jaxsets import sharding


def make_mesh(devices=None):
  """A one-axis `jax.sharding.Mesh` named "data" over `devices` (default: every device of every
  process). Batches are split along it; parameters are replicated.

  Example:
    >>> import jaxsets
    >>> jaxsets.make_mesh().axis_names
    ('data',)
  """
  return sharding.make_mesh(devices)


def replicate(tree, mesh=None):
  """Puts every array of `tree` (a state, a pytree of params) on every device of `mesh`.

  Call it on the state you pass into your own jitted step the first time: the step's outputs
  come back replicated over the mesh, and inputs placed the same way on the first call keep
  jax.jit from compiling the step a second time for a new placement.

  Example:
    >>> import jax, jaxsets
    >>> agent = jaxsets.replicate(jaxsets.init_agent(jax.random.key(0), 22, 4, 10))
    >>> agent.params is not None
    True
  """
  return sharding.replicate(tree, mesh or sharding.make_mesh())
