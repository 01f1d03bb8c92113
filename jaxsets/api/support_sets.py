"""Support sets for the public API: build one with a trained agent, load one a run saved.

`build_support_set` is the roll-out that `jaxsets run` delivers: each step the agent sees
the classifier's validation metrics, picks (domain, c1, c2, c3), the generator draws
images_per_step images labelled c1, and the classifier (fine-tuned from the baseline on real data
+ the set so far) is scored again. Every stage is a compiled program reused by every step.
"""
from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxsets.errors import UserError


@dataclasses.dataclass(frozen=True)
class SupportSet:
  """A synthetic support set on the host.

  images uint8 [N, H, W, C]; labels int32 [N] (dataset class indices, the prompt's c1);
  prompts: N strings; steps int32 [N]: the agent step that made each image; rewards float32
  [N]: that step's reward; class_names: every class of the dataset, in label order.
  """
  images: np.ndarray
  labels: np.ndarray
  prompts: tuple[str, ...]
  steps: np.ndarray
  rewards: np.ndarray
  class_names: tuple[str, ...]

  def __len__(self) -> int:
    return int(self.labels.shape[0])

  def as_batch(self, rows: int | None = None):
    """The set as a `SupportBatch` padded to `rows` (default: its size) for `finetune`."""
    from jaxsets.api.classification import support_batch
    return support_batch(self.images, self.labels, rows=len(self) if rows is None else rows)

  def save(self, workdir: str) -> str:
    """Writes workdir/support_set/ as a run does (PNGs per class, manifest.jsonl, a TFDS copy);
    returns its path. `load_support_set` reads it back."""
    from jaxsets.outputs import write_support_set
    records = [{"prompt": p, "step": int(s), "reward": float(r)}
               for p, s, r in zip(self.prompts, self.steps, self.rewards)]
    return write_support_set(workdir, self.images, self.labels, self.class_names, records)


def build_support_set(agent, generator, book, baseline, real, validation, key: jax.Array, *,
                      budget: int, images_per_step: int = 10, cfg=None, reward_cfg=None,
                      observation_cfg=None, rollout: str = "herding") -> SupportSet:
  """Rolls out `agent` for budget / images_per_step steps and returns the set it builds.

  rollout: "herding" (each domain, blend and class about as often as the policy would sample
  it, deterministically) or "greedy" (the most likely plan, chosen at the first step and kept,
  and the most likely action each step), as config.loop.rollout (jaxsets/agent/rollout.py).

  Args:
    agent: `AgentState` trained with observations of `observation_cfg` (obs_dim =
      observation_size(n, observation_cfg)); generator: a `Generator` whose images have the
      classifier's shape; book: `make_prompt_book(generator, class_names, domains=...)`;
    baseline: `ClassifierState` trained on real data (every fine-tune starts here, or from the
      previous one with cfg.finetune_from = "continue"); real, validation: `DeviceSet`s;
    key: typed PRNG key (fine-tune minibatches, fixed over the roll-out, and image noise);
    budget: images in the final set (a multiple of images_per_step); cfg: `ClassifierConfig`;
    reward_cfg: `RewardConfig`; observation_cfg: `ObservationConfig`.
  Returns: a `SupportSet` of `budget` images with their prompts and per-step rewards.

  Example (see README, "Using the parts from Python"):
    >>> support = jaxsets.build_support_set(agent, generator, book, baseline, real, val,  # doctest: +SKIP
    ...                                     jax.random.key(3), budget=40)
  """
  from jaxsets.agent import ObservationConfig, RewardConfig
  from jaxsets.agent import PPOConfig, check_finite
  from jaxsets.agent.rollout import ROLLOUTS, empty_memory, rollout_action
  from jaxsets.classifier import ClassifierConfig
  from jaxsets.env import environment as env_ops

  cfg = cfg or ClassifierConfig()
  if budget < 1 or budget % images_per_step:
    raise UserError(f"budget={budget} must be a positive multiple of images_per_step={images_per_step}.")
  spec = env_ops.EnvSpec(images_per_step=int(images_per_step), budget=int(budget),
                         num_classes=book.num_classes,
                         observation=observation_cfg or ObservationConfig(),
                         reward=reward_cfg or RewardConfig(), finetune_from=cfg.finetune_from)
  if rollout not in ROLLOUTS:  # before the reset's fine-tune
    raise UserError(f"rollout={rollout!r} must be one of {', '.join(map(repr, ROLLOUTS))}.")
  k_reset, k_images = jax.random.split(key)
  env = env_ops.reset(baseline, real, validation, k_reset, cfg, spec=spec, num_envs=1)
  plan_cfg = PPOConfig(episode_decisions=tuple(agent.network.episode_decisions))
  rewards = []
  memory = empty_memory(book.num_domains, book.num_classes)
  for t in range(spec.steps_per_episode):
    obs = env_ops.observe(env, spec=spec)                                        # [1, obs_dim]
    counts = env_ops.slot_counts(env, num_classes=book.num_classes)              # [1, 3, n]
    actions, memory = rollout_action(agent, obs, counts, t, memory, rollout=rollout, cfg=plan_cfg)
    ids = book.ids(jnp.repeat(actions, images_per_step, axis=0))                 # [ips, L]
    images = generator.generate_ids(ids, jax.random.fold_in(k_images, t))
    images = images.reshape((1, images_per_step) + images.shape[1:])
    env, r, finite, _ = env_ops.step(env, actions, images, baseline, real, validation, cfg,
                                     spec=spec)
    rewards.append(float(check_finite(r, finite)[0]))
  actions = np.asarray(env.actions[0])                                           # [T, 4]
  step_of = np.repeat(np.arange(len(actions), dtype=np.int32), images_per_step)
  return SupportSet(images=np.asarray(env.support.images[0]),
                    labels=np.asarray(env.support.labels[0], np.int32),
                    prompts=tuple(book.text(actions[s]) for s in step_of),
                    steps=step_of, rewards=np.asarray(rewards, np.float32)[step_of],
                    class_names=tuple(book.class_names))


