"""The support set as the authors' code keeps it: PNG files on disk, one folder per class, read
back whole before every fine-tune (torchvision's ImageFolder), and the resize both sides share.
No gymnasium or PyTorch here, so the harness tests run it without the bench extra."""
from __future__ import annotations

import os
import shutil
import uuid

import numpy as np


def to_classifier_images(images: np.ndarray, out_size: int) -> np.ndarray:
  """float [B, H, W, C] in [0, 1] -> uint8 [B, S, S, C] by area averaging (jaxsets' resize)."""
  b, h, w, c = images.shape
  x = images.reshape(b, out_size, h // out_size, out_size, w // out_size, c).mean(axis=(2, 4))
  return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


class PngSupportSet:
  """The authors' support set on disk: one folder per class of PNG files (uint8 at the
  generator's resolution), read back whole, as torchvision's ImageFolder does, before each fit.
  Folders are named by dataset class index (the authors' sorted names mislabelled; not copied)."""

  def __init__(self, folder: str):
    self.folder = folder
    self.clear()

  def clear(self) -> None:  # the authors' reset() deletes every PNG
    shutil.rmtree(self.folder, ignore_errors=True)
    os.makedirs(self.folder)

  def add(self, images: np.ndarray, label: int) -> None:
    """images float [B, H, W, C] in [0, 1], all of class `label`."""
    from PIL import Image
    folder = os.path.join(self.folder, str(label))
    os.makedirs(folder, exist_ok=True)
    for image in np.round(np.clip(images, 0, 1) * 255).astype(np.uint8):
      Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
          os.path.join(folder, f"{uuid.uuid4()}.png"))

  def read(self, out_size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [N, S, S, C] resized to the classifier's resolution, int64 labels [N])."""
    from PIL import Image
    images, labels = [], []
    for name in sorted(os.listdir(self.folder), key=int):
      sub = os.path.join(self.folder, name)
      for file in sorted(os.listdir(sub)):
        with Image.open(os.path.join(sub, file)) as f:
          images.append(np.asarray(f, np.float32) / 255.0)
        labels.append(int(name))
    if not images:
      return np.zeros((0, out_size, out_size, channels), np.uint8), np.zeros((0,), np.int64)
    x = np.stack(images)
    x = x[..., None] if x.ndim == 3 else x
    return to_classifier_images(x, out_size), np.asarray(labels, np.int64)
