"""Generation speed on this machine: compile time apart from steady images/s.

  python benchmarks/generation.py --out runs/bench/generation.json             # the embedded generator
  python benchmarks/generation.py --config.generator.model=PATH_OR_HF_ID ...    # real SD weights

Times, for the generator that the config names (built/pretrained first if it is the embedded one):
  * the first call (compilation + one batch), then the median of --repeats warm calls of the
    same prompt batch (images per second);
  * the RL loop's real pattern: a different prompt every call (--prompts of them, cycled),
    which must reuse the compiled program (the JSON records how many programs were compiled).
Every timing ends with block_until_ready; warm-up calls are excluded from steady figures.
The side by side with diffusers' Flax and PyTorch pipelines is benchmarks/run.py --only generation.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from common import machine, timed  # noqa: E402  (also puts the repo on sys.path)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/digits.py")
  parser.add_argument("--out", default="generation.json")
  parser.add_argument("--batch", type=int, default=10, help="images per call (the loop's images_per_step)")
  parser.add_argument("--repeats", type=int, default=5)
  args, overrides = parser.parse_known_args(argv)

  import jax

  from jaxsets import atomic, config_loading
  from jaxsets.generator import ensure_embedded, load_generator
  from jaxsets.prompts import make_prompt_book

  config = config_loading.load_config_file(args.config)
  config_loading.apply_overrides(config, overrides)
  if config.generator.model == "embedded":
    ensure_embedded(config)
  gen = load_generator(config)
  names = tuple(config.prompts.class_names) or tuple(
      ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
  book = make_prompt_book(gen.parts.tokenizer, config.prompts.template, tuple(config.prompts.domains),
                          names, gen.max_length)
  ids = gen.tokenize([book.text((0, 7, 1, 4))] * args.batch)
  key = jax.random.key(0)

  _, first = timed(lambda: gen.generate_ids(ids, key))
  same = [timed(lambda: gen.generate_ids(ids, jax.random.fold_in(key, i)))[1] for i in range(args.repeats)]
  prompts = [gen.tokenize([book.text((i % book.num_domains, i % 10, (i + 3) % 10, (i + 6) % 10))]
                          * args.batch) for i in range(args.repeats)]
  varied = [timed(lambda: gen.generate_ids(p, jax.random.fold_in(key, 100 + i)))[1]
            for i, p in enumerate(prompts)]
  steady, steady_varied = statistics.median(same), statistics.median(varied)
  result = {
      "machine": machine(),
      "generator": config.generator.model, "scheduler": gen.cfg.scheduler,
      "num_inference_steps": gen.cfg.num_inference_steps, "guidance_scale": gen.guidance_scale,
      "image_size": gen.cfg.image_size, "out_size": gen.cfg.out_size, "batch": args.batch,
      "compile_and_first_s": first, "compile_s": first - steady,
      "same_prompt": {"steady_s_median": steady, "steady_s_all": same, "images_per_s": args.batch / steady},
      "new_prompt_each_call": {"steady_s_median": steady_varied, "steady_s_all": varied,
                               "images_per_s": args.batch / steady_varied},
      "compiled_programs": gen._sample._cache_size(),
  }
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  atomic.write_json(args.out, result)
  print(json.dumps({k: result[k] for k in ("compile_s", "same_prompt", "new_prompt_each_call",
                                           "compiled_programs")}, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
