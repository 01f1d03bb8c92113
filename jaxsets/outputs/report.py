"""`workdir/report.md` and its PNGs in `workdir/plots/`: what a person reads after a run."""
from __future__ import annotations

import collections
import json
import os
from typing import Sequence

import numpy as np

from jaxsets.atomic import atomic_path
from jaxsets.distributed import is_writer
from jaxsets.outputs import grid, plots
from jaxsets.outputs.plots import ARM_LABELS, ARM_SHORT, arms_in
from jaxsets.outputs.results import jsonable

PLOTS = {  # file in workdir/plots/ -> what it shows (also the image's alt text)
    "reward_per_step.png": "reward per step and validation accuracy",
    "reward_per_episode.png": "reward per episode",
    "per_class_accuracy.png": "per-class test accuracy of each arm",
    "support_set_grid.png": "a sample of the support set with its prompts",
    "support_set_all.png": "every support-set image, sorted by class",
}
# Run facts shown when the config has them: (label, dotted key).
FACTS = (("dataset", "data.name"), ("real training images per class", "data.train_per_class"),
         ("classifier", "classifier.model"), ("generator", "generator.model"),
         ("budget (synthetic images)", "loop.budget"), ("images per step", "loop.images_per_step"),
         ("episodes", "agent.episodes"), ("environments stepped together", "agent.num_envs"),
         ("test fine-tunes averaged per arm", "loop.eval_repeats"),
         ("prompt template", "prompts.template"))


def _get(tree: dict, dotted: str):
  for part in dotted.split("."):
    if not isinstance(tree, dict) or part not in tree:
      return None
    tree = tree[part]
  return tree


def _cell(text) -> str:
  """Text safe inside a markdown table cell."""
  return str(text).replace("|", "\\|").replace("\n", " ")


def _pct(x: float) -> str:
  return f"{100 * x:.2f}%"


def _pts(d: float) -> str:
  return f"{100 * d:+.2f} pts"


def accuracy_table(results: dict) -> list[str]:
  acc = results["test_accuracy"]
  repeats = results.get("test_accuracy_repeats") or {}
  entropy = results.get("test_mean_entropy") or {}
  arms = arms_in(acc)
  # The agent's gain over each rule that does not learn (random prompts, the balanced rule).
  rules = [a for a in arms if a not in ("baseline", "rl")]
  head = ["arm", "test accuracy", "vs baseline", *(f"RL vs {r}" for r in rules)]
  if repeats:
    head.append("range over fine-tunes")
  if entropy:
    head.append("mean predictive entropy")
  rows = ["| " + " | ".join(head) + " |", "|" + "---|" + "--:|" * (len(head) - 1)]
  best = max(acc[a] for a in arms)
  for arm in arms:
    cells = [ARM_LABELS[arm], f"**{_pct(acc[arm])}**" if acc[arm] == best else _pct(acc[arm]),
             _pts(acc[arm] - acc["baseline"]) if arm != "baseline" else "—",
             *(_pts(acc["rl"] - acc[r]) if arm == "rl" else "—" for r in rules)]
    if repeats:
      r = np.asarray(repeats.get(arm, []), np.float64)
      cells.append(f"{_pct(r.min())} – {_pct(r.max())} (n={len(r)})" if len(r) else "")
    if entropy:
      cells.append(f"{entropy[arm]:.3f}" if arm in entropy else "")
    rows.append("| " + " | ".join(cells) + " |")
  return rows


def verdict(acc: dict) -> str:
  word = lambda d: "beats" if d > 0 else ("ties" if d == 0 else "trails")
  names = {"random": "random prompts", "balanced": "the balanced rule",
           "baseline": "the real-only baseline"}
  others = [(a, names[a]) for a in names if a in acc]
  said = [f"{word(acc['rl'] - acc[a])} {name} ({_pts(acc['rl'] - acc[a])})" for a, name in others]
  return (f"On this seed the RL support set {', '.join(said[:-1])} and {said[-1]}. One seed is "
          "noisy: `jaxsets compare` gives means and 95% intervals over seeds.")


def per_class_table(per_class: dict, class_names: Sequence[str], labels: np.ndarray) -> list[str]:
  counts = np.bincount(labels, minlength=len(class_names)) if len(labels) else np.zeros(len(class_names), int)
  arms = arms_in(per_class)
  gains = [a for a in arms if a != "rl"]
  head = ["class", *(ARM_SHORT[a] for a in arms), *(f"RL − {ARM_SHORT[a]}" for a in gains),
          "RL images"]
  rows = ["| " + " | ".join(head) + " |", "|---|" + "--:|" * (len(head) - 1)]
  for k, name in enumerate(class_names):
    q = per_class["rl"][k]
    cells = [_cell(name), *(_pct(per_class[a][k]) for a in arms),
             *(_pts(q - per_class[a][k]) for a in gains), str(int(counts[k]))]
    rows.append("| " + " | ".join(cells) + " |")
  return rows


def training_facts(history: dict) -> list[str]:
  steps, ep = history.get("step_reward", []), history.get("episode_reward", [])
  val = history.get("step_val_accuracy", [])
  out = [f"- environment steps: {len(steps)}, episodes: {len(ep)}"]
  if ep:
    out.append(f"- episode reward: first {ep[0]:+.4f}, last {ep[-1]:+.4f}, best {max(ep):+.4f}")
  if steps:
    out.append(f"- mean step reward: {np.mean(steps):+.4f}")
  if val:
    out.append(f"- validation accuracy: first step {_pct(val[0])}, last step {_pct(val[-1])}")
  return out


