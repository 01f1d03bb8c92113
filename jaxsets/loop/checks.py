"""Every check of a run config that needs neither data nor a model, in a module that imports
neither: `jaxsets run` and `jaxsets compare` refuse a bad value in about a second, before they
import the loop, touch a workdir or start anything slow."""
from __future__ import annotations

import dataclasses
import json

from jaxsets import config_types
from jaxsets.agent.config import PPOConfig
from jaxsets.agent.reward import RewardConfig
from jaxsets.classifier.config import ClassifierConfig
from jaxsets.data.config import DataConfig
from jaxsets.errors import UserError
from jaxsets.generator.config import GeneratorConfig, check_generator
from jaxsets.generator.embedded.pretrain import PretrainConfig
from jaxsets.loop.config import LoopConfig
from jaxsets.prompts import PromptsConfig


@dataclasses.dataclass(frozen=True)
class RunConfigs:
  """Every section of a run config, typed and checked (`check_config`)."""
  seed: int
  loop: LoopConfig
  ppo: PPOConfig
  classifier: ClassifierConfig
  reward: RewardConfig
  data: DataConfig
  generator: GeneratorConfig
  prompts: PromptsConfig


def check_loop_config(config) -> LoopConfig:
  """Refuses impossible loop settings (and values of the wrong kind) before anything slow."""
  return LoopConfig.from_config(config)


def check_config(config) -> RunConfigs:
  """The typed sections of a run config; UserError naming the first bad value."""
  seed = config_types.read_value("seed", config_types.lookup(config, "seed"), int)
  loop = check_loop_config(config)
  generator = GeneratorConfig.from_config(config.generator)
  check_generator(generator)
  prompts = PromptsConfig.from_config(config.prompts)
  if generator.model == "embedded":
    PretrainConfig.from_config(config.pretrain)
  data_cfg = DataConfig.from_config(config.data)
  try:
    ppo = PPOConfig.from_config(config.agent)
  except ValueError as e:
    raise UserError(str(e)) from e
  classifier = ClassifierConfig.from_config(config.classifier)
  try:
    reward = RewardConfig.from_config(config.reward)
    json.dumps(config.to_dict())  # the workdir keeps it as config.json
  except (TypeError, ValueError) as e:
    raise UserError(f"bad config: {e}") from e
  return RunConfigs(seed, loop, ppo, classifier, reward, data_cfg, generator, prompts)
