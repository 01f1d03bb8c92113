"""Config files for the public API: the same files and overrides as the `jaxsets` command."""
from __future__ import annotations

from typing import Sequence

import ml_collections

from jaxsets import config_loading


def load_config(path: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """Loads `path/to/config.py[:variant]` and applies `--config.a.b=value` overrides.

  Returns a locked ConfigDict (unknown keys are refused with the closest valid key), exactly what
  `jaxsets run --config path ...overrides` would use.

  Example:
    >>> import jaxsets
    >>> config = jaxsets.load_config("configs/digits.py:smoke", ["--config.seed=3"])
    >>> config.seed, config.loop.budget
    (3, 40)
  """
  config = config_loading.load_config_file(path)
  leftover = config_loading.apply_overrides(config, list(overrides))
  if leftover:
    raise config_loading.ConfigError(
        f"not config overrides: {leftover}. Write each as '--config.KEY=VALUE'.")
  return config
