"""`workdir/support_set/`: the images a run delivers, in three forms that agree line for line.

  support_set/
    <class folder>/0007.png   one PNG per image; the number is the image's index in the set
    manifest.jsonl            line i: file, label, class_name, prompt, step, reward (+ extra keys)
    tfds/                     tfds.builder_from_directory("support_set/tfds"); example i = image i

The format's one writer (`write_support_set`) and one reader (`load_support_set`), and
`SupportSet`, the set in host memory, which both speak.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Sequence

import numpy as np

from jaxsets.atomic import atomic_path
from jaxsets.errors import UserError
from jaxsets.distributed import is_writer
from jaxsets.imaging import save_png
from jaxsets.outputs.folders import atomic_dir
from jaxsets.outputs.results import jsonable

REQUIRED_KEYS = ("prompt", "step", "reward")
# Keys that the writer fills in itself; a record may not override them.
MANIFEST_KEYS = ("file", "label", "class_name")


@dataclasses.dataclass(frozen=True)
class SupportSet:
  """A synthetic support set on the host.

  images uint8 [N, H, W, C]; labels int32 [N] (dataset class indices, the prompt's c1);
  prompts: N strings; steps int32 [N]: the agent step that made each image; rewards float32
  [N]: that step's reward; class_names: every class of the dataset, in label order.
  """
  images: np.ndarray
  labels: np.ndarray
  prompts: tuple[str, ...]
  steps: np.ndarray
  rewards: np.ndarray
  class_names: tuple[str, ...]

  def __len__(self) -> int:
    return int(self.labels.shape[0])

  def records(self) -> list[dict]:
    """One manifest record per image: prompt, step, reward."""
    return [{"prompt": p, "step": int(s), "reward": float(r)}
            for p, s, r in zip(self.prompts, self.steps, self.rewards)]

  def as_batch(self, rows: int | None = None):
    """The set as a `SupportBatch` padded to `rows` (default: its size) for `finetune`."""
    from jaxsets.api.classification import support_batch
    return support_batch(self.images, self.labels, rows=len(self) if rows is None else rows)

  def save(self, workdir: str) -> str:
    """Writes workdir/support_set/ as a run does (PNGs per class, manifest.jsonl, a TFDS copy);
    returns its path. `load_support_set` reads it back."""
    return write_support_set(workdir, self.images, self.labels, self.class_names, self.records())


def class_folders(class_names: Sequence[str]) -> list[str]:
  """A safe, distinct folder name per class. Digits and CIFAR names pass unchanged; a name with a
  slash, a comma or spaces ("goldfish, Carassius auratus") must not make nested or odd paths."""
  out, seen = [], set()
  for k, name in enumerate(class_names):
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or f"class_{k}"
    if safe.lower() in seen:  # case-insensitive file systems would merge "Cat" and "cat"
      safe = f"{safe}_{k}"
    seen.add(safe.lower())
    out.append(safe)
  return out


def write_tfds(folder: str, images, labels, class_names, prompts, steps, rewards) -> None:
  """The set's TFDS copy in `folder` (data/tfds_io.py, the one module that imports TFDS)."""
  from jaxsets.data import tfds_io
  tfds_io.write_dataset(folder, images, labels, class_names, prompts, steps, rewards)


def _check(images, labels, class_names, records) -> None:
  """Shapes and keys, checked before anything is written (these are program errors, not user input)."""
  if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
    raise ValueError(f"images must be uint8 [N, H, W, 1 or 3], got {images.dtype} {images.shape}")
  n = len(images)
  if n == 0:
    raise ValueError("the support set is empty: nothing to write")
  if labels.shape != (n,) or len(records) != n:
    raise ValueError(f"{n} images but labels {labels.shape} and {len(records)} records")
  if labels.min() < 0 or labels.max() >= len(class_names):
    raise ValueError(f"labels must lie in [0, {len(class_names)}), got {labels.min()}..{labels.max()}")
  for i, r in enumerate(records):
    missing = [k for k in REQUIRED_KEYS if k not in r]
    if missing:
      raise ValueError(f"record {i} lacks {missing}: {r}")


def write_support_set(workdir: str, images, labels, class_names: Sequence[str],
                      records: Sequence[dict]) -> str:
  """Writes workdir/support_set/ (PNGs per class, manifest.jsonl, tfds/) and returns its path.

  images uint8 [N, H, W, C] (C = 1 or 3); labels int [N] (dataset class indices); records: N
  dicts with at least prompt, step, reward. The folder appears complete or not at all, and an
  older support_set is replaced only once the new one is whole. Only process 0 writes.
  """
  target = os.path.join(workdir, "support_set")
  if not is_writer():
    return target
  images = np.asarray(images)
  labels = np.asarray(labels).astype(np.int64)
  records = list(records)
  _check(images, labels, class_names, records)
  folders = class_folders(class_names)
  width = max(4, len(str(len(images) - 1)))
  with atomic_dir(target) as tmp:
    lines = []
    for i, (image, label, record) in enumerate(zip(images, labels, records)):
      rel = f"{folders[label]}/{i:0{width}d}.png"
      os.makedirs(os.path.join(tmp, folders[label]), exist_ok=True)
      save_png(os.path.join(tmp, rel), image)
      extra = {k: v for k, v in record.items() if k not in MANIFEST_KEYS + REQUIRED_KEYS}
      lines.append({"file": rel, "label": int(label), "class_name": str(class_names[label]),
                    "prompt": str(record["prompt"]), "step": int(record["step"]),
                    "reward": float(record["reward"]), **jsonable(extra)})
    with atomic_path(os.path.join(tmp, "manifest.jsonl")) as path:
      with open(path, "w") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    write_tfds(os.path.join(tmp, "tfds"), images, labels, class_names,
               [r["prompt"] for r in lines], [r["step"] for r in lines],
               [r["reward"] for r in lines])
  return target


def load_support_set(path: str) -> SupportSet:
  """Reads a saved support set: a run's workdir, or its `support_set/` folder.

  Reads manifest.jsonl and the PNGs it lists (no TensorFlow needed); class names come from the
  TFDS copy's label list (or the run's results.json). Image i is manifest line i.
  """
  from PIL import Image

  folder = path if os.path.isfile(os.path.join(path, "manifest.jsonl")) else os.path.join(path, "support_set")
  manifest = os.path.join(folder, "manifest.jsonl")
  if not os.path.isfile(manifest):
    raise UserError(f"no support set at {path!r}: expected {manifest} (a run's workdir or its "
                    "support_set/ folder, written at the end of `jaxsets run`).")
  with open(manifest) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  if not rows:
    raise UserError(f"{manifest} is empty.")
  images = []
  for row in rows:
    with Image.open(os.path.join(folder, row["file"])) as im:
      a = np.asarray(im, np.uint8)
    images.append(a[..., None] if a.ndim == 2 else a)
  labels = np.asarray([r["label"] for r in rows], np.int32)
  return SupportSet(images=np.stack(images), labels=labels,
                    prompts=tuple(str(r["prompt"]) for r in rows),
                    steps=np.asarray([r["step"] for r in rows], np.int32),
                    rewards=np.asarray([r["reward"] for r in rows], np.float32),
                    class_names=_class_names(folder, rows))


def _class_names(folder: str, rows: list[dict]) -> tuple[str, ...]:
  """Every class name in label order, including classes the set does not contain."""
  labels_txt = os.path.join(folder, "tfds", "label.labels.txt")
  if os.path.isfile(labels_txt):
    with open(labels_txt) as f:
      return tuple(line.rstrip("\n") for line in f if line.strip())
  results = os.path.join(os.path.dirname(os.path.abspath(folder)), "results.json")
  if os.path.isfile(results):
    with open(results) as f:
      names = json.load(f).get("class_names")
    if names:
      return tuple(names)
  # Only the manifest: names of the classes present; absent ones get a placeholder.
  known = {int(r["label"]): str(r["class_name"]) for r in rows}
  return tuple(known.get(k, f"class_{k}") for k in range(max(known) + 1))
