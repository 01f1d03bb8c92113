"""Everything jaxsets does with TensorFlow Datasets: the only module that imports it (and
TensorFlow), so a TFDS release that moves an API changes this file alone. Import it lazily.

  reading   make_builder, class_names_of, split_names, read_split: any TFDS image dataset
  digits    Digits, prepare_digits, read_prepared_split: scikit-learn's digits as an offline
            ArrayRecord dataset (the split logic lives in digits_builder.py)
  writing   write_dataset: a labelled image set as a dataset folder that
            tfds.builder_from_directory loads (the support set's TFDS copy)
"""
from __future__ import annotations

import contextlib
import difflib
import io
import os
import shutil
from typing import Callable, Sequence

import numpy as np
import tensorflow_datasets as tfds

from jaxsets.errors import UserError

# ---- reading any dataset by name -------------------------------------------------------------


def _offline() -> bool:
  return os.environ.get("JAXSETS_OFFLINE", "") not in ("", "0")


def _close_matches(name: str) -> list[str]:
  base = name.split("/")[0].split(":")[0]
  return difflib.get_close_matches(base, tfds.list_builders(), n=5, cutoff=0.6)


def make_builder(name: str, data_dir: str):
  """The prepared TFDS builder for `name` (e.g. "cifar10", "imagenet_resized/64x64"). Users with
  the network get the download; offline users (JAXSETS_OFFLINE=1, or no network) point
  data.data_dir at a prepared copy and, when it is missing, get told exactly where it must go."""
  try:
    builder = tfds.builder(name, data_dir=data_dir or None)
  except tfds.core.registered.DatasetNotFoundError:
    close = _close_matches(name)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    raise UserError(f"data.name={name!r} is not a TFDS dataset.{hint} Use a TFDS name, "
                    "'digits', or 'folder:PATH' for your own image folder.") from None
  if builder.is_prepared():
    return builder
  where = os.path.join(os.fspath(builder.data_dir_root), builder.info.full_name)
  manual = os.path.join(os.fspath(builder.data_dir_root), "downloads", "manual")
  help_text = (f"Dataset {name!r} is not prepared under {where}. On a machine with the network "
               f"run `python -c \"import tensorflow_datasets as tfds; tfds.builder('{name}')"
               f".download_and_prepare()\"` and copy its ~/tensorflow_datasets/"
               f"{builder.info.full_name} folder to {where} (or set data.data_dir to the folder "
               f"that holds {builder.info.full_name}); datasets with manual downloads take their "
               f"archives in {manual}.")
  if _offline():
    raise UserError(help_text + " (JAXSETS_OFFLINE is set, so nothing was downloaded.)")
  try:
    builder.download_and_prepare()
  except Exception as e:  # network, disk, manual-download datasets: all end the same way
    raise UserError(f"{help_text} Downloading failed: {type(e).__name__}: {e}") from e
  return builder


def class_names_of(builder) -> tuple[str, ...]:
  """Class names from the ClassLabel feature `label`, readable: "aquarium_fish" -> "aquarium fish"."""
  feature = builder.info.features.get("label") if hasattr(builder.info.features, "get") else None
  if not isinstance(feature, tfds.features.ClassLabel):
    raise UserError(f"dataset {builder.name!r} has no ClassLabel feature named 'label'; jaxsets "
                    "needs an image-classification dataset with an 'image' and a 'label'.")
  return tuple(n.replace("_", " ") for n in feature.names)


def split_names(builder) -> set[str]:
  return set(builder.info.splits.keys())


