"""What the agent's delivered sets are made of, seed by seed, beside its gain over `balanced`.

  python studies/issue18/composition.py WORKDIR

WORKDIR is a `jaxsets compare` workdir. Per seed: rl − balanced and rl − random (test accuracy,
points), the roll-out's pure steps (c2 = c3 = c1), the spread of its first classes (the labels:
fewest and most steps of one class, classes never chosen) and its steps per domain; then how
rl − balanced goes with the pure steps and the domains over the seeds. `balanced`
has 40 pure steps, 4 of each class and 10 of each domain by construction. Reads compare.json and
seed_S/results.json only (what studies/issue18/results/ keeps of each workdir).
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np


def main(workdir: str) -> None:
  with open(os.path.join(workdir, "compare.json")) as f:
    seeds = json.load(f)["seeds"]
  print("| seed | rl − balanced | rl − random | pure steps | steps per class (min-max) | classes never chosen "
        "| steps per domain |")
  print("|---|---|---|---|---|---|---|")
  rows = []
  for seed in seeds:
    with open(os.path.join(workdir, f"seed_{seed}", "results.json")) as f:
      r = json.load(f)
    acc, comp = r["test_accuracy"], r["rl_composition"]
    per_class = np.array(list(comp["first_class_steps"].values()))
    gain_bal, gain_rand = 100 * (acc["rl"] - acc["balanced"]), 100 * (acc["rl"] - acc["random"])
    rows.append((gain_bal, comp["pure_steps"], max(comp["domain_steps"].values()),
                 *comp["domain_steps"].values()))
    print(f"| {seed} | {gain_bal:+.2f} | {gain_rand:+.2f} | {comp['pure_steps']} of {comp['steps']} "
          f"| {per_class.min()}-{per_class.max()} | {int(np.sum(per_class == 0))} "
          f"| {', '.join(f'{d} {n}' for d, n in comp['domain_steps'].items())} |")
  if len(rows) > 2:  # a constant column (e.g. a domain never chosen) has no correlation
    columns = [np.array(c, float) for c in zip(*rows)]
    names = ["pure steps", "the largest domain's steps", *(f"{d} steps" for d in comp["domain_steps"])]
    with np.errstate(invalid="ignore", divide="ignore"):
      corr = [np.corrcoef(columns[0], c)[0, 1] for c in columns[1:]]
    print("\ncorrelation over seeds of rl − balanced with " +
          "; ".join(f"{n}: {r:+.2f}" for n, r in zip(names, corr)))


if __name__ == "__main__":
  main(sys.argv[1])
