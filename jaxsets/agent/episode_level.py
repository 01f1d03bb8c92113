"""Episode-level decisions: the domain and the blend, chosen once per episode
(`agent.episode_decisions`, e.g. ("domain", "blend")).

Why: on the embedded default a step's reward (the change in validation accuracy from 10 more
images) has a noise sd of 0.006-0.010 against per-step effects of the prompt of ~0.001, while
whole support sets differ by points with their domain and with whether their prompts are pure
(c2 = c3 = c1) or blends (seeds 0 and 1, 400 balanced images, validation accuracy: photo 0.959
vs sketch 0.923; pure sets above mixed ones in all four comparisons; studies/issue5/README.md).
A domain picked anew every step moves 1/40 of the set and its effect drowns in the noise; a
domain held for an episode decides the whole set, and the episode's return (the sum of its
rewards, which telescopes to the change of the validation metrics over the episode) shows it.

The plan of an episode: domain int32 [E] (-1 where the domain is chosen every step instead; D,
where the agent offers it (agent.domain_in_turn), "every domain in turn": step t takes domain
t mod D, resolved by `step_plan`) and pure bool [E] (False where the blend is not an
episode-level decision). The E environments of an episode start from the same state, so they
form a group: each plan's advantage is its return relative to the group's,
(R_e - mean R) / (std R + eps), and the plan heads (and the torso they share with the rest of
the actor) take clipped PPO steps on those E rows.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxsets.agent import distributions
from jaxsets.agent.config import PPOConfig
from jaxsets.agent.policy import ActorCritic, AgentState, plan_update_params
from jaxsets.agent.ppo import apply_gradients, clipped_policy_loss, standardise


class Plan(NamedTuple):
  domain: jax.Array    # int32 [...]: the episode's domain, -1 = chosen every step, D = in turn
  pure: jax.Array      # bool [...]: c2 = c3 = c1 for the whole episode


def step_plan(plan: Plan, t, num_domains: int) -> Plan:
  """The plan as step t of the episode keeps it: "every domain in turn" (domain == D) becomes
  domain t mod D; other plans are unchanged. t: int or int32 [] (traced)."""
  in_turn = plan.domain == num_domains
  return plan._replace(domain=jnp.where(in_turn, jnp.asarray(t, jnp.int32) % num_domains,
                                        plan.domain).astype(jnp.int32))


def no_plan(shape) -> Plan:
  """Every head decides every step."""
  return Plan(jnp.full(shape, -1, jnp.int32), jnp.zeros(shape, bool))


def group_advantage(episode_return: jax.Array) -> jax.Array:
  """float32 [E] -> [E]: each return relative to the group's mean, in units of its std (zeros
  when every return is equal: nothing to learn)."""
  return standardise(episode_return)


def _plan_log_prob_and_entropy(state: AgentState, params, obs, plan: Plan):
  """log p(plan | obs) and the plan heads' entropy, over the episode-level heads: [E], [E]."""
  domain_logits, blend_logits = state.apply_fn({"params": params}, obs,
                                               method=ActorCritic.plan_logits)
  decisions = state.network.episode_decisions
  log_prob = jnp.zeros(obs.shape[:-1])
  entropy = jnp.zeros(obs.shape[:-1])
  if "domain" in decisions:
    log_prob += distributions.head_log_prob(domain_logits, plan.domain)
    entropy += distributions.head_entropy(domain_logits)
  if "blend" in decisions:
    log_prob += distributions.head_log_prob(blend_logits, plan.pure.astype(jnp.int32))
    entropy += distributions.head_entropy(blend_logits)
  return log_prob, entropy


def _choose(state: AgentState, obs, pick) -> Plan:
  """The plan `pick(logits, head index)` makes of the heads the network decides per episode."""
  domain_logits, blend_logits = state.apply_fn({"params": state.params}, obs,
                                               method=ActorCritic.plan_logits)
  plan = no_plan(obs.shape[:-1])
  if "domain" in state.network.episode_decisions:
    plan = plan._replace(domain=pick(domain_logits, 0))
  if "blend" in state.network.episode_decisions:
    plan = plan._replace(pure=pick(blend_logits, 1) == 1)
  return plan


@jax.jit
def sample_plan(state: AgentState, obs: jax.Array, key: jax.Array):
  """An episode's plan sampled from obs [E, obs_dim] (its first observation) ->
  (Plan of [E], log_prob [E]). The heads decided per episode are the network's
  (state.network.episode_decisions)."""
  keys = jax.random.split(key, 2)
  plan = _choose(state, obs, lambda logits, i: distributions.sample_head(logits, keys[i]))
  return plan, _plan_log_prob_and_entropy(state, state.params, obs, plan)[0]


@jax.jit
def greedy_plan(state: AgentState, obs: jax.Array) -> Plan:
  """The roll-out's plan: the most likely choice of each episode-level head."""
  return _choose(state, obs, lambda logits, i: distributions.mode_head(logits))


