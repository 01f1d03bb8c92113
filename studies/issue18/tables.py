"""The README's results tables from `jaxsets compare` outputs, in markdown.

  python studies/issue18/tables.py WORKDIR [WORKDIR ...]

Each WORKDIR is a compare workdir (its compare.json, and seed_S/results.json for the per-seed
figures). Prints, per workdir: every arm's test accuracy (mean ± 95% CI over seeds), the paired
gains, on how many seeds rl beat each arm, and, on long-tailed data, the same on the rarest
classes.
"""
from __future__ import annotations

import json
import os
import sys

LABELS = {"baseline": "baseline (real data only)", "random": "random prompts",
          "balanced": "balanced (rule: every class, pure prompts, domains in turn)",
          "rl": "RL agent (roll-out)"}


def points(x: float) -> str:
  return f"{100 * x:+.2f}"


def arms_table(arms: dict) -> list[str]:
  rows = ["| arm | test accuracy, mean ± 95% CI |", "|---|---|"]
  return rows + [f"| {LABELS[a]} | {v['mean']:.3f} ± {v['ci95']:.3f} |" for a, v in arms.items()]


def gains_lines(gains: dict) -> list[str]:
  rows = ["| paired gain | points, mean ± 95% CI | seeds above 0 |", "|---|---|---|"]
  for name, g in gains.items():
    wins = sum(d > 0 for d in g["per_seed"])
    rows.append(f"| {name.replace('-', ' − ')} | {points(g['mean'])} ± {100 * g['ci95']:.2f} "
                f"| {wins} of {len(g['per_seed'])} |")
  return rows


def main(workdirs: list[str]) -> None:
  for workdir in workdirs:
    with open(os.path.join(workdir, "compare.json")) as f:
      summary = json.load(f)
    print(f"## {workdir}: seeds {summary['seeds']}\n")
    print("\n".join(arms_table(summary["arms"])) + "\n")
    print("\n".join(gains_lines(summary["paired_gains"])) + "\n")
    rare = summary.get("rarest_classes")
    if rare:
      classes = sorted({tuple(c) for c in rare["classes"]})
      print(f"The {rare['k']} classes with the fewest real training images: "
            f"{'; '.join(', '.join(map(str, c)) for c in classes)} "
            f"({'; '.join(', '.join(map(str, n)) for n in rare['train_images'][:1])} images in seed "
            f"{summary['seeds'][0]})\n")
      print("\n".join(arms_table(rare["arms"])) + "\n")
      print("\n".join(gains_lines(rare["paired_gains"])) + "\n")


if __name__ == "__main__":
  main(sys.argv[1:])
