"""jaxsets: compact synthetic support sets with a PPO prompt agent and Stable Diffusion, in JAX.

The public API is exactly the names in `jaxsets.__all__`; their signatures and behaviour are
kept stable. Every other module and name (jaxsets.loop, jaxsets.generator.hf, ...) is internal
and may change in any release. Each public function is pure and jittable, or a small object
around one, and its docstring gives shapes, dtypes and an example:

  configs      load_config
  data         load_dataset, device_set, support_batch, empty_support
  devices      make_mesh, replicate
  generator    load_generator, load_generator_from_config, make_prompt_book, Generator
  classifier   ClassifierConfig, init_classifier, train_classifier, finetune, evaluate
  agent        PPOConfig, ObservationConfig, init_agent, act, greedy_action, agent_value,
               ppo_update, gae, Transition, observation_size, make_observation,
               load_agent (a run's trained agent), TrainedAgent
  reward       RewardConfig, reward, check_finite, register_entropy
  support sets SupportSet, build_support_set, load_support_set

    import jax, jaxsets
    generator = jaxsets.load_generator("stabilityai/stable-diffusion-2-1-base", image_size=32)
    images = generator.generate(["A photo of a cat, dog, and ship"], jax.random.key(0))

Names are imported on first use, so `import jaxsets` (and the `jaxsets` command) stays fast and
does not load diffusers, transformers or TensorFlow until a part that needs them is used.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from jaxsets import lazy as _lazy
from jaxsets import xla_cpu as _xla_cpu

# Before any JAX computation: XLA reads its flags once (a warning if JAX has already started).
_xla_cpu.warn_if_started(_xla_cpu.prefer_xla_kernels())

# public name -> (module, attribute). The API's own facades live in jaxsets.api; plain types are
# re-exported from where they are defined.
_EXPORTS = {
    "load_config": ("jaxsets.api.configs", "load_config"),
    # data
    "load_dataset": ("jaxsets.api.classification", "load_dataset"),
    "device_set": ("jaxsets.api.classification", "device_set"),
    "support_batch": ("jaxsets.api.classification", "support_batch"),
    "empty_support": ("jaxsets.api.classification", "empty_support"),
    "make_mesh": ("jaxsets.api.devices", "make_mesh"),
    "replicate": ("jaxsets.api.devices", "replicate"),
    "DatasetSplits": ("jaxsets.data.types", "DatasetSplits"),
    "ImageSet": ("jaxsets.data.types", "ImageSet"),
    "DeviceSet": ("jaxsets.data.device", "DeviceSet"),
    # generator
    "load_generator": ("jaxsets.api.generation", "load_generator"),
    "load_generator_from_config": ("jaxsets.api.generation", "load_generator_from_config"),
    "make_prompt_book": ("jaxsets.api.generation", "make_prompt_book"),
    "Generator": ("jaxsets.generator.generator", "Generator"),
    "PromptBook": ("jaxsets.prompts", "PromptBook"),
    # classifier
    "ClassifierConfig": ("jaxsets.classifier.config", "ClassifierConfig"),
    "ClassifierState": ("jaxsets.classifier.state", "ClassifierState"),
    "EvalMetrics": ("jaxsets.classifier.evaluate", "EvalMetrics"),
    "SupportBatch": ("jaxsets.classifier.train", "SupportBatch"),
    "init_classifier": ("jaxsets.api.classification", "init_classifier"),
    "train_classifier": ("jaxsets.api.classification", "train_classifier"),
    "finetune": ("jaxsets.api.classification", "finetune"),
    "evaluate": ("jaxsets.api.classification", "evaluate"),
    # agent
    "PPOConfig": ("jaxsets.agent.config", "PPOConfig"),
    "ObservationConfig": ("jaxsets.agent.config", "ObservationConfig"),
    "AgentState": ("jaxsets.agent.policy", "AgentState"),
    "Transition": ("jaxsets.agent.ppo", "Transition"),
    "init_agent": ("jaxsets.api.agents", "init_agent"),
    "load_agent": ("jaxsets.api.agents", "load_agent"),
    "TrainedAgent": ("jaxsets.api.agents", "TrainedAgent"),
    "act": ("jaxsets.api.agents", "act"),
    "greedy_action": ("jaxsets.api.agents", "greedy_action"),
    "agent_value": ("jaxsets.api.agents", "agent_value"),
    "ppo_update": ("jaxsets.api.agents", "ppo_update"),
    "gae": ("jaxsets.api.agents", "gae"),
    "observation_size": ("jaxsets.api.agents", "observation_size"),
    "make_observation": ("jaxsets.api.agents", "make_observation"),
    # reward
    "RewardConfig": ("jaxsets.agent.reward", "RewardConfig"),
    "NonFiniteRewardError": ("jaxsets.agent.reward", "NonFiniteRewardError"),
    "reward": ("jaxsets.api.agents", "reward"),
    "check_finite": ("jaxsets.api.agents", "check_finite"),
    "register_entropy": ("jaxsets.api.agents", "register_entropy"),
    # support sets
    "SupportSet": ("jaxsets.outputs.support_set", "SupportSet"),
    "build_support_set": ("jaxsets.api.support_sets", "build_support_set"),
    "load_support_set": ("jaxsets.api.support_sets", "load_support_set"),
    # errors
    "UserError": ("jaxsets.errors", "UserError"),
}

# A literal list, so that static tools (IDEs, type checkers, `from jaxsets import *`) read it;
# a test checks that it names exactly the keys of _EXPORTS.
__all__ = [
    "AgentState", "ClassifierConfig", "ClassifierState", "DatasetSplits", "DeviceSet",
    "EvalMetrics", "Generator", "ImageSet", "NonFiniteRewardError", "ObservationConfig",
    "PPOConfig", "PromptBook", "RewardConfig", "SupportBatch", "SupportSet", "TrainedAgent",
    "Transition", "UserError", "act", "agent_value", "build_support_set", "check_finite",
    "device_set", "empty_support", "evaluate", "finetune", "gae", "greedy_action", "init_agent",
    "init_classifier", "load_agent", "load_config", "load_dataset", "load_generator",
    "load_generator_from_config", "load_support_set", "make_mesh", "make_observation",
    "make_prompt_book", "observation_size", "ppo_update", "register_entropy", "replicate",
    "reward", "support_batch", "train_classifier",
]


__getattr__, __dir__ = _lazy.lazy_exports(
    __name__, _EXPORTS, ". The public API is jaxsets.__all__; other names are internal.")


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
  from jaxsets.agent.config import ObservationConfig, PPOConfig  # noqa: F401
  from jaxsets.agent.policy import AgentState  # noqa: F401
  from jaxsets.agent.ppo import Transition  # noqa: F401
  from jaxsets.agent.reward import NonFiniteRewardError, RewardConfig  # noqa: F401
  from jaxsets.api.agents import (TrainedAgent, act, agent_value, check_finite, gae,  # noqa: F401
                                  greedy_action, init_agent, load_agent, make_observation,
                                  observation_size, ppo_update, register_entropy, reward)
  from jaxsets.api.classification import (device_set, empty_support, evaluate,  # noqa: F401
                                          finetune, init_classifier, load_dataset,
                                          support_batch, train_classifier)
  from jaxsets.api.configs import load_config  # noqa: F401
  from jaxsets.api.devices import make_mesh, replicate  # noqa: F401
  from jaxsets.api.generation import (load_generator, load_generator_from_config,  # noqa: F401
                                      make_prompt_book)
  from jaxsets.api.support_sets import build_support_set, load_support_set  # noqa: F401
  from jaxsets.classifier.config import ClassifierConfig  # noqa: F401
  from jaxsets.classifier.evaluate import EvalMetrics  # noqa: F401
  from jaxsets.classifier.state import ClassifierState  # noqa: F401
  from jaxsets.classifier.train import SupportBatch  # noqa: F401
  from jaxsets.data.device import DeviceSet  # noqa: F401
  from jaxsets.data.types import DatasetSplits, ImageSet  # noqa: F401
  from jaxsets.errors import UserError  # noqa: F401
  from jaxsets.generator.generator import Generator  # noqa: F401
  from jaxsets.outputs.support_set import SupportSet  # noqa: F401
  from jaxsets.prompts import PromptBook  # noqa: F401
