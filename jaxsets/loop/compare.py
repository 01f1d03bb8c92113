"""Several seeds of the four arms: means and 95% confidence intervals (Student's t), overall and,
on long-tailed data, on the rarest classes."""
from __future__ import annotations

import numpy as np
from scipy import stats

from jaxsets.loop.arms import ARMS

# Paired gains reported (a - b on the same seed): the agent against each other arm, and the
# two rules against real data alone.
PAIRS = (("rl", "baseline"), ("rl", "random"), ("rl", "balanced"), ("random", "baseline"),
         ("balanced", "baseline"))
RAREST = 3  # on long-tailed training data, the classes whose accuracy is reported apart


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
  out["paired_gains"] = paired_gains({s: per_seed[s]["test_accuracy"] for s in seeds})
  if all("val_accuracy" in per_seed[s] for s in seeds):  # results.json of runs before it lack it
    val = {s: per_seed[s]["val_accuracy"] for s in seeds}
    out["validation"] = {
        "arms": {arm: {"val_accuracy": [val[s][arm] for s in seeds],
                       **mean_ci([val[s][arm] for s in seeds])} for arm in ARMS},
        "paired_gains": paired_gains(val)}
  rarest = rarest_classes(per_seed)
  if rarest is not None:
    out["rarest_classes"] = rarest
  return out


def paired_gains(accuracy: dict) -> dict:
  """accuracy: {seed: {arm: accuracy}} -> {"a-b": per-seed differences, mean, 95% CI}."""
  seeds = sorted(accuracy)
  gains = {}
  for a, b in PAIRS:
    diffs = [accuracy[s][a] - accuracy[s][b] for s in seeds]
    gains[f"{a}-{b}"] = {"per_seed": diffs, **mean_ci(diffs)}
  return gains


def rarest_classes(per_seed: dict, k: int = RAREST) -> dict | None:
  """Where the real training data is long-tailed: every arm's mean accuracy over the k classes
  with the fewest real training images (in each seed's own split), and the paired gains on them.
  None where every class has as many images (or the results predate train_class_counts)."""
  seeds = sorted(per_seed)
  counts = [per_seed[s].get("train_class_counts") for s in seeds]
  if any(c is None for c in counts) or all(min(c) == max(c) for c in counts):
    return None
  # Fewest images first; among equals the later class (the long tail's own order).
  rare = {s: sorted(range(len(c)), key=lambda i: (c[i], -i))[:k] for s, c in zip(seeds, counts)}
  accuracy = {s: {arm: float(np.mean([per_seed[s]["per_class_accuracy"][arm][i] for i in rare[s]]))
                  for arm in ARMS} for s in seeds}
  names = per_seed[seeds[0]].get("class_names")
  # Per seed, in the order of the summary's seeds.
  return {"k": k, "classes": [[names[i] if names else i for i in rare[s]] for s in seeds],
          "train_images": [[c[i] for i in rare[s]] for s, c in zip(seeds, counts)],
          "arms": {arm: {"accuracy": [accuracy[s][arm] for s in seeds],
                         **mean_ci([accuracy[s][arm] for s in seeds])} for arm in ARMS},
          "paired_gains": paired_gains(accuracy)}


def _gain_lines(gains: dict) -> list[str]:
  return [f"gain {name:<16} {g['mean']:+.4f} ± {g['ci95']:.4f} (paired over seeds)"
          for name, g in gains.items()]


def table(summary: dict) -> str:
  lines = [f"{'arm':<10} {'test accuracy (mean ± 95% CI)':<32} per seed",
           "-" * 72]
  for arm in ARMS:
    a = summary["arms"][arm]
    lines.append(f"{arm:<10} {a['mean']:.4f} ± {a['ci95']:.4f}{'':<16} "
                 + " ".join(f"{v:.4f}" for v in a["test_accuracy"]))
  lines += ["", *_gain_lines(summary["paired_gains"])]
  val = summary.get("validation")
  if val:
    # The split to choose designs on; the agent's rewards were scored on it, so its figure
    # there is optimistic against the rules'.
    lines += ["", "validation accuracy (choose settings on these; the agent was rewarded on "
              "this split)"]
    lines += [f"{arm:<10} {val['arms'][arm]['mean']:.4f} ± {val['arms'][arm]['ci95']:.4f}"
              for arm in ARMS]
    lines += _gain_lines(val["paired_gains"])
  rare = summary.get("rarest_classes")
  if rare:
    lines += ["", f"the {rare['k']} classes with the fewest real training images "
              f"(seed {summary['seeds'][0]}: {', '.join(map(str, rare['classes'][0]))})"]
    lines += [f"{arm:<10} {rare['arms'][arm]['mean']:.4f} ± {rare['arms'][arm]['ci95']:.4f}"
              for arm in ARMS]
    lines += _gain_lines(rare["paired_gains"])
  return "\n".join(lines)
