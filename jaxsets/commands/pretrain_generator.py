"""Pretrain the embedded generator (a tiny Stable Diffusion) on the digits generator pool.

The result is saved in diffusers' format in the cache (generator.cache_dir, $JAXSETS_CACHE or
~/.cache/jaxsets) and reused by every later command with the same pretraining settings.
"""
from __future__ import annotations

import os

from jaxsets.errors import UserError


def add_arguments(parser) -> None:
  parser.add_argument("--rebuild", action="store_true", help="pretrain again even if cached")
  parser.add_argument("--no-progress", action="store_true", help="do not show progress bars")


def run(args, config) -> int:
  if config.generator.model != "embedded":
    raise UserError(f"generator.model={config.generator.model!r} is pretrained already; "
                    "pretrain-generator builds only the embedded model (generator.model='embedded').")
  from jaxsets.atomic import check_writable_dir
  from jaxsets.generator.embedded.make import ensure_embedded
  from jaxsets.generator.loading import cache_dir, describe_embedded, embedded_folder

  folder = embedded_folder(config)
  cached = os.path.isfile(os.path.join(folder, "model_index.json")) and not args.rebuild
  check_writable_dir(cache_dir(config), "generator cache")
  folder = ensure_embedded(config, quiet=args.no_progress, rebuild=args.rebuild)
  info = describe_embedded(folder)
  print(("cached: " if cached else "built: ") + folder)
  if info:
    print(f"recognition rate of 'A photo of a {{class}}' images (logistic regression on real "
          f"digits): {info['recognition_rate']:.3f}; three-class prompts read as c1: "
          f"{info['recognition_rate_three_class_prompts']:.3f}; "
          f"pretraining took {info['train_seconds']:.0f} s.")
  return 0