def load_support_set(path: str) -> SupportSet:
  """Reads a saved support set: a run's workdir, or its `support_set/` folder.

  Reads manifest.jsonl and the PNGs it lists (no TensorFlow needed); class names come from the
  TFDS copy's label list (or the run's results.json). Image i is manifest line i.

  Example:
    >>> support = jaxsets.load_support_set("runs/digits")                # doctest: +SKIP
    >>> support.images.shape, support.prompts[0]                         # doctest: +SKIP
    ((400, 8, 8, 1), 'A photo of a six, four, and eight')
  """
  from PIL import Image

  folder = path if os.path.isfile(os.path.join(path, "manifest.jsonl")) else os.path.join(path, "support_set")
  manifest = os.path.join(folder, "manifest.jsonl")
  if not os.path.isfile(manifest):
    raise UserError(f"no support set at {path!r}: expected {manifest} (a run's workdir or its "
                    "support_set/ folder, written at the end of `jaxsets run`).")
  with open(manifest) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  if not rows:
    raise UserError(f"{manifest} is empty.")
  images = []
  for row in rows:
    with Image.open(os.path.join(folder, row["file"])) as im:
      a = np.asarray(im, np.uint8)
    images.append(a[..., None] if a.ndim == 2 else a)
  labels = np.asarray([r["label"] for r in rows], np.int32)
  return SupportSet(images=np.stack(images), labels=labels,
                    prompts=tuple(str(r["prompt"]) for r in rows),
                    steps=np.asarray([r["step"] for r in rows], np.int32),
                    rewards=np.asarray([r["reward"] for r in rows], np.float32),
                    class_names=_class_names(folder, rows))


def _class_names(folder: str, rows: list[dict]) -> tuple[str, ...]:
  """Every class name in label order, including classes the set does not contain."""
  labels_txt = os.path.join(folder, "tfds", "label.labels.txt")
  if os.path.isfile(labels_txt):
    with open(labels_txt) as f:
      return tuple(line.rstrip("\n") for line in f if line.strip())
  results = os.path.join(os.path.dirname(os.path.abspath(folder)), "results.json")
  if os.path.isfile(results):
    with open(results) as f:
      names = json.load(f).get("class_names")
    if names:
      return tuple(names)
  # Only the manifest: names of the classes present; absent ones get a placeholder.
  known = {int(r["label"]): str(r["class_name"]) for r in rows}
  return tuple(known.get(k, f"class_{k}") for k in range(max(known) + 1))
