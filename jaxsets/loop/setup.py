"""Everything a run needs before its first step: configs checked, data on the devices, the
generator loaded (pretrained first if it is the embedded one and not cached), the prompt book."""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
from typing import Any

from jaxsets import data, sharding
from jaxsets.agent import PPOConfig, RewardConfig
from jaxsets.agent.rollout import ROLLOUTS
from jaxsets.classifier import ClassifierConfig
from jaxsets.classifier.baseline import check_batch
from jaxsets.data.device import DeviceSet, put_on_devices, whole_on_every_device
from jaxsets.errors import UserError
from jaxsets.env.environment import EnvSpec, envs_split
from jaxsets.prompts import PromptBook, make_prompt_book


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


# The kind each number or switch must have where a config sets it. A config file may hold any
# Python value and the dataclasses below would coerce it (bool("False") is True, int(2.7) is 2),
# so the kinds are checked first. Keys absent from a config are not required here.
_INT_KEYS = ("seed", "loop.images_per_step", "loop.budget", "loop.checkpoint_every",
             "loop.eval_repeats", "loop.keep_checkpoints", "agent.update_every", "agent.episodes",
             "agent.num_envs", "agent.epochs", "agent.minibatches", "data.image_size",
             "data.channels", "data.train_per_class", "generator.num_inference_steps",
             "classifier.batch_size", "classifier.baseline_steps", "classifier.finetune_steps",
             "classifier.crop_padding")
_FLOAT_KEYS = ("agent.learning_rate", "agent.clip_eps", "agent.value_clip_eps", "agent.vf_coef",
               "agent.ent_coef", "agent.gamma", "agent.gae_lambda", "agent.max_grad_norm",
               "reward.w_acc", "reward.w_ent", "data.imbalance_ratio", "data.val_fraction",
               "classifier.learning_rate", "classifier.finetune_learning_rate",
               "classifier.weight_decay", "classifier.label_smoothing", "generator.guidance_scale")
_BOOL_KEYS = ("agent.autoregressive", "agent.normalize_advantages", "classifier.augment",
              "classifier.hflip", "agent.observation.per_class_entropy",
              "agent.observation.support_counts")
_MISSING = object()
# ROLLOUTS (agent/rollout.py): how the trained agent builds the delivered set, config.loop.rollout.


def _get(config, dotted: str):
  node = config
  for part in dotted.split("."):
    if not hasattr(node, "keys") or part not in node:
      return _MISSING
    node = node[part]
  return node


def check_value_kinds(config) -> None:
  """Refuses a value of the wrong kind (a string for a number, 2.5 steps, a NaN rate)."""
  problems = []
  for key in _INT_KEYS:
    v = _get(config, key)
    if v is not _MISSING and (isinstance(v, bool) or not isinstance(v, numbers.Integral)):
      problems.append(f"{key}={v!r} must be a whole number")
  for key in _FLOAT_KEYS:
    v = _get(config, key)
    if v is _MISSING:
      continue
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
      problems.append(f"{key}={v!r} must be a number")
    elif not math.isfinite(v):
      problems.append(f"{key}={v!r} must be finite (a NaN or infinite setting makes NaN rewards)")
  for key in _BOOL_KEYS:
    v = _get(config, key)
    if v is not _MISSING and not isinstance(v, bool):
      problems.append(f"{key}={v!r} must be True or False")
  if problems:
    raise UserError("bad config values: " + "; ".join(problems) + ". Fix them in the config "
                    "file or with --config.KEY=VALUE.")


