"""The support set as a TFDS dataset that `tfds.builder_from_directory(folder)` loads.

Stored twice, in one dataset folder: TFRecord shards (the default format, so `as_dataset` gives a
tf.data pipeline) and ArrayRecord shards listed as an alternative format (so `as_data_source`
gives random access for grain / plain numpy). TFDS 4.9.10 reads ArrayRecord only through
`as_data_source`, and its own format converter needs Apache Beam, which the stack does not
install; so the set is written once per format and the two are merged.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
from typing import Sequence

import numpy as np

NAME = "support_set"
VERSION = "1.0.0"
FORMATS = ("tfrecord", "array_record")  # the first is the default format of the dataset


def _features(image_shape: tuple[int, int, int], class_names: Sequence[str]):
  import tensorflow_datasets as tfds
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
  import tensorflow_datasets as tfds
  builder = tfds.dataset_builders.store_as_tfds_dataset(
      name=NAME, version=VERSION, features=features, split_datasets={"train": examples},
      data_dir=data_dir, description=description, file_format=file_format,
      # Keys are 0..N-1 and stay in that order, so example i is manifest line i.
      disable_shuffling=True,
      download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return os.fspath(builder.data_dir)


def write_tfds(folder: str, images: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
               prompts: Sequence[str], steps: Sequence[int], rewards: Sequence[float]) -> None:
  """Writes the dataset's files directly into `folder` (which must not exist yet).

  images uint8 [N, H, W, C]; labels int32 [N]; prompts, steps, rewards: N each. One split, "train".
  """
  import tensorflow_datasets as tfds
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
