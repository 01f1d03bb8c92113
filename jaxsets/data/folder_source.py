"""The user's own images: data.name = "folder:PATH". Three layouts are recognised, in order:

  Tiny-ImageNet   PATH/wnids.txt, PATH/words.txt, PATH/train/<wnid>/[images/]*.JPEG,
                  PATH/val/images/* + PATH/val/val_annotations.txt (its "val" becomes our test;
                  its unlabelled "test" is ignored). Class names: words.txt's first synonym.
  split folders   PATH/train/<class>/*, and optionally PATH/test/<class>/* and
                  PATH/validation/<class>/* (or val/).
  class folders   PATH/<class>/*: a fixed 25% per class (dataset seed, not the run seed) is
                  held out as the test split.
Class names are the sub-folder names with "_" read as a space. Images are read with PIL and
resized to data.image_size where they differ (one notice). Read directly rather than through
tfds.folder_dataset.ImageFolder so that an unreadable file can be named in the error.
"""
from __future__ import annotations

import os

import numpy as np

from jaxsets.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")
FOLDER_TEST_FRACTION = 0.25
FOLDER_DATASET_SEED = 7  # fixed: the held-out test split of a class-folder dataset never moves


def _is_image(name: str) -> bool:
  return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _images_under(folder: str) -> list[str]:
  out = []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    out.extend(os.path.join(root, f) for f in sorted(files) if _is_image(f))
  return out


def _subdirs(path: str) -> list[str]:
  return sorted(d for d in os.listdir(path)
                if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))


def _read_images(paths: list[str], image_size: int, channels: int, what: str) -> np.ndarray:
  """uint8 [N, image_size, image_size, channels]; names the first file PIL cannot read."""
  from PIL import Image
  mode = "L" if channels == 1 else "RGB"
  out = np.empty((len(paths), image_size, image_size, channels), np.uint8)
  sizes = {}
  for i, path in enumerate(paths):
    try:
      with Image.open(path) as im:
        im = im.convert(mode)
        sizes[im.size] = sizes.get(im.size, 0) + 1
        if im.size != (image_size, image_size):
          im = im.resize((image_size, image_size), Image.Resampling.LANCZOS)
        out[i] = np.asarray(im, np.uint8).reshape(image_size, image_size, channels)
    except (OSError, ValueError, SyntaxError) as e:
      raise UserError(f"cannot read image file {path!r} ({type(e).__name__}: {e}). Remove or "
                      "replace it, then run again.") from None
  if set(sizes) != {(image_size, image_size)}:
    listed = ", ".join(f"{n} of {w}x{h}" for (w, h), n in sorted(sizes.items())[:4])
    print(f"jaxsets: note: {what} has images of other sizes than data.image_size="
          f"{image_size} ({listed}); all were resized to {image_size}x{image_size}.")
  return out


def _class_folder_split(root: str, classes: list[str], image_size: int, channels: int,
                        what: str) -> tuple[np.ndarray, np.ndarray]:
  paths, labels = [], []
  for label, cls in enumerate(classes):
    folder = os.path.join(root, cls)
    found = _images_under(folder) if os.path.isdir(folder) else []
    if not found:
      raise UserError(f"class folder {folder!r} has no images ({', '.join(IMAGE_EXTENSIONS)}): "
                      "add images or remove the folder.")
    paths += found
    labels += [label] * len(found)
  return _read_images(paths, image_size, channels, what), np.asarray(labels, np.int32)


def _tiny_imagenet(path: str, image_size: int, channels: int):
  wnids = [w.strip() for w in open(os.path.join(path, "wnids.txt")) if w.strip()]
  words = {}
  words_file = os.path.join(path, "words.txt")
  if os.path.isfile(words_file):
    for line in open(words_file, encoding="utf-8"):
      wnid, _, text = line.rstrip("\n").partition("\t")
      words[wnid.strip()] = text.split(",")[0].strip()
  names = tuple(words.get(w, w) for w in wnids)
  index = {w: i for i, w in enumerate(wnids)}
  train = _class_folder_split(os.path.join(path, "train"), wnids, image_size, channels,
                              f"{path}/train")
  ann = os.path.join(path, "val", "val_annotations.txt")
  if not os.path.isfile(ann):
    raise UserError(f"{path!r} looks like Tiny-ImageNet (wnids.txt) but {ann!r} is missing: "
                    "jaxsets uses its labelled 'val' split as the test split.")
  paths, labels = [], []
  for line in open(ann):
    fields = line.split("\t")
    if len(fields) < 2:
      continue
    if fields[1] not in index:
      raise UserError(f"{ann!r} names WordNet id {fields[1]!r}, which is not in wnids.txt.")
    paths.append(os.path.join(path, "val", "images", fields[0]))
    labels.append(index[fields[1]])
  test = (_read_images(paths, image_size, channels, f"{path}/val"), np.asarray(labels, np.int32))
  return names, train, None, test


def read_folder(path: str, image_size: int, channels: int):
  """(class_names, train, validation or None, test or None), each split (images, labels)."""
  if not os.path.isdir(path):
    raise UserError(f"image folder {path!r} does not exist (data.name='folder:{path}'). Give a "
                    "folder with one sub-folder of images per class.")
  if os.path.isfile(os.path.join(path, "wnids.txt")):
    return _tiny_imagenet(path, image_size, channels)
  if os.path.isdir(os.path.join(path, "train")):
    classes = _subdirs(os.path.join(path, "train"))
    if not classes:
      raise UserError(f"{path}/train has no class sub-folders: put each class's images in "
                      f"{path}/train/<class name>/.")
    splits = {}
    for split, folders in (("train", ("train",)), ("validation", ("validation", "val")),
                           ("test", ("test",))):
      for f in folders:
        if os.path.isdir(os.path.join(path, f)):
          splits[split] = _class_folder_split(os.path.join(path, f), classes, image_size,
                                              channels, f"{path}/{f}")
          break
    names = tuple(c.replace("_", " ") for c in classes)
    return names, splits["train"], splits.get("validation"), splits.get("test")
  classes = _subdirs(path)
  if not classes:
    raise UserError(f"image folder {path!r} has no class sub-folders and no images in them: "
                    "put each class's images in its own sub-folder, e.g. "
                    f"{path}/cat/1.png, {path}/dog/1.png.")
  names = tuple(c.replace("_", " ") for c in classes)
  return names, _class_folder_split(path, classes, image_size, channels, path), None, None