def check_loop_config(config) -> None:
  """Refuses impossible loop settings before anything slow starts."""
  check_value_kinds(config)
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
  keep = _get(config, "loop.keep_checkpoints")
  if keep is not _MISSING and int(keep) < 1:
    raise UserError(f"loop.keep_checkpoints={keep}: keep at least 1 checkpoint, or a crash "
                    "would have nothing to resume from.")
  rollout = _get(config, "loop.rollout")
  if rollout not in ROLLOUTS:
    shown = "missing" if rollout is _MISSING else repr(rollout)
    raise UserError(f"loop.rollout is {shown}: use one of {', '.join(map(repr, ROLLOUTS))} (how "
                    "the trained agent builds the delivered support set; see configs/digits.py).")
  u, steps = int(config.agent.update_every), budget // ips
  if u < 0 or (u and steps % u):
    raise UserError(f"agent.update_every={u} must divide the {steps} steps of an episode "
                    "(budget / images_per_step), or be 0 for one update per episode.")


def check_config(config) -> None:
  """Every check that needs neither data nor a model: a bad value fails in a second, before a
  workdir is touched or anything slow starts."""
  from jaxsets.generator.loading import check_generator_config  # imports diffusers: not at import
  check_loop_config(config)
  check_generator_config(config)
  _agent_config(config)
  ClassifierConfig.from_config(config.classifier)
  try:
    RewardConfig.from_config(config.reward)
    json.dumps(config.to_dict())  # the workdir keeps it as config.json
  except (TypeError, ValueError) as e:
    raise UserError(f"bad config: {e}") from e


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


def check_dataset(splits) -> None:
  """Before the generator loads: a dataset a classifier cannot learn from is refused now."""
  if splits.num_classes < 2:
    raise UserError(f"the dataset {splits.name!r} has {splits.num_classes} class "
                    f"({', '.join(map(str, splits.class_names)) or 'none'}): a classifier needs "
                    "at least 2. For a folder dataset, put each class's images in its own "
                    "sub-folder (PATH/<class>/*).")


def check_dictionary(book: PromptBook) -> None:
  """Every domain and class name must give the text encoder at least one token: a word made
  only of characters the tokenizer drops would vanish from every prompt without a word."""
  for label, words, lengths in (("prompts.domains", book.domains, book.domain_len),
                                ("class name", book.class_names, book.class_len)):
    empty = [w for w, n in zip(words, lengths) if int(n) == 0]
    if empty:
      raise UserError(f"the {label} {empty[:5]!r} give(s) no tokens to the generator's "
                      "tokenizer (only characters it drops): use plain words, e.g. set "
                      "prompts.domains or prompts.class_names.")


def make_setup(config, *, quiet: bool = False) -> RunSetup:
  from jaxsets.generator import ensure_embedded, load_generator

  check_config(config)
  ppo = _agent_config(config)
  clf_cfg = ClassifierConfig.from_config(config.classifier)
  spec = EnvSpec(images_per_step=int(config.loop.images_per_step), budget=int(config.loop.budget),
                 num_classes=0, observation=ppo.observation,
                 reward=RewardConfig.from_config(config.reward),
                 finetune_from=clf_cfg.finetune_from)
  splits = data.load_dataset(config.data, int(config.seed))
  check_dataset(splits)
  spec = dataclasses.replace(spec, num_classes=splits.num_classes)
  names = class_names_for(config, splits)
  mesh = sharding.make_mesh()
  check_batch(clf_cfg, mesh)  # before the generator loads: a minibatch split over the devices
  if config.generator.model == "embedded":
    ensure_embedded(config, quiet=quiet)  # pretrains once where the cache is empty
  generator = load_generator(config, mesh)
  book = make_prompt_book(generator.parts.tokenizer, config.prompts.template,
                          tuple(config.prompts.domains), names, generator.max_length)
  check_dictionary(book)
  # Environments split over the devices fine-tune and score whole on each (env/environment.py):
  # then a copy of the data on every device, placed once, rather than gathered at every step.
  place = whole_on_every_device if envs_split(ppo.num_envs, mesh) else put_on_devices
  real, val = place(splits.train, mesh), place(splits.validation, mesh)
  return RunSetup(config, spec, ppo, clf_cfg, splits, real, val, mesh, generator, book)


def _agent_config(config) -> PPOConfig:
  try:
    return PPOConfig.from_config(config.agent)
  except ValueError as e:
    raise UserError(str(e)) from e
