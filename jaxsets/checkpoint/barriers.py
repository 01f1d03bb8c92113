"""Several hosts (processes) wait for each other around the checkpoint steps that change files,
and resume from the same step. With one process every function here does nothing.

JAX's own multihost utilities, which Orbax's `sync_global_processes` and
`broadcast_one_to_all` call with Orbax's default settings, so this module needs no Orbax.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxsets.errors import UserError

_barriers = 0


def barrier(name: str) -> None:
  """Returns once every process has reached the barrier `name`."""
  global _barriers
  if jax.process_count() > 1:
    _barriers += 1  # each barrier name is used once
    multihost_utils.sync_global_devices(f"{name}_{_barriers}")


def agree_across_processes(step: int) -> None:
  """Every host must resume from the same step, or they would run different programs."""
  if jax.process_count() > 1 and int(multihost_utils.broadcast_one_to_all(
      np.int64(step), is_source=jax.process_index() == 0)) != step:
    raise UserError(f"hosts restored different checkpoint steps (this one {step}); check that "
                    "every host sees the same files in the workdir")
