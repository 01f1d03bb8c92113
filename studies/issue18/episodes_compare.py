"""Two `jaxsets compare` workdirs of the same seeds that differ in one setting (design A, design
B), judged on validation, with the test figures beside them.

  python studies/issue18/episodes_compare.py WORKDIR_A WORKDIR_B

Per seed, each arm's validation accuracy (`val_accuracy` in results.json: the same fine-tunes of
the delivered set as its test accuracy, scored on the validation split) and test accuracy; then,
as mean ± 95% CI (t) over seeds in points: rl B − rl A, and rl − balanced and rl − random within
each design. The agent's rewards were measured on the validation split, so its validation
accuracy is an optimistic estimate against the rules'; test is the unbiased one.
"""
import json
import os
import sys

import numpy as np
from scipy import stats


def ci(x):
  x = 100 * np.asarray(x, np.float64)
  half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
  return f"{x.mean():+.2f} ± {half:.2f} ({int(np.sum(x > 0))} of {len(x)} above 0)"


def results(workdir, seed):
  with open(os.path.join(workdir, f"seed_{seed}", "results.json")) as f:
    return json.load(f)


def main(a, b):
  with open(os.path.join(b, "compare.json")) as f:
    seeds = json.load(f)["seeds"]
  rows = {split: {d: {arm: [] for arm in ("random", "balanced", "rl")} for d in "AB"}
          for split in ("val_accuracy", "test_accuracy")}
  for s in seeds:
    for d, w in (("A", a), ("B", b)):
      r = results(w, s)
      for split in rows:
        for arm in rows[split][d]:
          rows[split][d][arm].append(r[split][arm])
    print(f"seed {s}: " + "; ".join(
        f"{split[:-9]} rl A {rows[split]['A']['rl'][-1]:.4f} B {rows[split]['B']['rl'][-1]:.4f} "
        f"balanced {rows[split]['B']['balanced'][-1]:.4f}" for split in rows))
  for split, by in rows.items():
    print(f"{split}:")
    print(f"  rl B − rl A: {ci(np.subtract(by['B']['rl'], by['A']['rl']))}")
    for d in "AB":
      print(f"  design {d}: rl − balanced {ci(np.subtract(by[d]['rl'], by[d]['balanced']))}; "
            f"rl − random {ci(np.subtract(by[d]['rl'], by[d]['random']))}")


if __name__ == "__main__":
  main(*sys.argv[1:3])
