"""The roll-out's action: how a trained agent chooses each step of the set it delivers (called
by env/rollout.py: rollout_step, the one roll-out of `jaxsets run` and `jaxsets.build_support_set`).

rollout "herding": the episode-level choices (domain, blend) and the class slots each take the
option furthest behind the share the policy gives it (episode_level.herd_plan, ActorCritic.herd);
"greedy": the most likely plan, chosen at the first step and kept, and the most likely action.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsets.agent.config import ROLLOUTS
from jaxsets.agent.episode_level import (Plan, PlanHerd, greedy_plan, herd_plan, no_plan,
                                         start_plan_herd, step_plan)
from jaxsets.agent.policy import AgentState, greedy_action, herding_action


class RolloutMemory(NamedTuple):
  """What the roll-out carries from step to step (saved in every checkpoint)."""
  plan: Plan           # Plan of [1]: the last step's episode-level choices
  plan_herd: PlanHerd  # [1, D + 2] each: the herded plan's probabilities and deficit
  mass: jax.Array      # float32 [1, 3, n]: the class slots' probabilities summed so far


def empty_memory(num_domains: int, num_classes: int) -> RolloutMemory:
  zeros = jnp.zeros((1, num_domains + 2), jnp.float32)
  return RolloutMemory(no_plan((1,)), PlanHerd(zeros, zeros),
                       jnp.zeros((1, 3, num_classes), jnp.float32))


def rollout_action(agent: AgentState, obs: jax.Array, counts: jax.Array, t: int,
                   memory: RolloutMemory, *, rollout: str):
  """Step t's action: obs float32 [1, obs_dim], counts int32 [1, 3, n] (env.slot_counts) ->
  (action int32 [1, 4], memory after the step)."""
  if rollout not in ROLLOUTS:
    raise ValueError(f"rollout={rollout!r}: use one of {ROLLOUTS}")
  plan, herd, mass = memory
  decisions = tuple(agent.network.episode_decisions)
  if decisions:
    if rollout == "herding":
      if t == 0:
        herd = start_plan_herd(agent, obs)
      plan, herd = herd_plan(herd, decisions=decisions)
    elif t == 0:
      plan = greedy_plan(agent, obs)
  kept = step_plan(plan, t, agent.network.num_domains)  # "every domain in turn" -> t mod D
  if rollout == "herding":
    action, mass = herding_action(agent.params, obs, mass, counts, kept.domain, kept.pure,
                                  network=agent.network)
  else:
    action = greedy_action(agent.params, obs, kept.domain, kept.pure, network=agent.network)
  return action, RolloutMemory(plan, herd, mass)
