"""The flat alternative to jaxsets' factorised policy: one categorical over all |D|·n³ prompts.

Same torsos, init and value head as jaxsets.agent.policy.ActorCritic; only the policy head
differs (|D|·n³ logits instead of |D| + 3n). It plugs into the very same
`jaxsets.agent.ppo_update` (which needs only `apply_fn(params, obs, action) -> (dist, value)`
with dist.head_log_probs / dist.head_entropies), so the comparison isolates the action space.
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

_orth = nn.initializers.orthogonal
_zeros = nn.initializers.zeros


class FlatCategorical:
  """logits [..., D·n³]; an action (d, c1, c2, c3) is index ((d·n + c1)·n + c2)·n + c3."""

  def __init__(self, logits: jax.Array, num_classes: int):
    self.log_p = jax.nn.log_softmax(logits)
    self.n = num_classes

  def log_prob(self, action: jax.Array) -> jax.Array:
    n = self.n
    idx = ((action[..., 0] * n + action[..., 1]) * n + action[..., 2]) * n + action[..., 3]
    return jnp.take_along_axis(self.log_p, idx[..., None], axis=-1)[..., 0]

  def entropy(self) -> jax.Array:
    return -jnp.sum(jnp.exp(self.log_p) * self.log_p, axis=-1)

  # ppo_loss sums per-head terms (and masks the heads an episode plan kept): one head here, so
  # the trajectories it learns from carry no head mask.
  def head_log_probs(self, action: jax.Array) -> jax.Array:
    return self.log_prob(action)[..., None]                                    # [..., 1]

  def head_entropies(self) -> jax.Array:
    return self.entropy()[..., None]                                           # [..., 1]


class FlatActorCritic(nn.Module):
  num_domains: int
  num_classes: int
  hidden_sizes: Sequence[int] = (64, 64)

  @nn.compact
  def __call__(self, obs: jax.Array, action: jax.Array):
    dense = lambda size, gain: nn.Dense(size, kernel_init=_orth(gain), bias_init=_zeros)
    h, v = obs, obs
    for size in self.hidden_sizes:
      h = nn.tanh(dense(size, math.sqrt(2.0))(h))
    for size in self.hidden_sizes:
      v = nn.tanh(dense(size, math.sqrt(2.0))(v))
    logits = dense(self.num_domains * self.num_classes ** 3, 0.01)(h)
    return FlatCategorical(logits, self.num_classes), dense(1, 1.0)(v)[..., 0]


def num_params(obs_dim: int, num_actions: int, hidden: Sequence[int]) -> int:
  """Parameters of an actor-critic with 64-64 torsos and a `num_actions`-logit policy head."""
  total, prev = 0, obs_dim
  for size in hidden:
    total += 2 * (prev * size + size)  # actor and critic layers
    prev = size
  return total + prev * num_actions + num_actions + prev + 1


def init_flat_agent(key, obs_dim: int, num_domains: int, num_classes: int, cfg):
  """An AgentState whose network is the flat policy (the optimiser is jaxsets' own)."""
  from jaxsets.agent.policy import AgentState, make_optimizer
  network = FlatActorCritic(num_domains, num_classes, tuple(cfg.hidden_sizes))
  init = jax.jit(lambda k: network.init(k, jnp.zeros((obs_dim,)), jnp.zeros((4,), jnp.int32)))
  state = AgentState.create(apply_fn=network.apply, params=init(key)["params"],
                            tx=make_optimizer(cfg), network=network)
  return state.replace(step=jnp.zeros((), jnp.int32))
