"""scikit-learn's handwritten digits as an offline TFDS dataset with fixed, stratified splits
(the TFDS builder itself is data/tfds_io.py: Digits, which reads these splits).

1,797 images, 8x8, values 0..16 scaled to uint8 0..255 (x * 255 // 16). The splits are made
once with a FIXED dataset seed (not the run's seed), so one pretrained generator serves every
run seed and the generator pool stays disjoint from train and test for all of them:
  generator_pool ~45%, train ~30%, test ~25%  (per class, so every split is stratified).
Validation is carved from "train" later, with the run's seed (see splits.py).
"""
from __future__ import annotations

import contextlib
import fcntl
import os

import numpy as np

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLIT_FRACTIONS = (("generator_pool", 0.45), ("train", 0.30), ("test", 0.25))
DATASET_SEED = 20240425  # fixed forever: changing it changes every split and the pool


def split_indices() -> dict[str, np.ndarray]:
  """Indices into sklearn's load_digits for each split: stratified, fixed, disjoint, covering."""
  from sklearn.datasets import load_digits
  labels = load_digits().target
  rng = np.random.default_rng(DATASET_SEED)  # data preparation, not a learner
  out = {name: [] for name, _ in SPLIT_FRACTIONS}
  for c in range(10):
    idx = rng.permutation(np.flatnonzero(labels == c))
    cuts = np.round(np.cumsum([f for _, f in SPLIT_FRACTIONS]) * len(idx)).astype(int)
    for (name, _), lo, hi in zip(SPLIT_FRACTIONS, np.r_[0, cuts[:-1]], cuts):
      out[name].append(idx[lo:hi])
  return {name: np.sort(np.concatenate(parts)) for name, parts in out.items()}


def digit_images() -> tuple[np.ndarray, np.ndarray]:
  """All 1,797 digits in sklearn's order: images uint8 [1797, 8, 8, 1] (0..16 scaled to 0..255),
  labels int [1797]."""
  from sklearn.datasets import load_digits
  d = load_digits()
  return (d.images.astype(np.int32) * 255 // 16).astype(np.uint8)[..., None], d.target


@contextlib.contextmanager
def _file_lock(path: str):
  """An exclusive lock across processes (concurrent test runs build the same directory)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def prepared_builder(data_dir: str | None):
  """The digits TFDS builder (data/tfds_io.py: Digits), built on first use. Idempotent; TFDS
  writes into a temporary folder and renames it, and a file lock keeps two processes from
  building at once."""
  from jaxsets.data import tfds_io
  return tfds_io.prepare_digits(data_dir, _file_lock)


def read_split(builder, split: str):
  """All of one split as numpy: images uint8 [N,8,8,1], labels int32 [N], in the stored order (fixed)."""
  from jaxsets.data import tfds_io
  return tfds_io.read_prepared_split(builder, split)
