"""The episode-level domain (agent/episode_level.py) and the herding roll-out (ActorCritic.herd)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsets.agent import (ActorCritic, PPOConfig, act_in_episode, domain_update, group_advantage,
                           herding_action, init_agent, observation_size)
from jaxsets.agent import ObservationConfig
from jaxsets.agent.ppo import Minibatch, ppo_loss

NUM_DOMAINS, NUM_CLASSES = 4, 5
OBS = ObservationConfig()
OBS_DIM = observation_size(NUM_CLASSES, OBS)


def _agent(domain_per="episode", seed=0, **kw):
  cfg = PPOConfig(hidden_sizes=(16,), autoregressive=True, class_head="shared",
                  domain_per=domain_per, learning_rate=3e-3, ent_coef=0.0, **kw)
  return init_agent(jax.random.key(seed), OBS_DIM, NUM_DOMAINS, NUM_CLASSES, cfg), cfg


def _domain_log_probs(state, obs):
  logits = state.apply_fn({"params": state.params}, obs, method=ActorCritic.domain_logits)
  return np.asarray(jax.nn.log_softmax(logits))


def test_group_advantage_by_hand():
  np.testing.assert_allclose(group_advantage(jnp.array([0.0, 1.0])), [-1.0, 1.0], atol=1e-6)
  # mean 2.5, population std sqrt(1.25)
  np.testing.assert_allclose(group_advantage(jnp.array([1.0, 2.0, 3.0, 4.0])),
                             np.array([-1.5, -0.5, 0.5, 1.5]) / np.sqrt(1.25), atol=1e-6)
  np.testing.assert_array_equal(group_advantage(jnp.full((4,), 0.3)), np.zeros(4))


def test_a_kept_domain_stays_and_a_free_one_is_sampled():
  state, _ = _agent()
  obs = jnp.full((64, OBS_DIM), 0.5)
  keep = jnp.full((64,), 2, jnp.int32)
  action, head_lp, _ = act_in_episode(state.params, obs, jax.random.key(3), keep, network=state.network)
  assert np.all(np.asarray(action[:, 0]) == 2)
  free, free_lp, _ = act_in_episode(state.params, obs, jax.random.key(3), -jnp.ones((64,), jnp.int32),
                                    network=state.network)
  assert len(np.unique(np.asarray(free[:, 0]))) == NUM_DOMAINS   # near-uniform initial policy
  # The head log-probs are those of the policy: the domain's equals its head's log-softmax.
  expected = _domain_log_probs(state, obs)[np.arange(64), np.asarray(free[:, 0])]
  np.testing.assert_allclose(free_lp[:, 0], expected, rtol=1e-5, atol=1e-6)
  assert head_lp.shape == (64, 4)


def test_domain_update_moves_probability_to_the_better_episodes():
  state, cfg = _agent()
  obs = jnp.full((4, OBS_DIM), 0.5)
  domains = jnp.array([0, 1, 2, 3], jnp.int32)
  before = _domain_log_probs(state, obs)[0]
  old = jnp.asarray(before[np.asarray(domains)])
  state, metrics = domain_update(state, obs, domains, old, jnp.array([0.0, 0.01, 0.03, 0.0]), cfg=cfg)
  after = _domain_log_probs(state, obs)[0]
  # Advantages (0.0, 0.01, 0.03, 0.0) - 0.01 = (-1, 0, 2, -1) / std: the best rises, the two
  # below the group's mean fall (domain 1 is at the mean and may move either way).
  assert after[2] > before[2]
  assert after[0] < before[0] and after[3] < before[3]
  assert np.isfinite(metrics["policy_loss"]) and float(metrics["return_spread"]) == pytest.approx(0.03)


def test_the_per_step_loss_leaves_an_episode_level_domain_out():
  """With domain_per='episode' the per-step PPO loss has no gradient into the domain head."""
  state, cfg = _agent()
  obs = jnp.full((8, OBS_DIM), 0.5)
  action, head_lp, value = act_in_episode(state.params, obs, jax.random.key(0),
                                          -jnp.ones((8,), jnp.int32), network=state.network)
  batch = Minibatch(obs, action, jnp.sum(head_lp[:, 1:], -1), value,
                    jnp.linspace(-1.0, 1.0, 8), value + 0.1)
  grads = jax.grad(lambda p: ppo_loss(p, state.apply_fn, batch, cfg=cfg)[0])(state.params)
  assert not np.any(np.asarray(grads["domain_head"]["kernel"]))
  step_cfg = PPOConfig(**{**cfg.__dict__, "domain_per": "step"})
  batch = batch._replace(log_prob=jnp.sum(head_lp, -1))
  grads = jax.grad(lambda p: ppo_loss(p, state.apply_fn, batch, cfg=step_cfg)[0])(state.params)
  assert np.any(np.asarray(grads["domain_head"]["kernel"]))


def test_the_episode_level_domain_is_learned_in_a_few_episodes():
  """A bandit over the episode's domain: an episode of domain 1 returns 0.02 more than the
  others, with noise of sd 0.006 (the embedded default's per-set validation noise). Sampling 4
  environments per episode, the greedy domain is 1 within 8 episodes (seeds 0-5 found it in
  2-5 episodes when this test was written)."""
  state, cfg = _agent(epochs=4)
  obs = jnp.full((4, OBS_DIM), 0.5)
  key = jax.random.key(7)
  found = None
  for episode in range(8):
    key, k_act, k_noise = jax.random.split(key, 3)
    action, head_lp, _ = act_in_episode(state.params, obs, k_act, -jnp.ones((4,), jnp.int32),
                                        network=state.network)
    ret = 0.02 * (action[:, 0] == 1) + 0.006 * jax.random.normal(k_noise, (4,))
    state, _ = domain_update(state, obs, action[:, 0], head_lp[:, 0], ret, cfg=cfg)
    if int(np.argmax(_domain_log_probs(state, obs)[0])) == 1:
      found = episode
      break
  assert found is not None


def _herd(state, steps):
  obs = jnp.full((1, OBS_DIM), 0.5)
  mass = jnp.zeros((1, 3, NUM_CLASSES))
  counts = jnp.zeros((1, 3, NUM_CLASSES), jnp.int32)
  chosen = []
  for _ in range(steps):
    action, mass = herding_action(state.params, obs, mass, counts, network=state.network)
    counts = counts + jax.nn.one_hot(action[:, 1:], NUM_CLASSES, dtype=jnp.int32)
    chosen.append(np.asarray(action[0]))
  return np.stack(chosen), np.asarray(counts[0])


def test_herding_from_a_near_uniform_policy_is_balanced():
  """The untrained policy is nearly uniform: greedy takes one class every step, herding each
  class once per round of n steps."""
  state, _ = _agent()
  actions, counts = _herd(state, 4 * NUM_CLASSES)
  np.testing.assert_array_equal(counts[0], np.full(NUM_CLASSES, 4))
  for k in range(3):
    assert counts[k].max() - counts[k].min() <= 1
  assert len(set(actions[:, 0])) == 1   # the domain stays greedy


def test_herding_follows_a_skewed_policy():
  """A policy far from uniform over c1 (its scorer's output scaled up, one class's accuracy
  feature set apart): herding takes each class as often as the policy's summed probability
  says, within one step, instead of the favourite at every step."""
  state, _ = _agent()
  params = jax.tree.map(lambda x: x, state.params)
  scorer = params["slot_heads_0"]["score"]
  params["slot_heads_0"]["score"] = {**scorer, "kernel": scorer["kernel"] * 3000.0}
  obs = np.full((1, OBS_DIM), 0.5, np.float32)
  obs[0, 1 + 3] = 3.0
  obs = jnp.asarray(obs)
  mass = jnp.zeros((1, 3, NUM_CLASSES))
  counts = jnp.zeros((1, 3, NUM_CLASSES), jnp.int32)
  for _ in range(30):
    action, mass = herding_action(params, obs, mass, counts, network=state.network)
    counts = counts + jax.nn.one_hot(action[:, 1:], NUM_CLASSES, dtype=jnp.int32)
  share = np.asarray(mass[0, 0]) / 30
  assert share.max() > 1.4 * share.min(), share   # the policy is skewed
  assert len(np.unique(np.asarray(counts[0, 0]))) > 1
  np.testing.assert_array_less(np.abs(np.asarray(counts[0, 0]) - np.asarray(mass[0, 0])), 1.0 + 1e-5)
