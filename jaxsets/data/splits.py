"""Seeded, stratified split arithmetic on host arrays: carve validation, keep k per class,
make a long tail. Data preparation, not learning: numpy's Generator seeded from the run seed.
"""
from __future__ import annotations

import numpy as np

from jaxsets.data.types import ImageSet
from jaxsets.errors import UserError


def _rng(seed: int, purpose: str) -> np.random.Generator:
  # One independent stream per purpose, so changing one step never shifts another's draw.
  return np.random.default_rng([seed, sum(purpose.encode())])


def carve_validation(train: ImageSet, fraction: float, seed: int,
                     num_classes: int) -> tuple[ImageSet, ImageSet]:
  """Splits `train` into (train, validation), `fraction` of every class going to validation
  (at least one image per class with two or more images, so per-class accuracy is defined)."""
  if not 0.0 < fraction < 1.0:
    raise UserError(f"data.val_fraction={fraction} must be between 0 and 1 (exclusive), "
                    "e.g. 0.3.")
  rng = _rng(seed, "validation")
  val, keep = [], []
  for c in range(num_classes):
    idx = rng.permutation(np.flatnonzero(train.labels == c))
    n_val = min(len(idx) - 1, max(1, int(round(fraction * len(idx))))) if len(idx) > 1 else 0
    val.append(idx[:n_val])
    keep.append(idx[n_val:])
  return train.take(np.sort(np.concatenate(keep))), train.take(np.sort(np.concatenate(val)))


def per_class_targets(counts: np.ndarray, train_per_class: int,
                      imbalance_ratio: float) -> np.ndarray:
  """How many training images each class keeps.

  Start from k = train_per_class (0 = what each class has); with imbalance_ratio r > 1, class i
  of n keeps round(k * r ** (-i / (n - 1))): a share falling geometrically from 1 to 1/r.
  Example: k=100, r=10, n=3 -> [100, 32, 10].
  """
  n = len(counts)
  base = counts.astype(np.float64) if train_per_class == 0 else np.full(n, float(train_per_class))
  if imbalance_ratio < 1.0:
    raise UserError(f"data.imbalance_ratio={imbalance_ratio} must be >= 1 "
                    "(1 = balanced; 10 = the last class keeps a tenth).")
  shares = imbalance_ratio ** (-np.arange(n) / max(n - 1, 1))
  return np.maximum(1, np.round(base * shares)).astype(np.int64)


def subsample_train(train: ImageSet, train_per_class: int, imbalance_ratio: float, seed: int,
                    class_names: tuple[str, ...]) -> ImageSet:
  """Keeps per_class_targets(...) images of each class, chosen at random with the run seed."""
  if train_per_class < 0:
    raise UserError(f"data.train_per_class={train_per_class} must be >= 0 (0 keeps all).")
  counts = train.class_counts(len(class_names))
  if train_per_class == 0 and imbalance_ratio == 1.0:
    return train
  targets = per_class_targets(counts, train_per_class, imbalance_ratio)
  short = [(class_names[c], int(counts[c]), int(targets[c]))
           for c in range(len(counts)) if counts[c] < targets[c]]
  if short:
    worst = ", ".join(f"{name!r} has {have} (needs {need})" for name, have, need in short[:5])
    raise UserError(
        f"data.train_per_class={train_per_class} is more than some classes have in the training "
        f"split after validation was carved out: {worst}. Use --config.data.train_per_class="
        f"{int(counts.min())} or less, or 0 to keep every image.")
  rng = _rng(seed, "train_per_class")
  keep = [rng.permutation(np.flatnonzero(train.labels == c))[:targets[c]]
          for c in range(len(counts))]
  return train.take(np.sort(np.concatenate(keep)))


def stratified_holdout(images: ImageSet, fraction: float, seed: int,
                       num_classes: int) -> tuple[ImageSet, ImageSet]:
  """(rest, held-out) with a fixed dataset seed: used to make a test split for a folder that
  has none, so the test split does not move with the run seed."""
  rest, held = carve_validation(images, fraction, seed, num_classes)
  return rest, held
