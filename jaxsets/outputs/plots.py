"""The report's curves and bars, drawn with matplotlib's Agg canvas.

Figures are made with `matplotlib.figure.Figure` and an explicit Agg canvas, not pyplot: no global
backend switch, no figure registry to leak, safe beside other code that uses pyplot.
"""
from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np

from jaxsets.atomic import atomic_path

# Every arm a results.json may hold, in the order shown (an older run's file lacks "balanced").
ARM_LABELS = {"baseline": "baseline (real only)", "random": "random prompts",
              "balanced": "balanced pure prompts", "rl": "RL prompts"}
ARM_SHORT = {"baseline": "baseline", "random": "random", "balanced": "balanced", "rl": "RL"}
ARM_COLORS = {"baseline": "#8c8c8c", "random": "#4c72b0", "balanced": "#55a868", "rl": "#dd8452"}


def arms_in(scores: dict) -> list[str]:
  """The arms `scores` (a results.json section keyed by arm) holds, in display order."""
  return [a for a in ARM_LABELS if a in scores]


def new_figure(width: float, height: float):
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
  FigureCanvasAgg(fig)
  return fig


def save_figure(fig, path: str, dpi: int = 120) -> None:
  with atomic_path(path) as tmp:
    fig.savefig(tmp, format="png", dpi=dpi, facecolor="white")


def _no_data(ax, what: str) -> None:
  ax.text(0.5, 0.5, f"no {what} recorded", ha="center", va="center", transform=ax.transAxes,
          color="#666666")
  ax.set_xticks([])
  ax.set_yticks([])


def _shade_episodes(ax, episodes: np.ndarray) -> None:
  """Light bands on alternate episodes so a reader sees where each one starts."""
  starts = np.flatnonzero(np.r_[True, episodes[1:] != episodes[:-1]])
  ends = np.r_[starts[1:], len(episodes)]
  for j, (a, b) in enumerate(zip(starts, ends)):
    if j % 2 == 1:
      ax.axvspan(a + 0.5, b + 0.5, color="#000000", alpha=0.05, lw=0)


def _running_mean(x: np.ndarray, window: int) -> np.ndarray:
  c = np.cumsum(np.r_[0.0, x])
  idx = np.arange(1, len(x) + 1)
  lo = np.maximum(idx - window, 0)
  return (c[idx] - c[lo]) / (idx - lo)