class PlanHerd(NamedTuple):
  """The herding roll-out's episode-level choices, one step at a time.

  probs [..., D + 2]: p(domain) over the D domains, then p(mixed), p(pure), read once from the
  roll-out's first observation (the state the plan heads learned from), with p("every domain
  in turn") shared evenly among the D domains, which spreads that share of the steps over them
  as the plan would; deficit [..., D + 2]:
  those probabilities summed over the steps so far minus how often each option was taken."""
  probs: jax.Array
  deficit: jax.Array


@jax.jit
def start_plan_herd(state: AgentState, obs: jax.Array) -> PlanHerd:
  """obs [..., obs_dim] (the roll-out's first observation) -> PlanHerd with nothing taken yet."""
  domain_logits, blend_logits = state.apply_fn({"params": state.params}, obs,
                                               method=ActorCritic.plan_logits)
  blend = (jax.nn.softmax(blend_logits) if blend_logits is not None
           else jnp.zeros(domain_logits.shape[:-1] + (2,)))
  domain = jax.nn.softmax(domain_logits)                            # [..., domain_options]
  if state.network.domain_in_turn:  # fold "every domain in turn" into the D domains' shares
    num_domains = state.network.num_domains
    domain = domain[..., :num_domains] + domain[..., num_domains:] / num_domains
  probs = jnp.concatenate([domain, blend], axis=-1)
  return PlanHerd(probs, jnp.zeros_like(probs))


@partial(jax.jit, static_argnames=("decisions",))
def herd_plan(herd: PlanHerd, *, decisions: tuple[str, ...]) -> tuple[Plan, PlanHerd]:
  """This step's plan: each episode-level head takes the option furthest behind its share,
  argmax(deficit + p), so over a roll-out of T steps each domain leads about p(domain)·T steps
  and about p(pure)·T steps are pure, with no sampling noise. A confident policy gives one
  plan throughout (what greedy_plan gives); an unsure one gives a mix in its proportions
  instead of staking the whole set on a favourite it has barely tried (8 episodes of noisy
  returns for 8 plans on the embedded default). Step 1 takes the most likely option.
  decisions: the heads decided per episode (the network's episode_decisions).
  -> (Plan of [...], the PlanHerd after this step)."""
  num_domains = herd.probs.shape[-1] - 2
  behind = herd.deficit + herd.probs                                            # [..., D + 2]
  domain = jnp.argmax(behind[..., :num_domains], axis=-1).astype(jnp.int32)
  pure = jnp.argmax(behind[..., num_domains:], axis=-1) == 1
  taken = jnp.concatenate([jax.nn.one_hot(domain, num_domains),
                           jax.nn.one_hot(pure.astype(jnp.int32), 2)], axis=-1)
  plan = no_plan(domain.shape)
  if "domain" in decisions:
    plan = plan._replace(domain=domain)
  if "blend" in decisions:
    plan = plan._replace(pure=pure)
  return plan, herd._replace(deficit=behind - taken)


@jax.jit
def plan_update(state: AgentState, obs: jax.Array, plan: Plan, old_log_prob: jax.Array,
                episode_return: jax.Array, *, cfg: PPOConfig):
  """Clipped updates of the plan heads from a finished episode of E environments.

  obs float32 [E, obs_dim]: the observations the plans were chosen from; plan: Plan of [E];
  old_log_prob [E]: log p(plan) then; episode_return [E]: the sum of each episode's rewards.
  cfg.epochs full-batch gradient steps (E rows are too few to split); cfg's numbers traced.
  Returns (state, metrics: policy_loss, entropy, approx_kl, clip_fraction, grad_norm,
  return_spread).
  """
  advantage = group_advantage(episode_return.astype(jnp.float32))

  def loss_fn(params):
    log_prob, entropy = _plan_log_prob_and_entropy(state, params, obs, plan)
    policy_loss, approx_kl, clip_fraction = clipped_policy_loss(
        log_prob, old_log_prob, advantage, cfg.clip_eps)
    entropy = jnp.mean(entropy)
    return policy_loss - cfg.ent_coef * entropy, {
        "policy_loss": policy_loss, "entropy": entropy, "approx_kl": approx_kl,
        "clip_fraction": clip_fraction}

  trained = plan_update_params(state.network, state.params)  # not the per-step heads' momentum

  def epoch(state, _):
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics["grad_norm"] = optax.tree.norm(grads)
    return apply_gradients(state, grads, cfg, trained=trained), metrics

  state, metrics = jax.lax.scan(epoch, state, None, length=cfg.epochs)
  metrics = jax.tree.map(jnp.mean, metrics)
  metrics["return_spread"] = jnp.max(episode_return) - jnp.min(episode_return)
  return state, metrics
