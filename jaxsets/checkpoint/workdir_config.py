"""One config per workdir: config.json is written by the run's first Checkpointer, and a later
run with another config is refused, naming the keys that differ."""
from __future__ import annotations

import json
import os

from jaxsets.errors import UserError


def config_path(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "config.json")


def check_workdir_config(workdir: str, config: dict, ignore=()) -> None:
  """Refuses at once a workdir that holds a run of another config (UserError naming the keys);
  writes nothing. A Checkpointer checks again, and writes config.json, when it is made."""
  check_saved_config(config_path(workdir), config, tuple(ignore))


def check_saved_config(path: str, config: dict, ignore: tuple) -> bool:
  """Compares `config` with the one saved at `path`; returns whether one was saved."""
  try:
    new = json.loads(json.dumps(config))  # tuples become lists, as they will on disk
  except (TypeError, ValueError) as e:
    raise ValueError(f"the run config must be JSON-able: {e}") from e
  if not os.path.exists(path):
    return False
  old = _read(path)
  diffs = [(k, a, b) for k, a, b in _diff(old, new, "")
           if not any(k == i or k.startswith(i + ".") for i in ignore)]
  if diffs:
    lines = "; ".join(f"{k}: {a} -> {b}" for k, a, b in diffs)
    raise UserError(f"the workdir {os.path.dirname(path)} holds a run with a different config "
                    f"({lines}). Use a new workdir, or the same config to resume that run.")
  return True


def read_workdir_config(workdir: str) -> dict:
  """The config a run saved in `workdir` (config.json, as JSON: tuples are lists)."""
  path = config_path(workdir)
  if not os.path.isfile(path):
    raise UserError(f"{workdir!r} holds no run: {path} is missing (a run's workdir is the "
                    "folder given to `jaxsets run --workdir`).")
  return _read(path)


def _read(path: str) -> dict:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read {path} ({e}). Fix or remove it only if this workdir holds "
                    "no run you need; otherwise use a new workdir.") from e


def _diff(old, new, prefix):
  """Yields (dotted key, old, new) as JSON text; dicts are compared key by key."""
  if isinstance(old, dict) and isinstance(new, dict):
    for k in sorted(set(old) | set(new)):
      key = f"{prefix}.{k}" if prefix else k
      if k not in old:
        yield key, "(absent)", json.dumps(new[k])
      elif k not in new:
        yield key, json.dumps(old[k]), "(absent)"
      else:
        yield from _diff(old[k], new[k], key)
  elif json.dumps(old) != json.dumps(new):  # strict: 1 != 1.0 != true
    yield prefix, json.dumps(old), json.dumps(new)
