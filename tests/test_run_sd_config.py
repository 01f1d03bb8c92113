"""configs/cifar10_sd.py:smoke runs the whole loop through the real-SD loading path: a tiny random
Stable Diffusion in diffusers' format (3 channels, 16x16) and an RGB image folder at 32x32."""
import json
import os

import numpy as np
from PIL import Image

from jaxsets import config_loading
from jaxsets.loop.run import run
from tiny_sd import save_tiny_sd

CLASSES = ("zero", "one", "two")  # words the tiny tokenizer knows


def make_folder(root):
  rng = np.random.default_rng(0)  # test data, not a learner
  for c, name in enumerate(CLASSES):
    os.makedirs(os.path.join(root, name))
    for i in range(16):
      img = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
      img[:, :, c] += 150          # each class has its own dominant colour
      Image.fromarray(img).save(os.path.join(root, name, f"{i}.png"))
  return root


def test_cifar10_sd_smoke_runs_with_a_tiny_sd(tmp_path):
  sd = save_tiny_sd(str(tmp_path / "tiny_sd"), channels=3)
  folder = make_folder(str(tmp_path / "images"))
  config = config_loading.load_config_file("configs/cifar10_sd.py:smoke")
  config_loading.apply_overrides(config, [f"--config.data.name=folder:{folder}",
                                          f"--config.generator.model={sd}",
                                          "--config.prompts.domains=photo,drawing"])
  results = run(config, str(tmp_path / "work"), quiet=True)
  assert results["num_synthetic"] == 8
  assert set(results["test_accuracy"]) == {"baseline", "random", "rl"}
  with open(tmp_path / "work" / "support_set" / "manifest.jsonl") as f:
    rows = [json.loads(line) for line in f]
  first = Image.open(tmp_path / "work" / "support_set" / rows[0]["file"])
  assert first.size == (32, 32) and first.mode == "RGB"   # 16x16 SD output resized to the data's size
  assert {r["class_name"] for r in rows} <= set(CLASSES)
