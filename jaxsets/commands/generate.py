"""Generate images for one prompt with the configured generator; write PNGs and a grid.

  jaxsets generate --config configs/digits.py --prompt "A photo of a seven, one, and four" \
      --num-images 16 --out DIR
"""
from __future__ import annotations

import os
import time

from jaxsets.errors import UserError


def add_arguments(parser) -> None:
  parser.add_argument("--prompt", required=True, help='e.g. "A photo of a seven, one, and four"')
  parser.add_argument("--num-images", type=int, default=16, help="how many images (default 16)")
  parser.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files")
  parser.add_argument("--seed", type=int, default=None, help="random seed (default: config.seed)")


def run(args, config) -> int:
  if args.num_images <= 0:
    raise UserError(f"--num-images must be at least 1 (got {args.num_images}).")
  if not args.prompt.strip():
    raise UserError("--prompt is empty: give the text to draw, e.g. \"A photo of a seven\".")
  from jaxsets.atomic import check_writable_dir
  check_writable_dir(args.out)

  import jax
  import numpy as np

  from jaxsets.generator import load_generator
  from jaxsets.imaging import image_grid, save_png

  generator = load_generator(config, quiet=False)  # a bar when loading takes over a second
  seed = int(config.seed if args.seed is None else args.seed)
  ids = generator.tokenize([args.prompt] * args.num_images)
  start = time.time()
  images = np.asarray(generator.generate_ids(ids, jax.random.key(seed)))
  seconds = time.time() - start
  # Everything is in memory before the first file is written: a failure leaves no partial set.
  for i, image in enumerate(images):
    save_png(os.path.join(args.out, f"{i:04d}.png"), image)
  scale = max(1, 64 // images.shape[1])
  save_png(os.path.join(args.out, "grid.png"), image_grid(images, scale=scale))
  print(f"wrote {len(images)} images and grid.png to {args.out} "
        f"({seconds:.1f} s including compilation, {generator.cfg.scheduler} "
        f"{generator.cfg.num_inference_steps} steps, guidance {generator.guidance_scale}).")
  return 0
