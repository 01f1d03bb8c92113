"""Pictures of the support set: a captioned sample per class, and every image in one grid."""
from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np

from jaxsets.imaging import image_grid, save_png
from jaxsets.outputs.plots import new_figure, save_figure

MIN_PIXELS = 64  # images are enlarged (nearest-neighbour) to at least this side before drawing


def _enlarge(image: np.ndarray, min_side: int) -> np.ndarray:
  """uint8 [H, W, C] -> [H*s, W*s, C] with integer s, so 8x8 digits stay crisp blocks."""
  s = max(1, -(-min_side // min(image.shape[:2])))
  return image.repeat(s, axis=0).repeat(s, axis=1)


def sample_per_class(labels: np.ndarray, prompts: Sequence[str], per_class: int) -> dict[int, list[int]]:
  """Up to `per_class` image indices per class, taking the class's prompts in turn (first use
  order) so the sample shows the variety of prompts, not ten images of the same one."""
  out = {}
  for c in np.unique(labels):
    idx = np.flatnonzero(labels == c)
    by_prompt: dict[str, list[int]] = {}
    for i in idx:
      by_prompt.setdefault(prompts[i], []).append(int(i))
    queues = list(by_prompt.values())
    chosen, depth = [], 0
    while len(chosen) < min(per_class, len(idx)):
      chosen += [q[depth] for q in queues if depth < len(q)][:per_class - len(chosen)]
      depth += 1
    out[int(c)] = sorted(chosen)
  return out


def _draw_cell(ax, image: np.ndarray, caption: str) -> None:
  ax.set_xticks([])
  ax.set_yticks([])
  big = _enlarge(image, MIN_PIXELS)
  gray = image.shape[-1] == 1
  ax.imshow(big[..., 0] if gray else big, cmap="gray" if gray else None, vmin=0, vmax=255,
            interpolation="nearest")
  ax.set_xlabel("\n".join(textwrap.wrap(caption, width=24, max_lines=3, placeholder="…")),
                fontsize=6.5, labelpad=2)
  for side in ax.spines.values():
    side.set_color("#bbbbbb")


def _images(k: int) -> str:
  return f"{k} image" + ("" if k == 1 else "s")


def plot_support_grid(images: np.ndarray, labels: np.ndarray, prompts: Sequence[str],
                      class_names: Sequence[str], path: str, *, per_class: int = 8,
                      max_rows: int = 12, max_flat: int = 48) -> None:
  """The support set for a person: under each image its index (its file is
  support_set/<class>/<index>.png) and the prompt that generated it, written small.

  Up to `max_rows` classes: one row per class (name and image count on the left), up to
  `per_class` images each. More classes (Tiny-ImageNet has 200): one image for each of the first
  `max_flat` classes, class name in the caption, 8 to a row; rows of one image would waste a page.
  """
  images, labels = np.asarray(images), np.asarray(labels)
  present = np.unique(labels)
  cell_w, cell_h = 1.25, 1.6  # inches: the image plus three short lines of 6.5 pt text
  if len(present) <= max_rows:
    chosen = sample_per_class(labels, prompts, per_class)
    rows = [chosen[int(c)] for c in present]
    cols = max(len(r) for r in rows)
    caption = lambda i: f"#{i} {prompts[i]}"
    note = f"up to {per_class} per class"
  else:
    first = [v[0] for v in sample_per_class(labels, prompts, 1).values()][:max_flat]
    cols = 8
    rows = [first[j:j + cols] for j in range(0, len(first), cols)]
    caption = lambda i: f"{class_names[labels[i]]} #{i}: {prompts[i]}"
    note = f"one per class for {len(first)} of its {len(present)} classes"
  width = max(7.0, cell_w * cols + (0.9 if len(present) <= max_rows else 0.2))
  fig = new_figure(width, cell_h * len(rows) + 0.7)
  axes = np.asarray(fig.subplots(len(rows), cols, squeeze=False))
  for r, row in enumerate(rows):
    for q in range(cols):
      if q < len(row):
        _draw_cell(axes[r, q], images[row[q]], caption(row[q]))
      else:
        axes[r, q].axis("off")
    if len(present) <= max_rows:
      c = int(present[r])
      axes[r, 0].set_ylabel(f"{class_names[c]}\n({_images(int(np.sum(labels == c)))})",
                            fontsize=9, rotation=0, ha="right", va="center", labelpad=6)
  title = (f"Support set: {_images(len(images))}, {note}. "
           "Under each image: #index (its file number) and the prompt that made it.")
  fig.suptitle("\n".join(textwrap.wrap(title, width=int(width * 13))), fontsize=10)
  save_figure(fig, path, dpi=110)


def save_all_images(images: np.ndarray, labels: np.ndarray, path: str) -> None:
  """Every image of the set, no text: one block of rows per class (each class starts a new row,
  empty cells in the grid's grey), enlarged to >= 32 px so small images stay visible."""
  images, labels = np.asarray(images), np.asarray(labels)
  cols = min(max(np.bincount(labels)), int(np.ceil(np.sqrt(len(images)))) + 5)
  blank = np.full(images.shape[1:], 128, np.uint8)  # image_grid's padding grey
  cells = []
  for c in np.unique(labels):
    block = list(images[labels == c])
    cells += block + [blank] * (-len(block) % cols)
  scale = max(1, -(-32 // min(images.shape[1:3])))
  save_png(path, image_grid(np.stack(cells), cols=cols, scale=scale, pad=2))
