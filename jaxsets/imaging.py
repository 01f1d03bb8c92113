"""PNG files and image grids (what a person looks at)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from jaxsets.atomic import atomic_path


def save_png(path: str, image: np.ndarray) -> None:
  """image: uint8 [H, W, C] with C in {1, 3}; written atomically."""
  img = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
  with atomic_path(path) as tmp:
    img.save(tmp, format="PNG")


def image_grid(images: np.ndarray, cols: int | None = None, scale: int = 1, pad: int = 1) -> np.ndarray:
  """uint8 [N, H, W, C] -> one uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, C] grid, each image
  enlarged `scale` times with nearest-neighbour (small digits stay crisp)."""
  n, h, w, c = images.shape
  cols = cols or int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / cols))
  big = images.repeat(scale, axis=1).repeat(scale, axis=2)
  h, w = h * scale, w * scale
  grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 128, np.uint8)
  for i in range(n):
    r, q = divmod(i, cols)
    grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = big[i]
  return grid
