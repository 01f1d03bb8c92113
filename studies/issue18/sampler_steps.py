"""Issue 18: how few sampler steps keep the embedded generator's images readable.

For each (scheduler, steps, guidance scale) it reads 200 "A photo of a {digit}" images and 200 three-class
prompts with the quality reader (make.py's check, the same prompts and keys) and times a batch of
40 images (one training step of 4 environments x 10 images) after compiling.

From the repository root (it reads configs/digits.py; an empty cache pretrains first):
  JAXSETS_CACHE=DIR python studies/issue18/sampler_steps.py OUT.json [--config.pretrain.steps=1000 ...]
"""
import json
import sys
import time

import jax

from jaxsets import config_loading, data
from jaxsets.generator import load_generator
from jaxsets.generator.embedded import make

# (scheduler, steps, guidance scale); the default is ("ddim", 20, 3.0).
SETTINGS = (("ddim", 20, 3.0), ("ddim", 20, 5.0), ("ddim", 10, 3.0), ("dpm_solver", 10, 3.0),
            ("dpm_solver", 10, 5.0), ("dpm_solver", 8, 3.0), ("euler", 10, 3.0))


def main(out: str, overrides) -> None:
  config = config_loading.load_config_file("configs/digits.py")
  config_loading.apply_overrides(config, list(overrides))
  folder = make.ensure_embedded(config, quiet=True)
  reader = make._fit_reader(config)
  names = data.load_generator_pool(config.data).class_names
  rows = []
  for scheduler, steps, guidance in SETTINGS:
    c = config.copy_and_resolve_references()
    c.generator.scheduler, c.generator.num_inference_steps = scheduler, steps
    c.generator.guidance_scale = guidance
    gen = load_generator(c)
    rec = make._recognition(c, gen.parts, reader, names)
    prompts = [f"A photo of a {names[i % len(names)]}" for i in range(40)]
    jax.block_until_ready(gen.generate(prompts, jax.random.key(0)))
    t0 = time.perf_counter()
    for r in range(3):
      jax.block_until_ready(gen.generate(prompts, jax.random.key(r + 1)))
    row = {"scheduler": scheduler, "steps": steps, "guidance_scale": guidance,
           "batch_40_s": (time.perf_counter() - t0) / 3,
           "recognition_rate": rec["recognition_rate"],
           "recognition_rate_three_class_prompts": rec["recognition_rate_three_class_prompts"]}
    print(row, flush=True)
    rows.append(row)
  with open(out, "w") as f:
    json.dump({"folder": folder, "overrides": list(overrides), "rows": rows}, f, indent=2)


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2:])
