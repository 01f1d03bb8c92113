"""The data containers every stage passes around: host numpy arrays, fixed dtypes."""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ImageSet:
  """Images and their labels, on the host. images: uint8 [N, H, W, C]; labels: int32 [N].

  class_names is filled where a set travels alone (the generator pool); splits carry theirs.
  """
  images: np.ndarray
  labels: np.ndarray
  class_names: tuple[str, ...] = ()

  def __post_init__(self):
    assert self.images.dtype == np.uint8 and self.images.ndim == 4, self.images.shape
    assert self.labels.dtype == np.int32 and self.labels.shape == self.images.shape[:1]

  def __len__(self) -> int:
    return int(self.labels.shape[0])

  def take(self, index) -> "ImageSet":
    return ImageSet(self.images[index], self.labels[index], self.class_names)

  def class_counts(self, num_classes: int) -> np.ndarray:
    return np.bincount(self.labels, minlength=num_classes)


@dataclasses.dataclass(frozen=True)
class DatasetSplits:
  """train / validation / test of one dataset. The test split must never feed a decision
  (reward, early stopping, model choice); it is read once, for the final report."""
  train: ImageSet
  validation: ImageSet
  test: ImageSet
  class_names: tuple[str, ...]
  name: str = ""

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.train.images.shape[1:])
