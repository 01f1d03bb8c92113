"""PPO for the prompt agent: GAE, the clipped loss and a jitted update, every loop a `lax.scan`.

Shapes: T steps, E parallel environments, B = T * E transitions per update.
A trajectory (`Transition`) holds leaves [T, E, ...]; `done[t, e]` means the episode of env e
ended with transition t (the budget is spent: the observation holds the fraction of budget
used, so that is a true terminal state and is not bootstrapped). `last_value` [E] is V(s_T), the
value of the observation after the last transition (ignored where done[T-1]).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxsets import sharding
from jaxsets.agent.config import PPOConfig
from jaxsets.agent.policy import AgentState, make_optimizer, plan_head_params


class Transition(NamedTuple):
  obs: jax.Array       # float32 [T, E, obs_dim]
  action: jax.Array    # int32   [T, E, 4]
  reward: jax.Array    # float32 [T, E]
  done: jax.Array      # bool or float [T, E]: the episode ended with this transition
  value: jax.Array     # float32 [T, E]: V(obs) when acting
  log_prob: jax.Array  # float32 [T, E]: log pi(action | obs) when acting
  # float32 [T, E, 4] or None (= all ones): which heads (domain, c1, c2, c3) this step decided.
  # A head kept from the episode's plan (episode_level.py) is 0: it takes no part in the step's
  # ratio or entropy bonus, and log_prob above is the sum over the decided heads only.
  head_mask: jax.Array | None = None


class Minibatch(NamedTuple):
  """Flat training rows (leading dim M): what the loss needs of one minibatch."""
  obs: jax.Array        # [M, obs_dim]
  action: jax.Array     # [M, 4]
  log_prob: jax.Array   # [M] behaviour log-probabilities
  value: jax.Array      # [M] behaviour values (for the optional value clip)
  advantage: jax.Array  # [M] (normalised if cfg.normalize_advantages)
  returns: jax.Array    # [M] value targets = GAE advantage + value
  head_mask: jax.Array | None = None  # [M, 4] or None (all heads decided)


def gae(reward: jax.Array, value: jax.Array, done: jax.Array, last_value: jax.Array,
        gamma: float, gae_lambda: float):
  """Generalised advantage estimation as a reverse scan over T.

  reward, value, done: [T, ...]; last_value: [...]. Returns (advantages, returns), both
  [T, ...], with returns = advantages + value (the value targets).
    delta_t = r_t + gamma * V_{t+1} * (1 - done_t) - V_t
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}
  """
  not_done = 1.0 - done.astype(jnp.float32)
  next_values = jnp.concatenate([value[1:], last_value[None]], axis=0)
  deltas = reward + gamma * next_values * not_done - value

  def step(next_advantage, xs):
    delta, nd = xs
    advantage = delta + gamma * gae_lambda * nd * next_advantage
    return advantage, advantage

  _, advantages = jax.lax.scan(step, jnp.zeros_like(last_value, jnp.float32),
                               (deltas, not_done), reverse=True)
  return advantages, advantages + value


def standardise(x: jax.Array) -> jax.Array:
  """float32 [N] -> [N]: (x - mean) / (std + 1e-8), or zeros when the values are equal to within
  1e-5 of their largest magnitude (~80 float32 ulps). Equal values carry no preference, but their
  float32 mean is off by ~1e-7 of them, and dividing that residue by its own std gave every row
  the same advantage of about +-0.9: a batch with no reward signal then sharpened the policy
  onto whatever it had sampled."""
  centred = x - x.mean()
  spread = jnp.max(x) - jnp.min(x)
  informative = spread > 1e-5 * jnp.max(jnp.abs(x))
  return jnp.where(informative, centred / (x.std() + 1e-8), jnp.zeros_like(x))


def clipped_policy_loss(log_prob: jax.Array, old_log_prob: jax.Array, advantage: jax.Array,
                        clip_eps: float):
  """-E[min(r A, clip(r, 1 - eps, 1 + eps) A)] with r = exp(log_prob - old_log_prob).

  Returns (loss, approx_kl, clip_fraction); approx_kl is the low-variance estimator
  E[(r - 1) - log r] of KL(old || new).
  """
  log_ratio = log_prob - old_log_prob
  ratio = jnp.exp(log_ratio)
  unclipped = ratio * advantage
  clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantage
  loss = -jnp.mean(jnp.minimum(unclipped, clipped))
  approx_kl = jnp.mean((ratio - 1.0) - log_ratio)
  clip_fraction = jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32))
  return loss, approx_kl, clip_fraction


def value_loss(value: jax.Array, old_value: jax.Array, returns: jax.Array,
               value_clip_eps: float) -> jax.Array:
  """0.5 * E[(V - R)^2]; with value_clip_eps > 0 the PPO2 pessimistic clipped form
  0.5 * E[max((V - R)^2, (V_old + clip(V - V_old, +-eps) - R)^2)]. value_clip_eps may be traced:
  both forms are computed and one selected (the plain one gets the same bits as alone)."""
  error = jnp.square(value - returns)
  clipped = old_value + jnp.clip(value - old_value, -value_clip_eps, value_clip_eps)
  error = jnp.where(value_clip_eps > 0, jnp.maximum(error, jnp.square(clipped - returns)), error)
  return 0.5 * jnp.mean(error)


def ppo_loss(params, apply_fn, batch: Minibatch, *, cfg: PPOConfig):
  """Total loss = policy + vf_coef * value - ent_coef * entropy, and a dict of scalar metrics.

  `apply_fn` is the ActorCritic's `apply` (`state.apply_fn`).
  """
  dist, value = apply_fn({"params": params}, batch.obs, batch.action)
  head_log_probs, head_entropies = dist.head_log_probs(batch.action), dist.head_entropies()
  if batch.head_mask is not None:  # heads kept from the episode's plan: not this step's choice
    head_log_probs, head_entropies = head_log_probs * batch.head_mask, head_entropies * batch.head_mask
  log_prob = jnp.sum(head_log_probs, axis=-1)
  policy_loss, approx_kl, clip_fraction = clipped_policy_loss(
      log_prob, batch.log_prob, batch.advantage, cfg.clip_eps)
  v_loss = value_loss(value, batch.value, batch.returns, cfg.value_clip_eps)
  entropy = jnp.mean(jnp.sum(head_entropies, axis=-1))
  loss = policy_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
  metrics = {"loss": loss, "policy_loss": policy_loss, "value_loss": v_loss,
             "entropy": entropy, "approx_kl": approx_kl, "clip_fraction": clip_fraction}
  return loss, metrics


def apply_gradients(state: AgentState, grads, cfg: PPOConfig, *,
                    trained: frozenset[str] | None = None) -> AgentState:
  """state.apply_gradients with the optimiser made from cfg, whose learning rate and clip norm
  may be traced (state.tx is policy.OPTIMIZER_LAYOUT: the Adam state's layout, no numbers).

  trained: the top-level parameters this update may move (None: all). The per-step and the
  plan updates share one Adam state, and Adam moves a parameter whose gradient is zero along
  its momentum: the per-step updates after a plan update carried the plan heads 3-20x further
  than the plan update itself (KL), so the plan collapsed onto one domain within a few
  episodes (studies/issue18/README.md). Parameters outside `trained` keep their values; their
  moments still decay."""
  updates, opt_state = make_optimizer(cfg).update(grads, state.opt_state, state.params)
  if trained is not None:
    updates = {name: u if name in trained else jax.tree.map(jnp.zeros_like, u)
               for name, u in updates.items()}
  return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                       opt_state=opt_state)


def _explained_variance(prediction: jax.Array, target: jax.Array) -> jax.Array:
  """1 - Var[target - prediction] / Var[target] (0 when the target has no variance)."""
  var = jnp.var(target)
  return jnp.where(var > 0, 1.0 - jnp.var(target - prediction) / jnp.where(var > 0, var, 1.0),
                   0.0)


def _flatten(traj: Transition, advantages: jax.Array, returns: jax.Array) -> Minibatch:
  rows = traj.reward.size
  flat = lambda x: x.reshape((rows,) + x.shape[2:])
  return Minibatch(obs=flat(traj.obs).astype(jnp.float32), action=flat(traj.action),
                   log_prob=flat(traj.log_prob), value=flat(traj.value),
                   advantage=flat(advantages), returns=flat(returns),
                   head_mask=None if traj.head_mask is None else flat(traj.head_mask))


@jax.jit
def ppo_update(state: AgentState, traj: Transition, last_value: jax.Array, key: jax.Array,
               *, cfg: PPOConfig):
  """PPO update on one trajectory batch (jitted; cfg's numbers traced, its structure static:
  a new gamma, clip_eps or learning rate reuses the compiled program).

  state: AgentState; traj: Transition with leaves [T, E, ...]; last_value: float32 [E];
  key: a PRNG key (typed or raw) that fixes the minibatch shuffles of every epoch.
  Returns (new state, metrics: dict of float32 scalars, means over epochs x minibatches of
  loss, policy_loss, value_loss, entropy, approx_kl, clip_fraction, grad_norm, plus
  explained_variance, mean_advantage, mean_return, mean_reward of the batch).
  Same inputs and key -> the same result. A second call with new data of the same shapes
  does not recompile.
  """
  if traj.reward.ndim != 2:
    raise ValueError(f"traj.reward must be [T, E], got shape {traj.reward.shape}.")
  # Held whole on every device (copies only): a trajectory split over devices would have its
  # advantage statistics all-reduced in an order that depends on the process layout.
  traj, last_value = sharding.gather_whole((traj, last_value))
  advantages, returns = gae(traj.reward.astype(jnp.float32), traj.value, traj.done,
                            last_value, cfg.gamma, cfg.gae_lambda)
  data = _flatten(traj, advantages, returns)
  rows = data.advantage.shape[0]
  if rows < cfg.minibatches:
    raise ValueError(f"{rows} transitions cannot fill config.agent.minibatches="
                     f"{cfg.minibatches} minibatches: collect more steps or lower it.")
  if cfg.normalize_advantages:
    # Over the whole batch (not per minibatch): a minibatch of a few rows would be noisy.
    data = data._replace(advantage=standardise(data.advantage))
  # When minibatches does not divide B, each epoch leaves out B mod minibatches random rows.
  mb_size = rows // cfg.minibatches
  used = mb_size * cfg.minibatches
  grad_fn = jax.value_and_grad(ppo_loss, has_aux=True)
  plan_heads = plan_head_params(state.network)
  trained = frozenset(state.params) - plan_heads if plan_heads else None

  def minibatch_step(state, batch):
    (_, metrics), grads = grad_fn(state.params, state.apply_fn, batch, cfg=cfg)
    metrics["grad_norm"] = optax.tree.norm(grads)
    return apply_gradients(state, grads, cfg, trained=trained), metrics

  def epoch_step(state, epoch_key):
    order = jax.random.permutation(epoch_key, rows)[:used]
    batches = jax.tree.map(
        lambda x: x[order].reshape((cfg.minibatches, mb_size) + x.shape[1:]), data)
    return jax.lax.scan(minibatch_step, state, batches)

  state, metrics = jax.lax.scan(epoch_step, state, jax.random.split(key, cfg.epochs))
  # metrics leaves: [epochs, minibatches] -> mean over every gradient step.
  metrics = jax.tree.map(jnp.mean, metrics)
  metrics["explained_variance"] = _explained_variance(traj.value, returns)
  metrics["mean_advantage"] = jnp.mean(advantages)
  metrics["mean_return"] = jnp.mean(returns)
  metrics["mean_reward"] = jnp.mean(traj.reward)
  return state, metrics
