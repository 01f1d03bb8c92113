"""The agent's typed configs, built from the ml_collections config at the boundary.

`PPOConfig` is a frozen pytree, split as ClassifierConfig is: the fields that set the program's
structure (network shape, heads, epochs, minibatches) are static, so changing one recompiles;
the numbers one sweeps (learning rate, clip ranges, loss weights, gamma, lambda, clip norm) are
its leaves, traced inside jit, so a new value reuses the compiled update.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Any

from flax import struct

from jaxsets import config_types

CLASS_HEADS = ("per_class", "shared")
EPISODE_DECISIONS = ("domain", "blend")
ROLLOUTS = ("herding", "greedy")  # how a trained agent builds the delivered set (rollout.py)


def static(default):
  return struct.field(pytree_node=False, default=default)


@dataclasses.dataclass(frozen=True)
class ObservationConfig:
  """Which optional parts the state vector holds (see observation.py)."""
  per_class_entropy: bool = False  # + n values: mean predictive entropy per class / log(n)
  support_counts: bool = True      # + n values: support-set images per class / budget

  @classmethod
  def from_config(cls, section: Any) -> "ObservationConfig":
    return cls(**config_types.read_section(cls, section, "agent.observation.", required=True))


@struct.dataclass
class PPOConfig:
  """Network, optimiser and PPO settings (`config.agent` in configs/digits.py)."""
  # Traced: a new value does not recompile ppo_update or plan_update.
  learning_rate: float = 1e-3
  clip_eps: float = 0.2            # policy ratio clip
  value_clip_eps: float = 0.0      # 0 = plain squared value loss; > 0 = PPO2-style clipped
  vf_coef: float = 0.5
  ent_coef: float = 0.01
  gamma: float = 0.99
  gae_lambda: float = 0.95
  max_grad_norm: float = 0.5
  # Static: the program's structure.
  hidden_sizes: tuple[int, ...] = static((64, 64))
  autoregressive: bool = static(False)  # slot k's logits conditioned on the domain and slots < k
  # "per_class": a Dense layer gives the n logits of a slot (parameters grow as n x hidden);
  # "shared": one small MLP scores every class from the actor's features and that class's own
  # part of the observation (its validation accuracy, support count, ...). What it learns about
  # one class carries to all, so the greedy roll-out can react to the state (e.g. move on from a
  # class that already has many images).
  class_head: str = static("per_class")
  # Decisions made once per episode, at its first step, and credited with the whole episode's
  # return relative to the other environments' (episode_level.py): "domain" (the episode keeps
  # one domain) and/or "blend" (a two-way head: "pure", c2 = c3 = c1 for every prompt, or
  # "mixed", c2 and c3 from their heads each step). () = every head decides every step.
  episode_decisions: tuple[str, ...] = static(())
  # With "domain" decided per episode: one more plan, "every domain in turn" (step t of the
  # episode takes domain t mod D), so a plan can spread the set over the domains as evenly as
  # the `balanced` arm does, and learning can choose that spread or one domain on the returns.
  domain_in_turn: bool = static(False)
  epochs: int = static(4)
  minibatches: int = static(4)
  normalize_advantages: bool = static(True)
  observation: ObservationConfig = static(ObservationConfig())

  def __post_init__(self):
    # jax rebuilds the config from traced leaves inside jit: only Python numbers are checked.
    if all(isinstance(getattr(self, n), numbers.Real) for n in TRACED):
      problems = _traced_problems(self)
    else:
      problems = []
    problems += _static_problems(self)
    if problems:
      raise ValueError("bad config.agent: " + "; ".join(problems) + ".")

  @classmethod
  def from_config(cls, agent: Any) -> "PPOConfig":
    """From the `config.agent` section: every key is required (the file is the single source
    of defaults, so a missing key is a bug in the config file), each of its declared kind."""
    return cls(**config_types.read_section(cls, agent, "agent.", required=True))


TRACED = ("learning_rate", "clip_eps", "value_clip_eps", "vf_coef", "ent_coef", "gamma",
          "gae_lambda", "max_grad_norm")


def _traced_problems(cfg: PPOConfig) -> list[str]:
  problems = []
  for name in ("learning_rate", "clip_eps", "max_grad_norm"):
    if not getattr(cfg, name) > 0:
      problems.append(f"{name}={getattr(cfg, name)!r} must be > 0")
  for name in ("value_clip_eps", "vf_coef", "ent_coef"):
    if not getattr(cfg, name) >= 0:
      problems.append(f"{name}={getattr(cfg, name)!r} must be >= 0")
  for name in ("gamma", "gae_lambda"):
    if not 0.0 <= getattr(cfg, name) <= 1.0:
      problems.append(f"{name}={getattr(cfg, name)!r} must be in [0, 1]")
  return problems


def _static_problems(cfg: PPOConfig) -> list[str]:
  problems = []
  if not cfg.hidden_sizes or any(int(h) <= 0 for h in cfg.hidden_sizes):
    problems.append(f"hidden_sizes={cfg.hidden_sizes!r} must be positive integers")
  for name in ("epochs", "minibatches"):
    if int(getattr(cfg, name)) < 1:
      problems.append(f"{name}={getattr(cfg, name)!r} must be >= 1")
  unknown = [d for d in cfg.episode_decisions if d not in EPISODE_DECISIONS]
  if unknown or len(set(cfg.episode_decisions)) != len(cfg.episode_decisions):
    problems.append(f"episode_decisions={cfg.episode_decisions!r} must list each of "
                    f"{', '.join(EPISODE_DECISIONS)} at most once (or be empty)")
  if cfg.domain_in_turn and "domain" not in cfg.episode_decisions:
    problems.append("domain_in_turn=True adds a plan to the episode-level domain head: it needs "
                    "'domain' in episode_decisions")
  if cfg.class_head not in CLASS_HEADS:
    problems.append(f"class_head={cfg.class_head!r} must be one of {', '.join(CLASS_HEADS)}")
  return problems
