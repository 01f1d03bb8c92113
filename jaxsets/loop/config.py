"""LoopConfig: how a run steps, checkpoints and delivers, checked once at the boundary."""
from __future__ import annotations

import dataclasses
from typing import Any

from jaxsets import config_types
from jaxsets.agent.config import ROLLOUTS
from jaxsets.errors import UserError


@dataclasses.dataclass(frozen=True)
class LoopConfig:
  """`config.loop`, plus the loop settings kept in `config.agent` (episodes, num_envs,
  update_every: the keys users already override there)."""
  images_per_step: int      # images generated per agent step
  budget: int               # support-set size: budget / images_per_step steps an episode
  checkpoint_every: int     # steps between checkpoints (and always at phase ends)
  eval_repeats: int         # fine-tunes averaged per test arm
  rollout: str              # how the trained agent builds the delivered set (ROLLOUTS)
  episodes: int             # PPO training episodes
  num_envs: int             # environments stepped together
  update_every: int         # steps between PPO updates, 0 = once per episode
  keep_checkpoints: int = 2

  @property
  def steps_per_episode(self) -> int:
    return self.budget // self.images_per_step

  @property
  def update_period(self) -> int:
    """Steps between PPO updates: update_every, or once per episode (0)."""
    return self.update_every if self.update_every > 0 else self.steps_per_episode

  @classmethod
  def from_config(cls, config: Any) -> "LoopConfig":
    """From a run config; refuses values of the wrong kind and settings that cannot run."""
    problems = []
    names = [f.name for f in dataclasses.fields(cls) if f.name != "rollout"]
    agent_keys = ("episodes", "num_envs", "update_every")
    values = config_types.read_fields(cls, config.loop, "loop.",
                                      [n for n in names if n not in agent_keys],
                                      problems=problems)
    values.update(config_types.read_fields(cls, config.agent, "agent.", agent_keys,
                                           problems=problems))
    config_types.refuse(problems)
    rollout = config_types.lookup(config.loop, "rollout")
    if rollout not in ROLLOUTS:
      shown = "missing" if rollout is config_types.MISSING else repr(rollout)
      raise UserError(f"loop.rollout is {shown}: use one of {', '.join(map(repr, ROLLOUTS))} "
                      "(how the trained agent builds the delivered support set; see "
                      "configs/digits.py).")
    loop = cls(rollout=rollout, **values)
    loop.check()
    return loop

  def check(self) -> None:
    """Refuses impossible loop settings before anything slow starts."""
    ips, budget = self.images_per_step, self.budget
    if ips < 1:
      raise UserError(f"loop.images_per_step={ips}: must be at least 1.")
    if budget < 1:
      raise UserError(f"loop.budget={budget}: must be at least 1 (the support-set size).")
    if budget % ips:
      raise UserError(f"loop.budget={budget} is not a multiple of loop.images_per_step={ips}: "
                      f"use e.g. --config.loop.budget={budget - budget % ips or ips}.")
    if self.checkpoint_every < 1 or self.eval_repeats < 1:
      raise UserError("loop.checkpoint_every and loop.eval_repeats must be at least 1.")
    if self.keep_checkpoints < 1:
      raise UserError(f"loop.keep_checkpoints={self.keep_checkpoints}: keep at least 1 "
                      "checkpoint, or a crash would have nothing to resume from.")
    for name in ("episodes", "num_envs"):
      if getattr(self, name) < 1:
        raise UserError(f"agent.{name}={getattr(self, name)}: must be at least 1.")
    u, steps = self.update_every, self.steps_per_episode
    if u < 0 or (u and steps % u):
      raise UserError(f"agent.update_every={u} must divide the {steps} steps of an episode "
                      "(budget / images_per_step), or be 0 for one update per episode.")
