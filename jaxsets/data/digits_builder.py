"""scikit-learn's handwritten digits as an offline TFDS dataset with fixed, stratified splits.

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
import tensorflow_datasets as tfds

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


class Digits(tfds.core.GeneratorBasedBuilder):
  """sklearn.datasets.load_digits as TFDS, built offline."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Fixed stratified generator_pool / train / test splits."}
  # Nothing to checksum, and TFDS 4.9.10's code_path lookup imports `importlib_resources`,
  # which the pinned stack does not install: a builder without a code path skips both.
  code_path = None

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description="scikit-learn handwritten digits (8x8), jaxsets' embedded default.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(8, 8, 1)),
            "label": tfds.features.ClassLabel(names=DIGIT_NAMES),
        }),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download: scikit-learn ships the data
    return {name: self._generate_examples(idx) for name, idx in split_indices().items()}

  def _generate_examples(self, indices):
    from sklearn.datasets import load_digits
    d = load_digits()
    images = (d.images.astype(np.int32) * 255 // 16).astype(np.uint8)[..., None]  # [1797,8,8,1]
    for i in indices:
      yield int(i), {"image": images[i], "label": int(d.target[i])}


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


def prepared_builder(data_dir: str | None) -> Digits:
  """The digits builder, built on first use. Idempotent; TFDS writes into a temporary folder
  and renames it, and the lock keeps two processes from building at once."""
  builder = Digits(data_dir=data_dir or None, file_format="array_record")
  if not builder.is_prepared():
    with _file_lock(os.path.join(os.fspath(builder.data_dir_root), ".digits.lock")):
      builder = Digits(data_dir=data_dir or None, file_format="array_record")
      if not builder.is_prepared():  # another process may have built it while we waited
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return builder


def read_split(builder: tfds.core.DatasetBuilder, split: str):
  """All of one split as numpy: images uint8 [N,8,8,1], labels int32 [N], in the stored order (fixed)."""
  source = builder.as_data_source(split=split)
  items = source.__getitems__(list(range(len(source))))
  images = np.stack([np.asarray(it["image"], np.uint8) for it in items])
  labels = np.asarray([it["label"] for it in items], np.int32)
  return images, labels
