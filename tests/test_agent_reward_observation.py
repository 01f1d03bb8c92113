"""Reward (both entropy definitions, NaN guard), observation layout, configs from digits.py."""
import math
import os
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsets import config_loading
from jaxsets.agent import (NonFiniteRewardError, ObservationConfig, PPOConfig, RewardConfig,
                           check_finite, init_agent, make_observation, observation_size, reward,
                           reward_from_config)
from jaxsets.errors import UserError

DIGITS = os.path.join(os.path.dirname(__file__), os.pardir, "configs", "digits.py")


class Metrics(NamedTuple):  # what the classifier's EvalMetrics provides
  accuracy: jax.Array
  per_class_accuracy: jax.Array
  mean_entropy: jax.Array
  per_class_entropy: Optional[jax.Array] = None


BEFORE = Metrics(jnp.float32(0.60), jnp.array([0.5, 0.5, 0.8, 0.6]), jnp.float32(1.20))
AFTER = Metrics(jnp.float32(0.65), jnp.array([0.6, 0.5, 0.8, 0.7]), jnp.float32(1.00))


def test_reward_mean_predictive_by_hand():
  # 1.0 * (0.65 - 0.60) - 1.0 * (1.00 - 1.20) = 0.05 + 0.20 = 0.25
  r, finite = reward(BEFORE, AFTER, w_acc=1.0, w_ent=1.0)
  np.testing.assert_allclose(r, 0.25, rtol=1e-5)
  assert bool(finite)
  # 2 * 0.05 - 0.5 * (-0.2) = 0.2
  r, _ = jax.jit(lambda b, a: reward(b, a, w_acc=2.0, w_ent=0.5))(BEFORE, AFTER)
  np.testing.assert_allclose(r, 0.2, rtol=1e-5)


def test_reward_per_class_accuracy_entropy():
  def h(acc):
    p = np.asarray(acc) / np.sum(acc)
    return -np.sum(p * np.log(p))
  r, _ = reward(BEFORE, AFTER, w_acc=0.0, w_ent=1.0, entropy="per_class_accuracy_entropy")
  np.testing.assert_allclose(r, -(h(AFTER.per_class_accuracy) - h(BEFORE.per_class_accuracy)),
                             rtol=1e-4)
  # Tied accuracies give the maximum, log n, and all-zero accuracies count as tied.
  tied = Metrics(0.5, jnp.full((4,), 0.5), 1.0)
  zero = Metrics(0.0, jnp.zeros((4,)), 1.0)
  r, _ = reward(zero, tied, w_acc=0.0, w_ent=1.0, entropy="per_class_accuracy_entropy")
  np.testing.assert_allclose(r, 0.0, atol=1e-6)
  one_class = Metrics(0.25, jnp.array([1.0, 0.0, 0.0, 0.0]), 1.0)
  r, _ = reward(tied, one_class, w_acc=0.0, w_ent=1.0, entropy="per_class_accuracy_entropy")
  np.testing.assert_allclose(r, math.log(4), rtol=1e-5)  # entropy fell from log 4 to 0


def test_reward_batched_over_envs_and_nan_is_refused():
  before = jax.tree.map(lambda x: jnp.stack([x, x, x]), BEFORE)
  after = jax.tree.map(lambda x: jnp.stack([x, x, x]), AFTER)
  after = after._replace(mean_entropy=after.mean_entropy.at[1].set(jnp.nan))
  r, finite = jax.jit(lambda b, a: reward(b, a))(before, after)
  assert r.shape == finite.shape == (3,)
  np.testing.assert_array_equal(finite, [True, False, True])
  with pytest.raises(NonFiniteRewardError, match=r"diverged.*\[1\]|\[1\].*diverged"):
    check_finite(r, finite, where="episode 0 step 3")
  assert issubclass(NonFiniteRewardError, UserError)  # the CLI prints it as a clear message
  inf_after = AFTER._replace(accuracy=jnp.float32(jnp.inf))
  with pytest.raises(NonFiniteRewardError):
    check_finite(*reward(BEFORE, inf_after))
  np.testing.assert_allclose(check_finite(*reward(BEFORE, AFTER)), 0.25, rtol=1e-5)


def test_unknown_entropy_name_is_refused():
  with pytest.raises(ValueError, match="mean_predictive"):
    reward(BEFORE, AFTER, entropy="typo")
  with pytest.raises(ValueError, match="config.reward.entropy"):
    RewardConfig(entropy="typo")


def test_observation_layout_and_size():
  n, budget = 4, 40
  metrics = BEFORE._replace(per_class_entropy=jnp.array([0.0, 1.0, 2.0, math.log(4)]))
  counts = jnp.array([10, 0, 5, 5])
  full = ObservationConfig(per_class_entropy=True, support_counts=True)
  obs = make_observation(metrics, 20, counts, budget=budget, cfg=full)
  assert obs.shape == (observation_size(n, full),) == (1 + 4 + 1 + 4 + 4,)
  assert obs.dtype == jnp.float32
  expected = ([0.6] + [0.5, 0.5, 0.8, 0.6] + [20 / 40]
              + [0.0, 1 / math.log(4), 2 / math.log(4), 1.0] + [10 / 10, 0.0, 5 / 10, 5 / 10])  # counts / (budget / n)
  np.testing.assert_allclose(obs, expected, rtol=1e-6)
  minimal = ObservationConfig(per_class_entropy=False, support_counts=False)
  obs = make_observation(BEFORE, 0, counts, budget=budget, cfg=minimal)
  np.testing.assert_allclose(obs, [0.6, 0.5, 0.5, 0.8, 0.6, 0.0], rtol=1e-6)
  assert observation_size(n, minimal) == 6
  # Batched over E environments, inside jit.
  batched = jax.tree.map(lambda x: jnp.stack([x, x]), metrics)
  f = jax.jit(lambda m, s, c: make_observation(m, s, c, budget=budget, cfg=full))
  assert f(batched, jnp.array([0, 10]), jnp.stack([counts, counts])).shape == (2, 14)
  with pytest.raises(ValueError, match="per_class_entropy"):
    make_observation(BEFORE, 0, counts, budget=budget, cfg=full)


@pytest.mark.parametrize("variant", ["", ":smoke"])
def test_configs_from_digits(variant):
  config = config_loading.load_config_file(DIGITS + variant)
  cfg = PPOConfig.from_config(config.agent)
  rcfg = RewardConfig.from_config(config.reward)
  hash(cfg), hash(rcfg)  # static arguments of jit must be hashable
  # digits.py weights the entropy 0.05, not the paper's 1 (its comment gives the measurement).
  assert rcfg == RewardConfig(w_acc=1.0, w_ent=0.05, entropy="mean_predictive")
  obs_dim = observation_size(10, cfg.observation)
  state = init_agent(jax.random.key(0), obs_dim, len(config.prompts.domains), 10, cfg)
  assert state.params["domain_head"]["kernel"].shape == (cfg.hidden_sizes[-1], 4)
  # 1.0 * (0.65 - 0.60) - 0.05 * (1.00 - 1.20) = 0.05 + 0.01
  np.testing.assert_allclose(reward_from_config(BEFORE, AFTER, rcfg)[0], 0.06, rtol=1e-5)


def test_bad_agent_config_is_refused():
  config = config_loading.load_config_file(DIGITS + ":smoke")
  with config.unlocked():
    config.agent.gamma = 1.5
    config.agent.minibatches = 0
  with pytest.raises(ValueError, match=r"gamma=1.5.*minibatches=0"):
    PPOConfig.from_config(config.agent)