def read_split(builder, split: str, image_size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
  """One split, whole: images uint8 [N, image_size, image_size, channels], labels int32 [N].

  Images of another size (or of varying sizes, as in imagenette) are resized with antialiasing
  inside the tf.data pipeline, once, at load time."""
  import tensorflow as tf
  shape = tuple(builder.info.features["image"].shape)
  same = shape[:2] == (image_size, image_size)

  def prepare(image, label):
    if not same:
      image = tf.image.resize(image, (image_size, image_size), antialias=True)
      image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    if channels == 1 and shape[-1] == 3:
      image = tf.image.rgb_to_grayscale(image)
    elif channels == 3 and shape[-1] == 1:
      image = tf.image.grayscale_to_rgb(image)
    return image, label

  if not same:
    print(f"jaxsets: note: {builder.name} images {shape[:2]} are resized to "
          f"{image_size}x{image_size} (data.image_size).")
  ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(1024)
  images, labels = [], []
  for image, label in tfds.as_numpy(ds):
    images.append(image)
    labels.append(label)
  return np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(np.int32)


# ---- the digits dataset, built offline --------------------------------------------------------


class Digits(tfds.core.GeneratorBasedBuilder):
  """sklearn.datasets.load_digits as TFDS, built offline (splits: digits_builder.py)."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Fixed stratified generator_pool / train / test splits."}
  # Nothing to checksum, and TFDS 4.9.10's code_path lookup imports `importlib_resources`,
  # which the pinned stack does not install: a builder without a code path skips both.
  code_path = None

  def _info(self) -> tfds.core.DatasetInfo:
    from jaxsets.data.digits_builder import DIGIT_NAMES
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
    from jaxsets.data.digits_builder import split_indices
    del dl_manager  # nothing to download: scikit-learn ships the data
    return {name: self._generate_examples(idx) for name, idx in split_indices().items()}

  def _generate_examples(self, indices):
    from jaxsets.data.digits_builder import digit_images
    images, labels = digit_images()
    for i in indices:
      yield int(i), {"image": images[i], "label": int(labels[i])}


def prepare_digits(data_dir: str | None, lock: Callable[[str], contextlib.AbstractContextManager]):
  """The digits builder, built on first use. Idempotent; TFDS writes into a temporary folder
  and renames it, and `lock(path)` keeps two processes from building at once."""
  builder = Digits(data_dir=data_dir or None, file_format="array_record")
  if not builder.is_prepared():
    with lock(os.path.join(os.fspath(builder.data_dir_root), ".digits.lock")):
      builder = Digits(data_dir=data_dir or None, file_format="array_record")
      if not builder.is_prepared():  # another process may have built it while we waited
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return builder


def read_prepared_split(builder, split: str) -> tuple[np.ndarray, np.ndarray]:
  """All of one ArrayRecord split as numpy, in the stored (fixed) order: images uint8 [N, H, W, C],
  labels int32 [N]."""
  source = builder.as_data_source(split=split)
  items = source.__getitems__(list(range(len(source))))
  images = np.stack([np.asarray(it["image"], np.uint8) for it in items])
  labels = np.asarray([it["label"] for it in items], np.int32)
  return images, labels


# ---- writing a labelled image set as a dataset folder -----------------------------------------

# Stored twice, in one dataset folder: TFRecord shards (the default format, so `as_dataset` gives
# a tf.data pipeline) and ArrayRecord shards listed as an alternative format (so `as_data_source`
# gives random access for grain / plain numpy). TFDS 4.9.10 reads ArrayRecord only through
# `as_data_source`, and its own format converter needs Apache Beam, which the stack does not
# install; so the set is written once per format and the two are merged.
NAME = "support_set"
VERSION = "1.0.0"
FORMATS = ("tfrecord", "array_record")  # the first is the default format of the dataset


def _features(image_shape: tuple[int, int, int], class_names: Sequence[str]):
  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=image_shape),
      "label": tfds.features.ClassLabel(names=list(class_names)),
      "prompt": tfds.features.Text(),
      "step": tfds.features.Scalar(np.int32),
      "reward": tfds.features.Scalar(np.float32),
  })


@contextlib.contextmanager
def _quiet():
  """TFDS prints a banner, progress bars and warnings about its own half-built folders; at the
  end of a run they would bury the summary. Errors still show."""
  from absl import logging as absl_logging
  from tensorflow_datasets.core.utils import tqdm_utils
  was_active, verbosity = getattr(tqdm_utils, "_active", True), absl_logging.get_verbosity()
  tqdm_utils.display_progress_bar(False)
  absl_logging.set_verbosity(absl_logging.ERROR)
  try:
    with contextlib.redirect_stdout(io.StringIO()):
      yield
  finally:
    tqdm_utils.display_progress_bar(was_active)
    absl_logging.set_verbosity(verbosity)


def _build(data_dir: str, file_format: str, features, examples, description: str) -> str:
  """Writes one format under data_dir; returns the version folder."""
  builder = tfds.dataset_builders.store_as_tfds_dataset(
      name=NAME, version=VERSION, features=features, split_datasets={"train": examples},
      data_dir=data_dir, description=description, file_format=file_format,
      # Keys are 0..N-1 and stay in that order, so example i is manifest line i.
      disable_shuffling=True,
      download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return os.fspath(builder.data_dir)


def write_dataset(folder: str, images: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                  prompts: Sequence[str], steps: Sequence[int], rewards: Sequence[float]) -> None:
  """Writes the dataset's files directly into `folder` (which must not exist yet).

  images uint8 [N, H, W, C]; labels int32 [N]; prompts, steps, rewards: N each. One split, "train".
  """
  features = _features(tuple(images.shape[1:]), class_names)
  examples = [(i, {"image": images[i], "label": int(labels[i]), "prompt": prompts[i],
                   "step": int(steps[i]), "reward": float(rewards[i])}) for i in range(len(images))]
  description = (f"jaxsets synthetic support set: {len(images)} images of "
                 f"{tuple(images.shape[1:])}, {len(class_names)} classes, with the prompt that "
                 "generated each image, the agent step and its reward.")
  scratch = folder + ".build"
  try:
    with _quiet():
      built = [_build(os.path.join(scratch, f), f, features, examples, description)
               for f in FORMATS]
    main, extra = built
    shutil.move(main, folder)
    info = tfds.builder_from_directory(folder).info
    other = tfds.builder_from_directory(extra).info
    if list(other.splits["train"].shard_lengths) != list(info.splits["train"].shard_lengths):
      raise RuntimeError("TFDS sharded the two formats differently; cannot merge them.")
    for name in os.listdir(extra):
      if f".{FORMATS[1]}-" in name:  # e.g. support_set-train.array_record-00000-of-00001
        shutil.move(os.path.join(extra, name), os.path.join(folder, name))
    info.add_alternative_file_format(FORMATS[1])
    info.write_to_directory(folder)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
