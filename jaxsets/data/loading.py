"""load_dataset: one entry point from the `data` config section to fixed train/val/test splits.

Order of operations (so every run seed sees the same test split and generator pool):
  1. the dataset's own splits (digits: fixed generator_pool / train / test);
  2. a test split held out with a fixed dataset seed where the dataset has none;
  3. validation carved from train with the run seed (stratified, data.val_fraction) where the
     dataset has none;
  4. train_per_class / imbalance_ratio subsample what is left of train, with the run seed.
"""
from __future__ import annotations

import os

import numpy as np

from jaxsets.data import splits as split_ops
from jaxsets.data.types import DatasetSplits, ImageSet
from jaxsets.errors import UserError

FOLDER_PREFIX = "folder:"


def _data_dir(data_cfg) -> str:
  return os.path.expanduser(data_cfg.data_dir) if data_cfg.data_dir else ""


def _resize(images: np.ndarray, size: int, channels: int, what: str) -> np.ndarray:
  """Host-side resize for a whole split (uint8 in, uint8 out), announced once."""
  if images.shape[1:] == (size, size, channels):
    return images
  from PIL import Image
  print(f"jaxsets: note: {what} images {images.shape[1:3]} are resized to {size}x{size} "
        "(data.image_size).")
  mode = "L" if images.shape[-1] == 1 else "RGB"
  out = [np.asarray(Image.fromarray(im.squeeze(-1) if mode == "L" else im, mode)
                    .convert("L" if channels == 1 else "RGB")
                    .resize((size, size), Image.Resampling.LANCZOS), np.uint8)
         for im in images]
  return np.stack(out).reshape(len(images), size, size, channels)


def _digits_raw(data_cfg) -> tuple[tuple[str, ...], dict]:
  from jaxsets.data import digits_builder
  builder = digits_builder.prepared_builder(_data_dir(data_cfg))
  raw = {s: digits_builder.read_split(builder, s) for s in ("generator_pool", "train", "test")}
  names = tuple(builder.info.features["label"].names)
  return names, raw


def _raw_splits(data_cfg):
  """(class_names, {split: (images, labels)}, dataset_name) before any run-seeded step."""
  name = data_cfg.name
  size, channels = int(data_cfg.image_size), int(data_cfg.channels)
  if name == "digits":
    names, raw = _digits_raw(data_cfg)
    raw.pop("generator_pool")
    return names, raw
  if name.startswith(FOLDER_PREFIX):
    from jaxsets.data import folder_source
    path = os.path.expanduser(name[len(FOLDER_PREFIX):])
    names, train, val, test = folder_source.read_folder(path, size, channels)
    raw = {"train": train}
    if val is not None:
      raw["validation"] = val
    if test is not None:
      raw["test"] = test
    return names, raw
  if os.path.isdir(name):
    raise UserError(f"data.name={name!r} is a folder: write data.name='folder:{name}' to use "
                    "your own images (one sub-folder per class).")
  from jaxsets.data import tfds_io
  builder = tfds_io.make_builder(name, _data_dir(data_cfg))
  names = tfds_io.class_names_of(builder)
  available = tfds_io.split_names(builder)
  if "train" not in available:
    raise UserError(f"TFDS dataset {name!r} has no 'train' split (it has {sorted(available)}).")
  raw = {}
  for split in ("train", "validation", "test"):
    if split in available:
      raw[split] = tfds_io.read_split(builder, split, size, channels)
  if "test" not in raw and "validation" in raw:
    # imagenette and friends publish train + validation: their validation is our test, and
    # our validation is carved from train, so the reported split stays untouched.
    raw["test"] = raw.pop("validation")
  return names, raw


def load_dataset(data_cfg, seed: int) -> DatasetSplits:
  """train / validation / test for the `data` config section and the run seed.

  The test split never depends on `seed` and is never used for a decision during a run.
  """
  names, raw = _raw_splits(data_cfg)
  size, channels = int(data_cfg.image_size), int(data_cfg.channels)
  sets = {k: ImageSet(_resize(np.asarray(im, np.uint8), size, channels, f"{data_cfg.name}/{k}"),
                      np.asarray(lb, np.int32)) for k, (im, lb) in raw.items()}
  n = len(names)
  for k, s in sets.items():
    if len(s) == 0:
      raise UserError(f"split {k!r} of {data_cfg.name!r} is empty.")
    if s.labels.min() < 0 or s.labels.max() >= n:
      raise UserError(f"split {k!r} of {data_cfg.name!r} has labels outside 0..{n - 1}.")
  if "test" not in sets:
    from jaxsets.data.folder_source import FOLDER_DATASET_SEED, FOLDER_TEST_FRACTION
    sets["train"], sets["test"] = split_ops.stratified_holdout(
        sets["train"], FOLDER_TEST_FRACTION, FOLDER_DATASET_SEED, n)
  if "validation" not in sets:
    sets["train"], sets["validation"] = split_ops.carve_validation(
        sets["train"], float(data_cfg.val_fraction), seed, n)
  train = split_ops.subsample_train(sets["train"], int(data_cfg.train_per_class),
                                    float(data_cfg.imbalance_ratio), seed, names)
  return DatasetSplits(train=train, validation=sets["validation"], test=sets["test"],
                       class_names=tuple(names), name=data_cfg.name)


def load_generator_pool(data_cfg) -> ImageSet:
  """The digits reserved for pretraining the embedded generator (disjoint from train,
  validation and test for every run seed), with class_names filled in."""
  if data_cfg.name != "digits":
    raise UserError(f"the generator pool exists only for data.name='digits' (got "
                    f"{data_cfg.name!r}): the embedded generator is pretrained on digits. For "
                    "other datasets use a pretrained Stable Diffusion (generator.model).")
  names, raw = _digits_raw(data_cfg)
  images, labels = raw["generator_pool"]
  return ImageSet(images, labels, names)
