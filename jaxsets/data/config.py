"""DataConfig: the `data` config section, typed and checked once at the boundary."""
from __future__ import annotations

import dataclasses
from typing import Any

from jaxsets import config_types
from jaxsets.errors import UserError


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

  def __post_init__(self):
    # Refused here rather than deep in the resize ("height and width must be > 0") or a reshape.
    if self.image_size < 1:
      raise UserError(f"data.image_size={self.image_size} must be at least 1 (pixels a side; "
                      "the classifier's resolution, e.g. 8 for digits, 32 for CIFAR-10).")
    if self.channels not in (1, 3):
      raise UserError(f"data.channels={self.channels} must be 1 (greyscale) or 3 (RGB).")

  @classmethod
  def from_config(cls, section: Any) -> "DataConfig":
    return cls(**config_types.read_section(cls, section, "data."))
