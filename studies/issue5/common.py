"""Shared set-up of the issue-5 studies: the embedded default's run setup and baseline for a seed.

Run every study from the repository root with the embedded generator cached, e.g.
  JAXSETS_CACHE=~/.cache/jaxsets python studies/issue5/reward_noise.py current
"""
import sys

import jax

from jaxsets import config_loading
from jaxsets.classifier import train_baseline
from jaxsets.loop import state as st
from jaxsets.loop.setup import make_setup


def setup(seed: int = 0, overrides=()):
  """-> (RunSetup, root key, baseline ClassifierState) exactly as `jaxsets run` builds them."""
  config = config_loading.load_config_file("configs/digits.py")
  config_loading.apply_overrides(config, [f"--config.seed={seed}", *overrides])
  s = make_setup(config, quiet=True)
  key = jax.random.key(seed)
  baseline, _ = train_baseline(s.splits.train, s.spec.num_classes, st.stream(key, st.BASELINE),
                               cfg=s.clf_cfg, mesh=s.mesh, progress=False)
  return s, key, baseline


def arg(i: int, default: str) -> str:
  return sys.argv[i] if len(sys.argv) > i else default


def restore_run(workdir: str):
  """A finished `jaxsets run` of configs/digits.py: -> (RunSetup, root key, its last RunState).
  Reads the workdir only (loop/saved_run.py, as `jaxsets.load_agent` does)."""
  from jaxsets.checkpoint.workdir_config import read_workdir_config
  from jaxsets.loop.saved_run import read_state

  # The run's own settings (config.json), on top of the file's for their types: the defaults
  # may have changed since (e.g. agent.episodes).
  config = config_loading.load_config_file("configs/digits.py")
  _update(config, read_workdir_config(workdir))
  s = make_setup(config, quiet=True)
  key = jax.random.key(int(config.seed))
  _, state, _ = read_state(workdir, s, key)
  return s, key, state


def _update(config, saved: dict):
  """Sets every value of `saved` (nested dicts from JSON) in `config`, lists as tuples where
  the config holds a tuple."""
  for name, value in saved.items():
    if isinstance(value, dict):
      _update(config[name], value)
    else:
      config[name] = tuple(value) if isinstance(config[name], tuple) else value
