"""Classifier throughput on this machine: compile time apart from steady images/s.

  python benchmarks/classifier_throughput.py --out runs/bench/classifier.json

Times, for the digits recipe in configs/digits.py (override with --config.KEY=VALUE):
  * one fine-tune on all real digits + a full 400-image support set (the RL loop's inner
    step, 40 per episode): compile time, then the median of --repeats warm calls;
  * baseline training steps (images/s) and evaluation on the test split.
Every timing ends with block_until_ready; warm-up calls are excluded from steady figures.
The PyTorch side by side is benchmarks/run.py --only classifier_finetune (bench_classifier.py).
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
  parser.add_argument("--out", default="classifier_throughput.json")
  parser.add_argument("--support", type=int, default=400)
  parser.add_argument("--repeats", type=int, default=5)
  args, overrides = parser.parse_known_args(argv)

  import jax
  import jax.numpy as jnp
  import numpy as np

  from jaxsets import config_loading, data, sharding
  from jaxsets.classifier import ClassifierConfig, SupportBatch, evaluate, finetune
  from jaxsets.classifier.train import baseline_chunk, empty_support
  from jaxsets.classifier.state import init_state

  config = config_loading.load_config_file(args.config)
  config_loading.apply_overrides(config, ["--config.data.train_per_class=0", *overrides])
  cfg = ClassifierConfig.from_config(config.classifier)
  splits = data.load_dataset(config.data, int(config.seed))
  mesh = sharding.make_mesh()
  shape = splits.image_shape
  state = init_state(jax.random.key(0), cfg, shape, splits.num_classes, mesh)
  real = data.put_on_devices(splits.train, mesh)
  # A full support set: 400 real-looking images (train images repeated), all valid.
  idx = np.arange(args.support) % len(splits.train)
  support = SupportBatch(jnp.asarray(splits.train.images[idx]),
                         jnp.asarray(splits.train.labels[idx]), jnp.ones(args.support, bool))
  result = {"machine": machine(), "model": cfg.model, "dataset": splits.name, "devices": mesh.size,
            "batch_size": cfg.batch_size,
            "num_real": len(splits.train), "num_support": args.support}

  ft = lambda i: finetune(state, real, support, jax.random.key(i), cfg=cfg, mesh=mesh)
  _, first = timed(lambda: ft(0))
  warm = [timed(lambda: ft(i + 1))[1] for i in range(args.repeats)]
  steady = statistics.median(warm)
  result["finetune"] = {"steps": cfg.finetune_steps, "compile_and_first_s": first,
                        "compile_s": first - steady, "steady_s_median": steady,
                        "steady_s_all": warm,
                        "images_per_s": cfg.finetune_steps * cfg.batch_size / steady}

  chunk = 50
  empty = empty_support(shape, mesh.size)
  train = lambda s, i: baseline_chunk(s, real, empty, jax.random.key(1), i * chunk, cfg=cfg,
                                      num_steps=chunk, mesh=mesh)
  s = init_state(jax.random.key(0), cfg, shape, splits.num_classes, mesh)
  (s, _), first = timed(lambda: train(s, 0))
  times = []
  for i in range(1, args.repeats + 1):
    (s, _), t = timed(lambda: train(s, i))
    times.append(t)
  steady = statistics.median(times)
  result["train"] = {"steps_per_call": chunk, "compile_s": first - steady,
                     "steady_s_per_step": steady / chunk,
                     "images_per_s": chunk * cfg.batch_size / steady}

  ev = lambda: evaluate(s, splits.test.images, splits.test.labels)
  _, first = timed(ev)
  steady = statistics.median(timed(ev)[1] for _ in range(args.repeats))
  result["evaluate"] = {"rows": len(splits.test), "compile_s": first - steady, "steady_s": steady,
                        "images_per_s": len(splits.test) / steady}

  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out + ".tmp", "w") as f:
    json.dump(result, f, indent=2)
  os.replace(args.out + ".tmp", args.out)
  print(json.dumps({k: result[k] for k in ("finetune", "train", "evaluate")}, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
