"""Support sets for the public API: build one with a trained agent, load one a run saved.

`build_support_set` is the roll-out that `jaxsets run` delivers (env/rollout.py: roll_out, the
same steps the driver takes): each step the agent sees the classifier's validation metrics, picks
(domain, c1, c2, c3), the generator draws images_per_step images labelled c1, and the classifier
(fine-tuned from the baseline on real data + the set so far) is scored again. Every stage is a
compiled program reused by every step. The set's format lives in outputs/support_set.py.
"""
from __future__ import annotations

import jax

from jaxsets.errors import UserError
from jaxsets.outputs.support_set import SupportSet
from jaxsets.outputs.support_set import load_support_set as _load


def build_support_set(agent, generator, book, baseline, real, validation, key: jax.Array, *,
                      budget: int, images_per_step: int = 10, cfg=None, reward_cfg=None,
                      observation_cfg=None, rollout: str = "herding",
                      first_step: int = 0) -> SupportSet:
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
    key: typed PRNG key: the environment's reset (fine-tune minibatches, fixed over the
      roll-out) uses its stream ROLLOUT and step t's image noise its stream GENERATE at
      first_step + t (jaxsets/streams.py), so a run's root key and first_step = episodes *
      steps per episode give that run's set, bit for bit;
    budget: images in the final set (a multiple of images_per_step); cfg: `ClassifierConfig`;
    reward_cfg: `RewardConfig`; observation_cfg: `ObservationConfig`.
  Returns: a `SupportSet` of `budget` images with their prompts and per-step rewards.

  Example (see README, "Using the parts from Python"):
    >>> support = jaxsets.build_support_set(agent, generator, book, baseline, real, val,  # doctest: +SKIP
    ...                                     jax.random.key(3), budget=40)
  """
  from jaxsets.agent import ObservationConfig, RewardConfig
  from jaxsets.agent.config import ROLLOUTS
  from jaxsets.classifier import ClassifierConfig
  from jaxsets.env import environment, rollout as env_rollout

  cfg = cfg or ClassifierConfig()
  if budget < 1 or budget % images_per_step:
    raise UserError(f"budget={budget} must be a positive multiple of images_per_step={images_per_step}.")
  if rollout not in ROLLOUTS:  # before the reset's fine-tune
    raise UserError(f"rollout={rollout!r} must be one of {', '.join(map(repr, ROLLOUTS))}.")
  spec = environment.EnvSpec(images_per_step=int(images_per_step), budget=int(budget),
                             num_classes=book.num_classes,
                             observation=observation_cfg or ObservationConfig(),
                             reward=reward_cfg or RewardConfig(), finetune_from=cfg.finetune_from)
  world = env_rollout.World(baseline, real, validation, cfg, spec, generator, book, generator.mesh)
  env, rewards = env_rollout.roll_out(world, agent, key, rollout=rollout, first_step=first_step)
  return env_rollout.support_set_of(env, rewards, book, images_per_step=spec.images_per_step)


def load_support_set(path: str) -> SupportSet:
  """Reads a saved support set: a run's workdir, or its `support_set/` folder.

  Reads manifest.jsonl and the PNGs it lists (no TensorFlow needed); class names come from the
  TFDS copy's label list (or the run's results.json). Image i is manifest line i.

  Example:
    >>> support = jaxsets.load_support_set("runs/digits")                # doctest: +SKIP
    >>> support.images.shape, support.prompts[0]                         # doctest: +SKIP
    ((400, 8, 8, 1), 'A photo of a six, four, and eight')
  """
  return _load(path)
