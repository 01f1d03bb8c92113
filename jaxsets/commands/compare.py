"""Run the four arms over several seeds; write compare.json with per-seed test accuracies, means
and 95% confidence intervals, and print a table. Each seed is a resumable run in WORKDIR/seed_S.
"""
from __future__ import annotations

import os


def add_arguments(parser) -> None:
  parser.add_argument("--workdir", required=True, metavar="DIR")
  parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (default 0,1,2,3,4)")
  parser.add_argument("--no-progress", action="store_true")


def parse_seeds(text: str) -> list[int]:
  from jaxsets.errors import UserError
  try:
    seeds = [int(s) for s in text.split(",") if s.strip()]
  except ValueError:
    raise UserError(f"--seeds {text!r}: give comma-separated integers, e.g. 0,1,2,3,4.") from None
  if not seeds or len(set(seeds)) != len(seeds):
    raise UserError(f"--seeds {text!r}: give at least one seed, each once.")
  return seeds


def run(args, config) -> int:
  from jaxsets import atomic
  from jaxsets.loop.checks import check_config

  seeds = parse_seeds(args.seeds)
  check_config(config)  # a refused config leaves no workdir behind, not even an empty one
  atomic.check_writable_dir(args.workdir, "workdir")
  # The loop (models, the learner, TensorFlow Datasets) only for a config that passed.
  from jaxsets.loop.compare import summarise, table
  from jaxsets.loop.driver import Preempted
  from jaxsets.loop.run import run as run_method
  per_seed = {}
  for seed in seeds:
    seed_config = config.copy_and_resolve_references()
    seed_config.seed = seed
    try:
      per_seed[seed] = run_method(seed_config, os.path.join(args.workdir, f"seed_{seed}"),
                                  quiet=args.no_progress)
    except Preempted as e:
      print(f"jaxsets compare: stopped in seed {seed} at step {e.args[0]}; run again to resume.")
      return 143
  summary = summarise(per_seed)
  atomic.write_json(os.path.join(args.workdir, "compare.json"), summary)
  print(table(summary))
  return 0
