"""GAE: hand-worked numbers and a textbook reference (forward sums, not the recursion)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsets.agent import gae


def textbook_gae(rewards, values, dones, last_value, gamma, lam):
  """A_t = sum_l (gamma*lam)^l delta_{t+l}, the sum stopping after the first done (Schulman et
  al. 2016, eq. 16 truncated at episode ends); plain Python over one environment."""
  T = len(rewards)
  next_values = list(values[1:]) + [last_value]
  deltas = [rewards[t] + gamma * next_values[t] * (1 - dones[t]) - values[t] for t in range(T)]
  advantages = []
  for t in range(T):
    total, weight = 0.0, 1.0
    for k in range(t, T):
      total += weight * deltas[k]
      if dones[k]:
        break
      weight *= gamma * lam
    advantages.append(total)
  return np.array(advantages), np.array(advantages) + np.array(values)


def test_gae_by_hand_with_done_in_the_middle():
  # gamma = 0.9, lambda = 0.8 (gamma * lambda = 0.72); the episode ends after step 1.
  rewards = jnp.array([1.0, 2.0, 3.0, 4.0])
  values = jnp.array([0.5, 1.0, 1.5, 2.0])
  dones = jnp.array([False, True, False, False])
  last_value = jnp.array(3.0)
  adv, ret = gae(rewards, values, dones, last_value, 0.9, 0.8)
  # t=3: delta = 4 + 0.9 * 3.0 - 2.0 = 4.7                      A3 = 4.7
  # t=2: delta = 3 + 0.9 * 2.0 - 1.5 = 3.3                      A2 = 3.3 + 0.72 * 4.7 = 6.684
  # t=1: done, no bootstrap: delta = 2 - 1.0 = 1.0              A1 = 1.0 (A2 not carried over)
  # t=0: delta = 1 + 0.9 * 1.0 - 0.5 = 1.4                      A0 = 1.4 + 0.72 * 1.0 = 2.12
  np.testing.assert_allclose(adv, [2.12, 1.0, 6.684, 4.7], rtol=1e-6)
  # returns = A + V
  np.testing.assert_allclose(ret, [2.62, 2.0, 8.184, 6.7], rtol=1e-6)


def test_gae_last_step_done_ignores_last_value():
  rewards, values = jnp.array([1.0, 1.0, 1.0]), jnp.array([0.0, 0.0, 0.0])
  dones = jnp.array([0.0, 0.0, 1.0])
  a1, _ = gae(rewards, values, dones, jnp.array(0.0), 0.5, 1.0)
  a2, _ = gae(rewards, values, dones, jnp.array(1e6), 0.5, 1.0)
  # A2 = 1; A1 = 1 + 0.5 * 1 = 1.5; A0 = 1 + 0.5 * 1.5 = 1.75
  np.testing.assert_allclose(a1, [1.75, 1.5, 1.0])
  np.testing.assert_allclose(a2, a1)


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.0), (1.0, 1.0)])
def test_gae_matches_textbook_per_environment(gamma, lam):
  T, E = 7, 3
  k = jax.random.split(jax.random.key(0), 4)
  rewards = jax.random.normal(k[0], (T, E))
  values = jax.random.normal(k[1], (T, E))
  dones = jax.random.bernoulli(k[2], 0.3, (T, E))
  last_value = jax.random.normal(k[3], (E,))
  adv, ret = jax.jit(gae, static_argnums=(4, 5))(rewards, values, dones, last_value, gamma, lam)
  assert adv.shape == ret.shape == (T, E)
  for e in range(E):
    ref_adv, ref_ret = textbook_gae(np.asarray(rewards[:, e], np.float64).tolist(),
                                    np.asarray(values[:, e], np.float64).tolist(),
                                    np.asarray(dones[:, e]).tolist(), float(last_value[e]),
                                    gamma, lam)
    np.testing.assert_allclose(adv[:, e], ref_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret[:, e], ref_ret, rtol=1e-5, atol=1e-5)
