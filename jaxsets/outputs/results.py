"""results.json, and the conversion that lets numpy / JAX values into JSON."""
from __future__ import annotations

import os

import numpy as np

from jaxsets import atomic
from jaxsets.distributed import is_writer


def jsonable(value):
  """Plain Python for json: numpy/JAX scalars and arrays become numbers and lists, tuples lists.

  The loop hands over whatever the metrics came out as (np.float32, 0-d jax.Array, ...); json
  would refuse them and lose the run's results at the very last step.
  """
  if isinstance(value, dict):
    return {str(k): jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [jsonable(v) for v in value]
  if isinstance(value, (str, bool, int, float)) or value is None:
    return value
  if isinstance(value, (np.generic, np.ndarray)) or hasattr(value, "__array__"):
    return np.asarray(value).tolist()
  return value  # let json raise with its own message for anything else


def write_results(workdir: str, results: dict) -> str:
  """Writes workdir/results.json atomically; returns its path. Only process 0 of a run over
  several hosts writes (the others return the path at once)."""
  path = os.path.join(workdir, "results.json")
  if not is_writer():
    return path
  os.makedirs(workdir, exist_ok=True)
  atomic.write_json(path, jsonable(results))
  return path
