"""Everything a run needs before its first step: configs checked, data on the devices, the
generator loaded (pretrained first if it is the embedded one and not cached), the prompt book."""
from __future__ import annotations

import dataclasses
from typing import Any

from jaxsets import data, sharding
from jaxsets.agent import PPOConfig
from jaxsets.classifier import ClassifierConfig
from jaxsets.classifier.baseline import check_batch
from jaxsets.data.device import DeviceSet, put_on_devices, whole_on_every_device
from jaxsets.env.environment import EnvSpec, envs_split
from jaxsets.errors import UserError
from jaxsets.loop.checks import check_config
from jaxsets.loop.config import LoopConfig
from jaxsets.prompts import PromptBook, PromptsConfig, make_prompt_book


@dataclasses.dataclass(frozen=True, eq=False)
class RunSetup:
  # The ConfigDict as given, kept only to write config.json and results.json: everything that
  # computes reads the typed sections below.
  config: Any
  seed: int
  loop: LoopConfig
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
    return self.loop.num_envs

  @property
  def steps_per_episode(self) -> int:
    return self.spec.steps_per_episode

  @property
  def update_every(self) -> int:
    """Steps between PPO updates: config.agent.update_every, or once per episode (0)."""
    return self.loop.update_period


def class_names_for(prompts: PromptsConfig, splits) -> tuple[str, ...]:
  """The dataset's class names, or the user's replacements (same count, same order)."""
  override = prompts.class_names
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

  c = check_config(config)
  spec = EnvSpec(images_per_step=c.loop.images_per_step, budget=c.loop.budget, num_classes=0,
                 observation=c.ppo.observation, reward=c.reward,
                 finetune_from=c.classifier.finetune_from)
  splits = data.load_dataset(c.data, c.seed)
  check_dataset(splits)
  spec = dataclasses.replace(spec, num_classes=splits.num_classes)
  names = class_names_for(c.prompts, splits)
  mesh = sharding.make_mesh()
  check_batch(c.classifier, mesh)  # before the generator loads: a minibatch split over the devices
  if c.generator.model == "embedded":
    ensure_embedded(config, quiet=quiet)  # pretrains once where the cache is empty
  generator = load_generator(config, mesh, quiet=quiet)
  book = make_prompt_book(generator.parts.tokenizer, c.prompts.template, c.prompts.domains,
                          names, generator.max_length)
  check_dictionary(book)
  # Environments split over the devices fine-tune and score whole on each (env/environment.py):
  # then a copy of the data on every device, placed once, rather than gathered at every step.
  place = whole_on_every_device if envs_split(c.loop.num_envs, mesh) else put_on_devices
  real, val = place(splits.train, mesh), place(splits.validation, mesh)
  return RunSetup(config, c.seed, c.loop, spec, c.ppo, c.classifier, splits, real, val, mesh,
                  generator, book)
