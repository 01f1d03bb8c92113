"""Static configs of the agent: small frozen (hashable) dataclasses built from the ml_collections
config at the boundary. A jitted function takes these as static arguments, never a ConfigDict.
"""
from __future__ import annotations

import dataclasses
from typing import Any


CLASS_HEADS = ("per_class", "shared")
EPISODE_DECISIONS = ("domain", "blend")


@dataclasses.dataclass(frozen=True)
class ObservationConfig:
  """Which optional parts the state vector holds (see observation.py)."""
  per_class_entropy: bool = False  # + n values: mean predictive entropy per class / log(n)
  support_counts: bool = True      # + n values: support-set images per class / budget

  @classmethod
  def from_config(cls, section: Any) -> "ObservationConfig":
    return cls(per_class_entropy=bool(section.per_class_entropy),
               support_counts=bool(section.support_counts))


@dataclasses.dataclass(frozen=True)
class PPOConfig:
  """Network, optimiser and PPO settings (`config.agent` in configs/digits.py)."""
  hidden_sizes: tuple[int, ...] = (64, 64)
  autoregressive: bool = False     # slot k's logits conditioned on the domain and slots < k
  # "per_class": a Dense layer gives the n logits of a slot (parameters grow as n x hidden);
  # "shared": one small MLP scores every class from the actor's features and that class's own
  # part of the observation (its validation accuracy, support count, ...). What it learns about
  # one class carries to all, so the greedy roll-out can react to the state (e.g. move on from a
  # class that already has many images).
  class_head: str = "per_class"
  # Decisions made once per episode, at its first step, and credited with the whole episode's
  # return relative to the other environments' (episode_level.py): "domain" (the episode keeps
  # one domain) and/or "blend" (a two-way head: "pure", c2 = c3 = c1 for every prompt, or
  # "mixed", c2 and c3 from their heads each step). () = every head decides every step.
  episode_decisions: tuple[str, ...] = ()
  learning_rate: float = 1e-3
  clip_eps: float = 0.2            # policy ratio clip
  value_clip_eps: float = 0.0      # 0 = plain squared value loss; > 0 = PPO2-style clipped
  vf_coef: float = 0.5
  ent_coef: float = 0.01
  gamma: float = 0.99
  gae_lambda: float = 0.95
  epochs: int = 4
  minibatches: int = 4
  max_grad_norm: float = 0.5
  normalize_advantages: bool = True
  num_envs: int = 4                # environments stepped together (read by the loop)
  episodes: int = 5                # PPO training episodes (read by the loop)
  observation: ObservationConfig = ObservationConfig()

  @property
  def domain_per_episode(self) -> bool:
    return "domain" in self.episode_decisions

  @property
  def blend_per_episode(self) -> bool:
    return "blend" in self.episode_decisions

  def __post_init__(self):
    problems = []
    if not self.hidden_sizes or any(int(h) <= 0 for h in self.hidden_sizes):
      problems.append(f"hidden_sizes={self.hidden_sizes!r} must be positive integers")
    for name in ("learning_rate", "clip_eps", "max_grad_norm"):
      if not getattr(self, name) > 0:
        problems.append(f"{name}={getattr(self, name)!r} must be > 0")
    for name in ("value_clip_eps", "vf_coef", "ent_coef"):
      if getattr(self, name) < 0:
        problems.append(f"{name}={getattr(self, name)!r} must be >= 0")
    for name in ("gamma", "gae_lambda"):
      if not 0.0 <= getattr(self, name) <= 1.0:
        problems.append(f"{name}={getattr(self, name)!r} must be in [0, 1]")
    for name in ("epochs", "minibatches", "num_envs", "episodes"):
      if int(getattr(self, name)) < 1:
        problems.append(f"{name}={getattr(self, name)!r} must be >= 1")
    unknown = [d for d in self.episode_decisions if d not in EPISODE_DECISIONS]
    if unknown or len(set(self.episode_decisions)) != len(self.episode_decisions):
      problems.append(f"episode_decisions={self.episode_decisions!r} must list each of "
                      f"{', '.join(EPISODE_DECISIONS)} at most once (or be empty)")
    if self.class_head not in CLASS_HEADS:
      problems.append(f"class_head={self.class_head!r} must be one of {', '.join(CLASS_HEADS)}")
    if problems:
      raise ValueError("bad config.agent: " + "; ".join(problems) + ".")

  @classmethod
  def from_config(cls, agent: Any) -> "PPOConfig":
    """From the `config.agent` ConfigDict section (every key is required: the file is the
    single source of defaults, so a missing key is a bug in the config file)."""
    if isinstance(agent.episode_decisions, str):
      raise ValueError(f"bad config.agent: episode_decisions={agent.episode_decisions!r} must be "
                       "a tuple, e.g. ('domain', 'blend') or ().")
    return cls(
        hidden_sizes=tuple(int(h) for h in agent.hidden_sizes),
        autoregressive=bool(agent.autoregressive),
        class_head=str(agent.class_head),
        episode_decisions=tuple(str(d) for d in agent.episode_decisions),
        learning_rate=float(agent.learning_rate),
        clip_eps=float(agent.clip_eps),
        value_clip_eps=float(agent.value_clip_eps),
        vf_coef=float(agent.vf_coef),
        ent_coef=float(agent.ent_coef),
        gamma=float(agent.gamma),
        gae_lambda=float(agent.gae_lambda),
        epochs=int(agent.epochs),
        minibatches=int(agent.minibatches),
        max_grad_norm=float(agent.max_grad_norm),
        normalize_advantages=bool(agent.normalize_advantages),
        num_envs=int(agent.num_envs),
        episodes=int(agent.episodes),
        observation=ObservationConfig.from_config(agent.observation),
    )
