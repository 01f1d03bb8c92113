"""DataConfig: the `data` config section, typed and checked once at the boundary."""
from __future__ import annotations

import dataclasses
from typing import Any

from jaxsets import config_types


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Which dataset, at which resolution, in which low-data regime (configs/digits.py, `data`)."""
  name: str                     # "digits", a TFDS name, or "folder:PATH"
  image_size: int               # the classifier's resolution
  channels: int                 # 1 or 3
  data_dir: str = ""            # TFDS data_dir ("" = TFDS default)
  train_per_class: int = 0      # real training images kept per class (0 = all)
  imbalance_ratio: float = 1.0  # > 1: long-tailed train split, class i keeps 1 -> 1/ratio
  val_fraction: float = 0.1     # validation carved (stratified) from train when absent

  @classmethod
  def from_config(cls, section: Any) -> "DataConfig":
    return cls(**config_types.read_section(cls, section, "data."))
