"""Several seeds of the four arms: means and 95% confidence intervals (Student's t)."""
from __future__ import annotations

import numpy as np
from scipy import stats

from jaxsets.loop.arms import ARMS

# Paired gains reported (a - b on the same seed): the agent against each other arm, and the
# two rules against real data alone.
PAIRS = (("rl", "baseline"), ("rl", "random"), ("rl", "balanced"), ("random", "baseline"),
         ("balanced", "baseline"))


def mean_ci(values) -> dict:
  """Mean and the half-width of its 95% t-interval (0 for a single value)."""
  x = np.asarray(values, np.float64)
  half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0
  return {"mean": float(x.mean()), "ci95": half, "low": float(x.mean() - half),
          "high": float(x.mean() + half)}


def summarise(per_seed: dict) -> dict:
  """per_seed: {seed: results.json content} -> compare.json content."""
  seeds = sorted(per_seed)
  out = {"seeds": seeds, "arms": {}, "paired_gains": {}}
  for arm in ARMS:
    accs = [per_seed[s]["test_accuracy"][arm] for s in seeds]
    per_class = np.mean([per_seed[s]["per_class_accuracy"][arm] for s in seeds], axis=0)
    out["arms"][arm] = {"test_accuracy": accs, **mean_ci(accs), "per_class_accuracy": per_class.tolist()}
  for a, b in PAIRS:
    diffs = [per_seed[s]["test_accuracy"][a] - per_seed[s]["test_accuracy"][b] for s in seeds]
    out["paired_gains"][f"{a}-{b}"] = {"per_seed": diffs, **mean_ci(diffs)}
  return out


def table(summary: dict) -> str:
  lines = [f"{'arm':<10} {'test accuracy (mean ± 95% CI)':<32} per seed",
           "-" * 72]
  for arm in ARMS:
    a = summary["arms"][arm]
    lines.append(f"{arm:<10} {a['mean']:.4f} ± {a['ci95']:.4f}{'':<16} "
                 + " ".join(f"{v:.4f}" for v in a["test_accuracy"]))
  lines.append("")
  for name, g in summary["paired_gains"].items():
    lines.append(f"gain {name:<16} {g['mean']:+.4f} ± {g['ci95']:.4f} (paired over seeds)")
  return "\n".join(lines)