def composition_line(results: dict) -> list[str]:
  """The RL set's domains and blend in one sentence (results["rl_composition"])."""
  comp = results.get("rl_composition")
  if not comp:
    return []
  domains = ", ".join(f"{name} {n}" for name, n in
                      sorted(comp["domain_steps"].items(), key=lambda kv: -kv[1]) if n)
  return [f"The RL set's {comp['steps']} steps by domain: {domains}; pure prompts "
          f"(c2 = c3 = c1) in {comp['pure_steps']} of them.", ""]


def prompt_table(prompts: Sequence[str], top: int = 10) -> list[str]:
  counts = collections.Counter(prompts).most_common(top)
  rows = [f"Most used prompts ({len(set(prompts))} distinct):", "",
          "| prompt | images |", "|---|--:|"]
  return rows + [f"| {_cell(p)} | {c} |" for p, c in counts]


def make_plots(workdir: str, results: dict, history: dict, images, labels, prompts,
               class_names) -> None:
  folder = os.path.join(workdir, "plots")
  os.makedirs(folder, exist_ok=True)
  p = lambda name: os.path.join(folder, name)
  plots.plot_reward_per_step(history, p("reward_per_step.png"))
  plots.plot_reward_per_episode(history, p("reward_per_episode.png"))
  plots.plot_per_class_accuracy(results["per_class_accuracy"], class_names,
                                results["test_accuracy"], p("per_class_accuracy.png"))
  if len(labels):
    grid.plot_support_grid(images, labels, prompts, class_names, p("support_set_grid.png"))
    grid.save_all_images(images, labels, p("support_set_all.png"))


def render(results: dict, history: dict, labels: np.ndarray, prompts: Sequence[str],
           class_names: Sequence[str], has_images: bool) -> str:
  config = results.get("config") or {}
  img = lambda name: f"![{PLOTS[name]}](plots/{name})"
  facts = [f"- seed: {results['seed']}", f"- synthetic images: {results['num_synthetic']}",
           f"- classes: {len(class_names)}"]
  if "num_real_train" in results:
    facts.append(f"- real training images: {results['num_real_train']}")
  facts += [f"- {label}: {_get(config, key)}" for label, key in FACTS if _get(config, key) is not None]
  if "seconds" in results:
    facts.append(f"- run time: {results['seconds']:.0f} s")
  lines = ["# jaxsets run report", "",
           "Each arm fine-tunes the same classifier recipe and is scored on the **test** split: "
           "real data only (baseline), real plus images from uniformly random prompts (random), "
           "real plus images from a fixed rule that does not learn (balanced: every class "
           "equally often, pure prompts, the domains in turn), and real plus the support set the "
           "trained PPO agent built (RL); every synthetic arm has the same number of images.", "",
           "## Test accuracy", "", *accuracy_table(results), "", verdict(results["test_accuracy"]), "",
           "## Per-class test accuracy", "", img("per_class_accuracy.png"), ""]
  if len(class_names) <= 40:
    lines += [*per_class_table(results["per_class_accuracy"], class_names, labels), ""]
  lines += ["## Training", "", *training_facts(history), "", img("reward_per_step.png"), "",
            img("reward_per_episode.png"), "", "## Support set", "",
            f"{len(labels)} images in [support_set/](support_set/): one folder per class, "
            "[manifest.jsonl](support_set/manifest.jsonl) (file, label, class_name, prompt, step, "
            "reward per line) and the same set as a TFDS dataset:", "", "```python",
            "import tensorflow_datasets as tfds",
            'ds = tfds.builder_from_directory("support_set/tfds").as_dataset(split="train")',
            "# or, random access (grain, numpy); use a separate builder for each, as",
            "# as_data_source switches its builder to the ArrayRecord copy:",
            'source = tfds.builder_from_directory("support_set/tfds").as_data_source(split="train")',
            "```", ""]
  if has_images:
    lines += [img("support_set_grid.png"), "",
              f"Every image, sorted by class: [plots/support_set_all.png](plots/support_set_all.png)", "",
              *composition_line(results), *prompt_table(prompts), ""]
  lines += ["## Run facts", "", *facts, "", "<details><summary>Full config</summary>", "",
            "```json", json.dumps(jsonable(config), indent=2, sort_keys=True), "```", "",
            "</details>", ""]
  return "\n".join(lines)


def write_report(workdir: str, results: dict, history: dict, support_images, support_labels,
                 support_prompts: Sequence[str], class_names: Sequence[str]) -> str:
  """Writes workdir/report.md and workdir/plots/*.png (each file atomically); returns report.md's path.

  results: results.json's content; history: step_reward, step_episode, episode_reward,
  step_val_accuracy lists; support_images uint8 [N, H, W, C]; support_labels int [N];
  support_prompts: N strings. Only process 0 writes.
  """
  if not is_writer():
    return os.path.join(workdir, "report.md")
  labels = np.asarray(support_labels).astype(np.int64).reshape(-1)
  prompts = [str(p) for p in support_prompts]
  if len(prompts) != len(labels):
    raise ValueError(f"{len(labels)} support labels but {len(prompts)} prompts")
  os.makedirs(workdir, exist_ok=True)
  make_plots(workdir, results, history, np.asarray(support_images), labels, prompts, class_names)
  path = os.path.join(workdir, "report.md")
  text = render(results, history, labels, prompts, class_names, has_images=len(labels) > 0)
  with atomic_path(path) as tmp:
    with open(tmp, "w") as f:
      f.write(text)
  return path
