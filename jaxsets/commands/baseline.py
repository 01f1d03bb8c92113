"""Train the baseline classifier on real data only and write WORKDIR/baseline.json.

The baseline is the first arm of the evaluation protocol (real data, no synthetic images). Its
test accuracy is read once, at the end; validation metrics are reported beside it.
"""
from __future__ import annotations

import os
import time

from jaxsets import atomic


def add_arguments(parser) -> None:
  parser.add_argument("--workdir", required=True, metavar="DIR",
                      help="folder for baseline.json (created if missing)")
  parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")


def run(args, config) -> int:
  # Heavy imports here, so `jaxsets --help` stays fast.
  import jax
  import numpy as np

  from jaxsets import data, sharding, streams
  from jaxsets.classifier import ClassifierConfig, evaluate, train_baseline

  cfg = ClassifierConfig.from_config(config.classifier)   # bad config fails before data loads
  splits = data.load_dataset(config.data, int(config.seed))
  mesh = sharding.make_mesh()
  # The run's own baseline stream: `jaxsets run` with this seed trains this very baseline.
  key = streams.stream(jax.random.key(int(config.seed)), streams.BASELINE)
  start = time.time()
  state, losses = train_baseline(splits.train, splits.num_classes, key, cfg=cfg, mesh=mesh,
                                 progress=not args.no_progress)
  val = evaluate(state, splits.validation.images, splits.validation.labels)
  test = evaluate(state, splits.test.images, splits.test.labels)
  jax.block_until_ready(test)
  seconds = time.time() - start
  as_list = lambda a: [float(v) for v in np.asarray(a)]
  result = {
      "dataset": splits.name,
      "model": cfg.model,
      "seed": int(config.seed),
      "num_train": len(splits.train),
      "num_validation": len(splits.validation),
      "num_test": len(splits.test),
      "train_per_class": int(config.data.train_per_class),
      "imbalance_ratio": float(config.data.imbalance_ratio),
      "steps": cfg.baseline_steps,
      "devices": mesh.size,
      "class_names": list(splits.class_names),
      "test_accuracy": float(test.accuracy),
      "per_class_accuracy": as_list(test.per_class_accuracy),
      "mean_entropy": float(test.mean_entropy),
      "test_confusion": np.asarray(test.confusion).tolist(),
      "validation_accuracy": float(val.accuracy),
      "validation_per_class_accuracy": as_list(val.per_class_accuracy),
      "validation_mean_entropy": float(val.mean_entropy),
      "final_train_loss": losses[-1],
      "train_seconds": round(seconds, 2),
  }
  os.makedirs(args.workdir, exist_ok=True)
  path = os.path.join(args.workdir, "baseline.json")
  atomic.write_json(path, result)
  print(f"baseline {cfg.model} on {splits.name}: test accuracy {result['test_accuracy']:.4f} "
        f"(validation {result['validation_accuracy']:.4f}, {result['num_train']} training "
        f"images, {seconds:.1f} s) -> {path}")
  return 0
