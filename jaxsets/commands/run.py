"""Run the whole method (resumable): pretrain the generator if needed, train the PPO prompt agent,
build the support set with its roll-out (herding by default), and compare baseline / random /
balanced / rl on the test split.

Running the same command again on the same workdir resumes from the latest good checkpoint.
"""
from __future__ import annotations


def add_arguments(parser) -> None:
  parser.add_argument("--workdir", required=True, metavar="DIR", help="checkpoints and outputs")
  parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args, config) -> int:
  from jaxsets.loop.checks import check_config
  check_config(config)  # in a second: the loop below imports the models, the learner and TFDS
  from jaxsets.loop.driver import Preempted
  from jaxsets.loop.run import run as run_method

  try:  # run_method checks the config again, then the workdir, before anything slow
    results = run_method(config, args.workdir, quiet=args.no_progress)
  except Preempted as e:
    print(f"jaxsets run: stopped at step {e.args[0]} and saved; run the same command to resume.")
    return 143
  from jaxsets.loop.arms import ARMS
  acc = results["test_accuracy"]
  arms = "  ".join(f"{arm} {acc[arm]:.4f}" for arm in ARMS if arm in acc)
  print(f"test accuracy  {arms}  ({results['num_synthetic']} synthetic images, seed {results['seed']})")
  print(f"outputs in {args.workdir}: results.json, report.md, support_set/")
  return 0
