"""The factorised distribution and the actor-critic: log-probs, entropies, sampling, shapes."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsets.agent import PPOConfig, act, evaluate_actions, greedy_action, init_agent
from jaxsets.agent import value as value_fn
from jaxsets.agent.distributions import FactorisedCategorical

D, N, OBS = 3, 5, 7


def _random_dist(key, batch=(6,)):
  k1, k2 = jax.random.split(key)
  return FactorisedCategorical(2.0 * jax.random.normal(k1, batch + (D,)),
                               2.0 * jax.random.normal(k2, batch + (3, N)))


def test_log_prob_is_sum_of_head_log_softmax():
  dist = _random_dist(jax.random.key(0))
  action = jnp.array([[0, 1, 2, 3], [2, 4, 4, 0], [1, 0, 0, 0],
                      [2, 2, 1, 4], [0, 3, 3, 3], [1, 4, 0, 2]], jnp.int32)
  lsm_d = np.asarray(jax.nn.log_softmax(dist.domain_logits, axis=-1))
  lsm_c = np.asarray(jax.nn.log_softmax(dist.class_logits, axis=-1))
  expected = [lsm_d[b, a[0]] + lsm_c[b, 0, a[1]] + lsm_c[b, 1, a[2]] + lsm_c[b, 2, a[3]]
              for b, a in enumerate(np.asarray(action))]
  np.testing.assert_allclose(dist.log_prob(action), expected, rtol=1e-5)
  assert dist.head_log_probs(action).shape == (6, 4)


def test_entropy_is_sum_of_head_entropies():
  dist = _random_dist(jax.random.key(1))

  def h(logits):
    p = jax.nn.softmax(logits, axis=-1)
    return -np.sum(np.asarray(p * jax.nn.log_softmax(logits, axis=-1)), axis=-1)

  expected = h(dist.domain_logits) + h(dist.class_logits).sum(-1)
  np.testing.assert_allclose(dist.entropy(), expected, rtol=1e-5)
  # Uniform heads: log D + 3 log n.
  uniform = FactorisedCategorical(jnp.zeros((D,)), jnp.zeros((3, N)))
  np.testing.assert_allclose(uniform.entropy(), np.log(D) + 3 * np.log(N), rtol=1e-6)


def test_factorised_sample_frequencies_and_mode():
  dist = FactorisedCategorical(jnp.log(jnp.array([0.7, 0.2, 0.1])),
                               jnp.log(jnp.array([[0.1, 0.1, 0.6, 0.1, 0.1]] * 3)))
  samples = jax.vmap(dist.sample)(jax.random.split(jax.random.key(2), 4000))
  assert samples.shape == (4000, 4) and samples.dtype == jnp.int32
  np.testing.assert_allclose(np.mean(samples[:, 0] == 0), 0.7, atol=0.03)
  np.testing.assert_allclose(np.mean(samples[:, 1:] == 2), 0.6, atol=0.03)
  np.testing.assert_array_equal(dist.mode(), [0, 2, 2, 2])


@pytest.mark.parametrize("autoregressive", [False, True])
def test_act_shapes_and_log_prob_consistency(autoregressive):
  cfg = PPOConfig(hidden_sizes=(16, 16), autoregressive=autoregressive)
  state = init_agent(jax.random.key(0), OBS, D, N, cfg)
  obs = jax.random.uniform(jax.random.key(1), (8, OBS))
  action, log_prob, value = act(state.params, obs, jax.random.key(2), network=state.network)
  assert action.shape == (8, 4) and action.dtype == jnp.int32
  assert log_prob.shape == value.shape == (8,)
  assert np.all((action[:, 0] >= 0) & (action[:, 0] < D))
  assert np.all((action[:, 1:] >= 0) & (action[:, 1:] < N))
  # The log-prob returned while sampling (head by head for the autoregressive policy) equals
  # the teacher-forced log-prob that PPO recomputes from the stored action.
  lp2, entropy, value2 = evaluate_actions(state.params, obs, action, network=state.network)
  np.testing.assert_allclose(lp2, log_prob, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(value2, value, rtol=1e-6)
  np.testing.assert_allclose(value_fn(state.params, obs, network=state.network), value, rtol=1e-6)
  # Near-uniform initial policy (heads initialised with gain 0.01).
  np.testing.assert_allclose(entropy, np.log(D) + 3 * np.log(N), rtol=1e-3)
  # Unbatched and vmapped use agree with the batched call.
  a0, lp0, v0 = act(state.params, obs[0], jax.random.key(2), network=state.network)
  assert a0.shape == (4,) and lp0.shape == v0.shape == ()
  g = greedy_action(state.params, obs, network=state.network)
  g_vmapped = jax.vmap(lambda o: greedy_action(state.params, o, network=state.network))(obs)
  np.testing.assert_array_equal(g, g_vmapped)


def test_autoregressive_slots_depend_on_previous_choices():
  cfg = PPOConfig(hidden_sizes=(16,), autoregressive=True)
  state = init_agent(jax.random.key(0), OBS, D, N, cfg)
  obs = jnp.ones((OBS,))
  # Changing only c1 changes the log-prob of c2 and c3 (not of the domain or of c1's own head
  # beyond its index); a factorised policy would leave them untouched.
  a = jnp.array([1, 0, 2, 3], jnp.int32)
  b = jnp.array([1, 4, 2, 3], jnp.int32)
  dist_a, _ = state.network.apply({"params": state.params}, obs, a)
  dist_b, _ = state.network.apply({"params": state.params}, obs, b)
  np.testing.assert_allclose(dist_a.domain_logits, dist_b.domain_logits)
  np.testing.assert_allclose(dist_a.class_logits[0], dist_b.class_logits[0])
  assert not np.allclose(dist_a.class_logits[1], dist_b.class_logits[1])
  assert not np.allclose(dist_a.class_logits[2], dist_b.class_logits[2])


def test_autoregressive_sampling_follows_the_conditionals():
  """Sampled slot-2 frequencies given (domain, c1) match the softmax of the teacher-forced
  conditional logits for that prefix."""
  cfg = PPOConfig(hidden_sizes=(16,), autoregressive=True)
  state = init_agent(jax.random.key(3), OBS, D, N, cfg)
  # Sharpen the policy so the conditional of c2 given c1 is far from uniform.
  params = jax.tree.map(lambda x: x, state.params)
  for name in ("slot_heads_1", "domain_head", "slot_heads_0"):
    params[name]["kernel"] = params[name]["kernel"] * 300.0
  obs = jnp.ones((4000, OBS))
  actions, _, _ = act(params, obs, jax.random.key(4), network=state.network)
  d, c1 = np.asarray(actions[:, 0]), np.asarray(actions[:, 1])
  values, counts = np.unique(np.stack([d, c1], 1), axis=0, return_counts=True)
  prefix = values[np.argmax(counts)]
  rows = (d == prefix[0]) & (c1 == prefix[1])
  assert rows.sum() > 300
  freq = np.bincount(np.asarray(actions[rows, 2]), minlength=N) / rows.sum()
  dist, _ = state.network.apply({"params": params}, obs[0],
                                jnp.array([prefix[0], prefix[1], 0, 0], jnp.int32))
  expected = np.asarray(jax.nn.softmax(dist.class_logits[1]))
  assert np.abs(expected - 1.0 / N).max() > 0.05, "test setup: conditional too flat"
  np.testing.assert_allclose(freq, expected, atol=4 / np.sqrt(rows.sum()))
