"""The agent's act for one training step of E environments, under the episode's plan.

With episode decisions (network.episode_decisions, episode_level.py) the plan's kept choices
are not this step's: the head mask zeroes their log-probabilities, so the PPO update credits
each step only with the heads it chose. Without, every head acts and there is no mask.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsets.agent.episode_level import Plan
from jaxsets.agent.policy import ActorCritic, act, act_in_episode


class StepAction(NamedTuple):
  action: jax.Array            # int32 [E, 4]: (domain, c1, c2, c3)
  log_prob: jax.Array          # float32 [E]: summed over the heads this step chose
  value: jax.Array             # float32 [E]: V(obs)
  head_mask: jax.Array | None  # float32 [E, 4]: 1 where the step chose the head (None: no plan)


@functools.partial(jax.jit, static_argnames=("network",))
def act_for_step(params, obs: jax.Array, keys: jax.Array, plan: Plan, *,
                 network: ActorCritic) -> StepAction:
  """obs float32 [E, obs_dim], keys [E] (one per environment), plan: Plan of [E] (ignored
  without episode decisions) -> StepAction."""
  if not network.episode_decisions:
    action, log_prob, value = jax.vmap(lambda o, k: act(params, o, k, network=network))(obs, keys)
    return StepAction(action, log_prob, value, None)
  action, head_log_prob, value = jax.vmap(
      lambda o, k, d, p: act_in_episode(params, o, k, d, p, network=network))(
          obs, keys, plan.domain, plan.pure)
  # The step's own choices: a kept domain, and c2/c3 of a pure plan, were not made here.
  kept = jnp.stack([plan.domain >= 0, jnp.zeros_like(plan.pure), plan.pure, plan.pure], -1)
  head_mask = 1.0 - kept.astype(jnp.float32)                                    # [E, 4]
  return StepAction(action, jnp.sum(head_log_prob * head_mask, axis=-1), value, head_mask)