def plot_reward_per_step(history: dict, path: str) -> None:
  """Top: reward of every environment step (mean over environments) and its running mean.
  Bottom: validation accuracy after each step. Alternate episodes are shaded."""
  reward = np.asarray(history.get("step_reward", []), np.float64)
  val = np.asarray(history.get("step_val_accuracy", []), np.float64)
  episodes = np.asarray(history.get("step_episode", []))
  fig = new_figure(8, 5.5)
  top, bottom = fig.subplots(2, 1, sharex=True)
  steps = np.arange(1, len(reward) + 1)
  if len(reward):
    window = max(1, len(reward) // 20)
    top.plot(steps, reward, ".", color="#4c72b0", alpha=0.45, ms=4, label="reward per step")
    top.plot(steps, _running_mean(reward, window), color="#c44e52", lw=2,
             label=f"running mean ({window} steps)")
    top.axhline(0.0, color="#444444", lw=0.8)
    top.legend(loc="best", fontsize=9)
    if len(episodes) == len(reward):
      _shade_episodes(top, episodes)
  else:
    _no_data(top, "step rewards")
  top.set_ylabel("reward")
  top.set_title("Reward per environment step (shaded bands: alternate episodes)")
  if len(val):
    vsteps = np.arange(1, len(val) + 1)
    bottom.plot(vsteps, 100 * val, color="#55a868", lw=1.5, marker="." if len(val) < 200 else None)
    if len(episodes) == len(val):
      _shade_episodes(bottom, episodes)
    bottom.set_ylabel("validation accuracy (%)")
  else:
    _no_data(bottom, "validation accuracy")
  bottom.set_xlabel("environment step")
  for ax in (top, bottom):
    ax.grid(alpha=0.3)
  save_figure(fig, path)


def plot_reward_per_episode(history: dict, path: str) -> None:
  rewards = np.asarray(history.get("episode_reward", []), np.float64)
  fig = new_figure(7, 4)
  ax = fig.subplots()
  if len(rewards) == 0:
    _no_data(ax, "episode rewards")
  else:
    x = np.arange(1, len(rewards) + 1)
    if len(rewards) <= 40:  # bars read well for a few episodes; a line for many
      ax.bar(x, rewards, color=["#dd8452" if r >= 0 else "#8c8c8c" for r in rewards])
      ax.set_xticks(x if len(x) <= 20 else x[::max(1, len(x) // 10)])
    else:
      ax.plot(x, rewards, color="#dd8452", lw=1, alpha=0.6)
      ax.plot(x, _running_mean(rewards, max(1, len(x) // 20)), color="#c44e52", lw=2)
    ax.axhline(0.0, color="#444444", lw=0.8)
    ax.grid(alpha=0.3, axis="y")
  ax.set_xlabel("episode")
  ax.set_ylabel("total reward")
  ax.set_title("Reward per episode (sum over its steps)")
  save_figure(fig, path)


def _tick_labels(names: Sequence[str], inches_per_class: float) -> tuple[list[str], int]:
  """Class names that fit under their bar group: wrapped onto two lines if that suffices, else
  rotated 45 degrees, long ones cut in the middle (the ends tell classes apart: "n01443537")."""
  fits = max(4, int(inches_per_class * 72 / 6.5))  # about 6.5 pt per character at 10 pt
  wrapped = [textwrap.wrap(str(n), fits) or [""] for n in names]
  if all(len(w) <= 2 and max(map(len, w)) <= fits for w in wrapped):
    return ["\n".join(w) for w in wrapped], 0
  cut = lambda n: n if len(n) <= 24 else n[:11] + "…" + n[-12:]
  return [cut(str(n)) for n in names], 45


def plot_per_class_accuracy(per_class: dict, class_names: Sequence[str], test_accuracy: dict,
                            path: str) -> None:
  """Grouped bars (one group per class, one bar per arm) up to 40 classes; beyond that each arm's
  per-class accuracies sorted, which still shows how many classes each arm gets right."""
  arms = arms_in(per_class)
  n = len(class_names)
  label = lambda a: (f"{ARM_SHORT[a]}: {100 * test_accuracy[a]:.1f}%" if a in test_accuracy
                     else ARM_SHORT[a])
  if n <= 40:
    width = max(7.0, 0.55 * n + 2)
    ticks, rotation = _tick_labels(class_names, (width - 1.2) / n)
    # Rotated names take height of their own; the bars keep theirs.
    fig = new_figure(width, 4.5 + (0.05 * max(map(len, ticks)) if rotation else 0))
    ax = fig.subplots()
    x = np.arange(n)
    w = 0.8 / max(1, len(arms))
    for j, a in enumerate(arms):
      ax.bar(x + (j - (len(arms) - 1) / 2) * w, 100 * np.asarray(per_class[a]), w,
             color=ARM_COLORS[a], label=label(a))
    ax.set_xticks(x, ticks, rotation=rotation, ha="right" if rotation else "center",
                  rotation_mode="anchor" if rotation else "default")
    ax.set_xlabel("class")
  else:
    fig = new_figure(8, 4.5)
    ax = fig.subplots()
    for a in arms:
      ax.plot(np.arange(1, n + 1), np.sort(100 * np.asarray(per_class[a]))[::-1],
              color=ARM_COLORS[a], lw=2, label=label(a))
    ax.set_xlabel(f"classes, sorted by accuracy within each arm ({n} classes)")
  ax.set_ylim(0, 105)
  ax.set_ylabel("test accuracy (%)")
  ax.set_title("Per-class test accuracy of each arm")
  ax.grid(alpha=0.3, axis="y")
  # Below the axes: inside, the legend would hide bars.
  fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=len(arms),
             fontsize=9, frameon=False, title="arm: overall test accuracy", title_fontsize=9)
  save_figure(fig, path)
