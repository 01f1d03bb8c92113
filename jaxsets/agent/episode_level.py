"""The domain as an episode-level decision (`agent.domain_per = "episode"`).

Why: on the embedded default a step's reward (the change in validation accuracy from 10 more
images) has a noise sd of 0.006-0.010 against per-step effects of the prompt of ~0.001, while
whole support sets differ by several points depending on their domain (seed 0, 400 balanced
images, validation: photo 0.959, sketch 0.923; studies/issue5/README.md). A domain picked anew
every step moves 1/40 of the set and its effect drowns; a domain held for an episode decides the
whole set, and the episode's return (the sum of its rewards, which telescopes to the change of
the validation metrics over the episode) shows it.

The E environments of an episode start from the same state and each holds one sampled domain,
so they form a group: each choice's advantage is its return relative to the group's,
(R_e - mean R) / (std R + eps). The domain head (and the torso it shares) then takes a clipped
PPO step on those E rows, like the per-step update but with this advantage. Shapes: E rows.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from jaxsets.agent import distributions
from jaxsets.agent.config import PPOConfig
from jaxsets.agent.policy import ActorCritic, AgentState
from jaxsets.agent.ppo import clipped_policy_loss


def group_advantage(episode_return: jax.Array) -> jax.Array:
  """float32 [E] -> [E]: each return relative to the group's mean, in units of its std (zeros
  when every return is equal: nothing to learn)."""
  centred = episode_return - jnp.mean(episode_return)
  return centred / (jnp.std(episode_return) + 1e-8)


@functools.partial(jax.jit, static_argnames=("cfg",))
def domain_update(state: AgentState, obs: jax.Array, domain: jax.Array, old_log_prob: jax.Array,
                  episode_return: jax.Array, *, cfg: PPOConfig):
  """One clipped update of the domain head from a finished episode of E environments.

  obs float32 [E, obs_dim]: each environment's observation when it chose; domain int32 [E]: the
  choice; old_log_prob [E]: its log-probability then; episode_return [E]: the sum of the
  episode's rewards. cfg.epochs full-batch gradient steps (E rows are too few to split).
  Returns (state, metrics: policy_loss, entropy, approx_kl, clip_fraction, return_spread).
  """
  advantage = group_advantage(episode_return.astype(jnp.float32))

  def loss_fn(params):
    logits = state.apply_fn({"params": params}, obs, method=ActorCritic.domain_logits)  # [E, D]
    log_prob = distributions.head_log_prob(logits, domain)
    policy_loss, approx_kl, clip_fraction = clipped_policy_loss(
        log_prob, old_log_prob, advantage, cfg.clip_eps)
    entropy = jnp.mean(distributions.head_entropy(logits))
    return policy_loss - cfg.ent_coef * entropy, {
        "policy_loss": policy_loss, "entropy": entropy, "approx_kl": approx_kl,
        "clip_fraction": clip_fraction}

  def epoch(state, _):
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics["grad_norm"] = optax.tree.norm(grads)
    return state.apply_gradients(grads=grads), metrics

  state, metrics = jax.lax.scan(epoch, state, None, length=cfg.epochs)
  metrics = jax.tree.map(jnp.mean, metrics)
  metrics["return_spread"] = jnp.max(episode_return) - jnp.min(episode_return)
  return state, metrics
