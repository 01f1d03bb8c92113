"""Any TFDS image-classification dataset by name, read whole into host memory.

Users with the network get the download; offline users (JAXSETS_OFFLINE=1, or no network) point
data.data_dir at a prepared copy and, when it is missing, get told exactly where it must go.
"""
from __future__ import annotations

import difflib
import os

import numpy as np

from jaxsets.errors import UserError


def _offline() -> bool:
  return os.environ.get("JAXSETS_OFFLINE", "") not in ("", "0")


def _close_matches(name: str) -> list[str]:
  import tensorflow_datasets as tfds
  names = tfds.list_builders()
  base = name.split("/")[0].split(":")[0]
  return difflib.get_close_matches(base, names, n=5, cutoff=0.6)


def make_builder(name: str, data_dir: str):
  """The prepared TFDS builder for `name` (e.g. "cifar10", "imagenet_resized/64x64")."""
  import tensorflow_datasets as tfds
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
  import tensorflow_datasets as tfds
  feature = builder.info.features.get("label") if hasattr(builder.info.features, "get") else None
  if not isinstance(feature, tfds.features.ClassLabel):
    raise UserError(f"dataset {builder.name!r} has no ClassLabel feature named 'label'; jaxsets "
                    "needs an image-classification dataset with an 'image' and a 'label'.")
  return tuple(n.replace("_", " ") for n in feature.names)


def read_split(builder, split: str, image_size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
  """One split, whole: images uint8 [N, image_size, image_size, channels], labels int32 [N].

  Images of another size (or of varying sizes, as in imagenette) are resized with antialiasing
  inside the tf.data pipeline, once, at load time."""
  import tensorflow as tf
  import tensorflow_datasets as tfds
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


def split_names(builder) -> set[str]:
  return set(builder.info.splits.keys())
