"""configs/cifar10_sd.py:smoke runs the whole loop through the real-SD loading path: a tiny random
Stable Diffusion in diffusers' format (3 channels, 16x16) and an RGB image folder at 32x32."""
import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from fast_tiny_sd import save_fast_tiny_sd
from jaxsets import config_loading
from jaxsets.classifier import train
from jaxsets.env import environment as env
from jaxsets.loop.run import run
from jaxsets.loop.setup import make_setup

CLASSES = ("zero", "one", "two")  # words the tiny tokenizer knows


def class_image(rng, c, size):
  """uint8 [size, size, 3] noise with class c's own dominant colour channel."""
  img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
  img[:, :, c] += 150
  return img


def make_folder(root):
  rng = np.random.default_rng(0)  # test data, not a learner
  for c, name in enumerate(CLASSES):
    os.makedirs(os.path.join(root, name))
    for i in range(16):
      img = class_image(rng, c, 32)
      Image.fromarray(img).save(os.path.join(root, name, f"{i}.png"))
  return root


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
  """A tiny random SD in diffusers' format (plumbing only: weights drawn from their shapes)."""
  return save_fast_tiny_sd(str(tmp_path_factory.mktemp("tiny_sd")), channels=3)


def test_cifar10_sd_smoke_runs_with_a_tiny_sd(tmp_path, sd):
  train.finetune.clear_cache()
  env.reset.clear_cache()
  folder = make_folder(str(tmp_path / "images"))
  config = config_loading.load_config_file("configs/cifar10_sd.py:smoke")
  config_loading.apply_overrides(config, [f"--config.data.name=folder:{folder}",
                                          f"--config.generator.model={sd}",
                                          "--config.prompts.domains=photo,drawing"])
  results = run(config, str(tmp_path / "work"), quiet=True)
  assert results["num_synthetic"] == 8
  assert set(results["test_accuracy"]) == {"baseline", "random", "balanced", "rl"}
  with open(tmp_path / "work" / "support_set" / "manifest.jsonl") as f:
    rows = [json.loads(line) for line in f]
  first = Image.open(tmp_path / "work" / "support_set" / rows[0]["file"])
  assert first.size == (32, 32) and first.mode == "RGB"   # 16x16 SD output resized to the data's size
  assert {r["class_name"] for r in rows} <= set(CLASSES)
  # Compiled once per shape, however the inputs were placed: the three test arms share one
  # fine-tune program, and the environments one reset per environment count (training, roll-out).
  assert train.finetune._cache_size() == 1
  assert env.reset._cache_size() == 2


def make_tiny_imagenet(root):
  """Tiny-ImageNet's own layout at 64x64: wnids.txt, words.txt, train/<wnid>/images/*.JPEG,
  val/images + val/val_annotations.txt (which jaxsets uses as the test split)."""
  rng = np.random.default_rng(1)  # test data, not a learner
  wnids = [f"n0000000{c}" for c in range(len(CLASSES))]
  os.makedirs(os.path.join(root, "val", "images"))
  with open(os.path.join(root, "wnids.txt"), "w") as f:
    f.write("\n".join(wnids) + "\n")
  with open(os.path.join(root, "words.txt"), "w") as f:  # English names the tiny tokenizer knows
    f.writelines(f"{w}\t{name}\n" for w, name in zip(wnids, CLASSES))
  annotations = []
  for c, w in enumerate(wnids):
    os.makedirs(os.path.join(root, "train", w, "images"))
    for i in range(12):
      img = class_image(rng, c, 64)
      Image.fromarray(img).save(os.path.join(root, "train", w, "images", f"{w}_{i}.JPEG"))
    for i in range(4):
      img = class_image(rng, c, 64)
      Image.fromarray(img).save(os.path.join(root, "val", "images", f"val_{c}_{i}.JPEG"))
      annotations.append(f"val_{c}_{i}.JPEG\t{w}\t0\t0\t64\t64")
  with open(os.path.join(root, "val", "val_annotations.txt"), "w") as f:
    f.write("\n".join(annotations) + "\n")
  return root


def test_tiny_imagenet_sd_smoke_sets_up_the_64px_layout_and_generates_at_64px(tmp_path, sd):
  """What configs/tiny_imagenet_sd.py:smoke adds to the cifar10 run above (the same loop, at another
  size): the Tiny-ImageNet layout read into a run's setup, WordNet ids mapped to English names
  through words.txt, and a 16x16 tiny SD's images delivered at 64x64 by the run's generator."""
  folder = make_tiny_imagenet(str(tmp_path / "tin"))
  config = config_loading.load_config_file("configs/tiny_imagenet_sd.py:smoke")
  config_loading.apply_overrides(config, [f"--config.data.name=folder:{folder}",
                                          f"--config.generator.model={sd}",
                                          "--config.prompts.domains=photo,drawing"])
  s = make_setup(config, quiet=True)
  assert s.splits.class_names == CLASSES
  assert s.splits.train.images.shape == (3 * 12 - s.splits.validation.images.shape[0], 64, 64, 3)
  assert s.splits.test.images.shape == (3 * 4, 64, 64, 3)   # val/ is the test split
  # val_annotations.txt's labels reach the test split: class c's images have colour channel c lit.
  test = s.splits.test
  assert np.bincount(test.labels).tolist() == [4, 4, 4]
  channel_means = test.images.reshape(len(test.labels), -1, 3).mean(axis=1)      # [N, 3]
  assert (channel_means.argmax(axis=1) == test.labels).all()
  assert s.book.class_names == CLASSES
  prompts = [s.book.text((1, c, c, c)) for c in range(2)]   # (domain, c1, c2, c3)
  assert prompts[1] == "A drawing of a one, one, and one"
  images = s.generator.generate(prompts, jax.random.key(0))
  assert images.shape == (2, 64, 64, 3) and images.dtype == np.uint8 and images.std() > 0
