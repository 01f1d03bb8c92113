"""Everything a run needs before its first step: configs checked, data on the devices, the
generator loaded (pretrained first if it is the embedded one and not cached), the prompt book."""
from __future__ import annotations

import dataclasses
from typing import Any


from jaxsets import data, sharding
from jaxsets.agent import PPOConfig, RewardConfig
from jaxsets.classifier import ClassifierConfig
from jaxsets.data.device import DeviceSet, put_on_devices
from jaxsets.errors import UserError
from jaxsets.loop.env import EnvSpec
from jaxsets.loop.prompts import PromptBook, make_prompt_book


@dataclasses.dataclass(frozen=True, eq=False)
class RunSetup:
  config: Any
  spec: EnvSpec
  ppo: PPOConfig
  clf_cfg: ClassifierConfig
  splits: data.DatasetSplits
  real: DeviceSet
  val: DeviceSet
  mesh: Any
  generator: Any
  book: PromptBook

  @property
  def num_envs(self) -> int:
    return self.ppo.num_envs

  @property
  def steps_per_episode(self) -> int:
    return self.spec.steps_per_episode

  @property
  def update_every(self) -> int:
    """Steps between PPO updates: config.agent.update_every, or once per episode (0)."""
    u = int(self.config.agent.update_every)
    return u if u > 0 else self.steps_per_episode


def check_loop_config(config) -> None:
  """Refuses impossible loop settings before anything slow starts."""
  ips, budget = int(config.loop.images_per_step), int(config.loop.budget)
  if ips < 1:
    raise UserError(f"loop.images_per_step={ips}: must be at least 1.")
  if budget < 1:
    raise UserError(f"loop.budget={budget}: must be at least 1 (the support-set size).")
  if budget % ips:
    raise UserError(f"loop.budget={budget} is not a multiple of loop.images_per_step={ips}: "
                    f"use e.g. --config.loop.budget={budget - budget % ips or ips}.")
  if int(config.loop.checkpoint_every) < 1 or int(config.loop.eval_repeats) < 1:
    raise UserError("loop.checkpoint_every and loop.eval_repeats must be at least 1.")
  u, steps = int(config.agent.update_every), budget // ips
  if u < 0 or (u and steps % u):
    raise UserError(f"agent.update_every={u} must divide the {steps} steps of an episode "
                    "(budget / images_per_step), or be 0 for one update per episode.")


def class_names_for(config, splits) -> tuple[str, ...]:
  """The dataset's class names, or the user's replacements (same count, same order)."""
  override = tuple(config.prompts.class_names)
  if not override:
    return splits.class_names
  if len(override) != splits.num_classes:
    unknown = [c for c in override if c not in splits.class_names]
    raise UserError(f"prompts.class_names has {len(override)} names but {splits.name!r} has "
                    f"{splits.num_classes} classes ({', '.join(splits.class_names[:10])}...)"
                    + (f"; not in the dataset: {unknown[:5]}" if unknown else "")
                    + ". Give one name per class, in label order, or () for the dataset's own.")
  return override


def make_setup(config, *, quiet: bool = False) -> RunSetup:
  from jaxsets.generator import ensure_embedded, load_generator

  check_loop_config(config)
  ppo = _agent_config(config)
  clf_cfg = ClassifierConfig.from_config(config.classifier)
  spec = EnvSpec(images_per_step=int(config.loop.images_per_step), budget=int(config.loop.budget),
                 num_classes=0, observation=ppo.observation,
                 reward=RewardConfig.from_config(config.reward),
                 finetune_from=clf_cfg.finetune_from)
  splits = data.load_dataset(config.data, int(config.seed))
  spec = dataclasses.replace(spec, num_classes=splits.num_classes)
  names = class_names_for(config, splits)
  mesh = sharding.make_mesh()
  if config.generator.model == "embedded":
    ensure_embedded(config, quiet=quiet)  # pretrains once where the cache is empty
  generator = load_generator(config, mesh)
  book = make_prompt_book(generator.parts.tokenizer, config.prompts.template,
                          tuple(config.prompts.domains), names, generator.max_length)
  real = put_on_devices(splits.train, mesh)
  val = put_on_devices(splits.validation, mesh)
  return RunSetup(config, spec, ppo, clf_cfg, splits, real, val, mesh, generator, book)


def _agent_config(config) -> PPOConfig:
  try:
    return PPOConfig.from_config(config.agent)
  except ValueError as e:
    raise UserError(str(e)) from e
