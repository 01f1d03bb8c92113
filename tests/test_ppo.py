"""PPO loss pieces by hand; ppo_update's determinism, trace count and shapes."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsets import sharding

from jaxsets.agent import PPOConfig, Minibatch, Transition, act, init_agent, ppo_loss, ppo_update
from jaxsets.agent.ppo import clipped_policy_loss, standardise, value_loss


def test_clipped_policy_loss_by_hand():
  # eps = 0.2, so the ratio is clipped to [0.8, 1.2].
  ratio = jnp.array([1.5, 1.5, 0.5, 0.5, 1.1])
  adv = jnp.array([1.0, -1.0, 1.0, -1.0, 2.0])
  old_lp = jnp.array([-1.0, -2.0, -0.5, -3.0, -1.2])
  lp = old_lp + jnp.log(ratio)
  # per sample min(r A, clip(r) A):
  #   r=1.5, A=+1: min(1.5, 1.2)   =  1.2   (clipped: no gradient)
  #   r=1.5, A=-1: min(-1.5, -1.2) = -1.5   (unclipped: the pessimistic side)
  #   r=0.5, A=+1: min(0.5, 0.8)   =  0.5   (unclipped)
  #   r=0.5, A=-1: min(-0.5, -0.8) = -0.8   (clipped: no gradient)
  #   r=1.1, A=+2: min(2.2, 2.2)   =  2.2   (inside the range)
  # loss = -(1.2 - 1.5 + 0.5 - 0.8 + 2.2) / 5 = -1.6 / 5 = -0.32
  loss, approx_kl, clip_fraction = clipped_policy_loss(lp, old_lp, adv, 0.2)
  np.testing.assert_allclose(loss, -0.32, rtol=1e-5)
  np.testing.assert_allclose(clip_fraction, 0.8)  # 4 of 5 ratios outside [0.8, 1.2]
  # approx_kl = mean(r - 1 - log r)
  r = np.array([1.5, 1.5, 0.5, 0.5, 1.1])
  np.testing.assert_allclose(approx_kl, np.mean(r - 1 - np.log(r)), rtol=1e-5)
  # d loss / d log_prob_i = -(1/5) * r_i * A_i where unclipped, 0 where clipped:
  #   [0, -(1/5)(1.5)(-1) = 0.3, -(1/5)(0.5)(1) = -0.1, 0, -(1/5)(1.1)(2) = -0.44]
  grad = jax.grad(lambda x: clipped_policy_loss(x, old_lp, adv, 0.2)[0])(lp)
  np.testing.assert_allclose(grad, [0.0, 0.3, -0.1, 0.0, -0.44], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("n", [4, 64, 640])
@pytest.mark.parametrize("value", [0.3, 0.1, -0.0713, 1.7])
def test_standardise_gives_zeros_when_the_values_are_equal(n, value):
  # Equal advantages (a batch with no reward signal) carry no preference. Dividing the float32
  # mean's residue by its own std used to give every row ~+-0.9 here for n = 64 and 640.
  x = jnp.full((n,), value, jnp.float32)
  np.testing.assert_array_equal(jax.jit(standardise)(x), np.zeros(n))
  # A spread of a few ulps (a batched matmul's tail rows) is no signal either.
  np.testing.assert_array_equal(jax.jit(standardise)(x.at[0].set(np.nextafter(
      np.float32(value), np.float32(np.inf)))), np.zeros(n))


def test_standardise_by_hand():
  x = jnp.array([1.0, 2.0, 3.0, 4.0])  # mean 2.5, population std sqrt(1.25)
  np.testing.assert_allclose(jax.jit(standardise)(x),
                             np.array([-1.5, -0.5, 0.5, 1.5]) / np.sqrt(1.25), atol=1e-6)
  np.testing.assert_array_equal(standardise(jnp.zeros(8)), np.zeros(8))


def test_value_loss_plain_and_clipped_by_hand():
  value = jnp.array([1.0, 0.0, 2.0])
  old_value = jnp.array([0.5, 0.5, 2.0])
  returns = jnp.array([2.0, 1.0, 1.0])
  # plain: 0.5 * mean([(1-2)^2, (0-1)^2, (2-1)^2]) = 0.5 * 1 = 0.5
  np.testing.assert_allclose(value_loss(value, old_value, returns, 0.0), 0.5)
  # clipped, eps = 0.2: V_clip = old + clip(V - old, +-0.2) = [0.7, 0.3, 2.0]
  #   max((1-2)^2, (0.7-2)^2) = 1.69; max((0-1)^2, (0.3-1)^2) = 1.0; max(1, 1) = 1
  #   0.5 * (1.69 + 1 + 1) / 3 = 0.615
  np.testing.assert_allclose(value_loss(value, old_value, returns, 0.2), 0.615, rtol=1e-6)


def test_ppo_loss_combines_terms():
  cfg = PPOConfig(hidden_sizes=(8,), vf_coef=0.5, ent_coef=0.01)
  state = init_agent(jax.random.key(0), 4, 2, 3, cfg)
  obs = jax.random.uniform(jax.random.key(1), (5, 4))
  action, log_prob, value = act(state.params, obs, jax.random.key(2), network=state.network)
  batch = Minibatch(obs, action, log_prob, value, advantage=jnp.arange(5.0) - 2.0,
                    returns=value + 1.0)
  loss, m = ppo_loss(state.params, state.apply_fn, batch, cfg=cfg)
  # Same params as when acting: ratio = 1, nothing clipped, KL = 0, policy loss = -mean(A) = 0,
  # value loss = 0.5 * 1^2.
  np.testing.assert_allclose(m["approx_kl"], 0.0, atol=1e-6)
  np.testing.assert_allclose(m["clip_fraction"], 0.0)
  np.testing.assert_allclose(m["policy_loss"], 0.0, atol=1e-6)
  np.testing.assert_allclose(m["value_loss"], 0.5, rtol=1e-5)
  np.testing.assert_allclose(loss, m["policy_loss"] + 0.5 * m["value_loss"] - 0.01 * m["entropy"],
                             rtol=1e-5)


def _trajectory(key, state, T, E, obs_dim):
  k_obs, k_act, k_rew, k_done = jax.random.split(key, 4)
  obs = jax.random.uniform(k_obs, (T, E, obs_dim))
  action, log_prob, value = act(state.params, obs, k_act, network=state.network)
  reward = jax.random.normal(k_rew, (T, E))
  done = jnp.zeros((T, E), bool).at[-1].set(True)
  return Transition(obs, action, reward, done, value, log_prob)


@pytest.mark.parametrize("T,E", [(3, 4), (5, 1)])
def test_ppo_update_deterministic_and_compiled_once(T, E):
  cfg = PPOConfig(hidden_sizes=(16,), epochs=2, minibatches=3)  # for (5, 1): 3 does not divide 5 rows
  state = init_agent(jax.random.key(0), 5, 3, 4, cfg)
  traj = _trajectory(jax.random.key(1), state, T, E, 5)
  last_value = jnp.zeros((E,))
  size_before = ppo_update._cache_size()
  s1, m1 = ppo_update(state, traj, last_value, jax.random.key(7), cfg=cfg)
  s2, m2 = ppo_update(state, traj, last_value, jax.random.key(7), cfg=cfg)
  for a, b in zip(jax.tree.leaves((s1.params, s1.opt_state, m1)),
                  jax.tree.leaves((s2.params, s2.opt_state, m2))):
    np.testing.assert_array_equal(a, b)
  assert int(s1.step) == cfg.epochs * cfg.minibatches
  assert set(m1) >= {"loss", "policy_loss", "value_loss", "entropy", "approx_kl",
                     "clip_fraction", "grad_norm", "explained_variance"}
  assert all(np.shape(v) == () and np.isfinite(v) for v in m1.values())
  # The parameters moved, and another key shuffles differently.
  assert any(not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(state.params), jax.tree.leaves(s1.params)))
  s3, _ = ppo_update(state, traj, last_value, jax.random.key(8), cfg=cfg)
  assert any(not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(s1.params), jax.tree.leaves(s3.params)))
  # New data, the updated state and a new key: no new compilation.
  traj2 = _trajectory(jax.random.key(2), s1, T, E, 5)
  ppo_update(s1, traj2, last_value + 1.0, jax.random.key(9), cfg=cfg)
  # (<=: another test may already have compiled this signature.)
  assert ppo_update._cache_size() <= size_before + 1


def test_new_gamma_learning_rate_or_clip_reuses_the_compiled_update():
  """The numbers one sweeps are traced: a new value changes the result, not the program; a new
  structure (epochs) compiles once more."""
  cfg = PPOConfig(hidden_sizes=(16,), epochs=2, minibatches=3)  # as above: reuses its compile
  state = init_agent(jax.random.key(0), 5, 3, 4, cfg)
  traj = _trajectory(jax.random.key(1), state, 3, 4, 5)
  last_value = jnp.ones((4,))
  first, _ = ppo_update(state, traj, last_value, jax.random.key(7), cfg=cfg)
  size = ppo_update._cache_size()
  for change in ({"gamma": 0.5}, {"learning_rate": 3e-3}, {"clip_eps": 1e-4},
                 {"gae_lambda": 0.5, "vf_coef": 1.0, "ent_coef": 0.2, "max_grad_norm": 0.01,
                  "value_clip_eps": 1e-4}):
    new, _ = ppo_update(state, traj, last_value, jax.random.key(7), cfg=cfg.replace(**change))
    assert any(not np.array_equal(a, b) for a, b in  # the new value is used
               zip(jax.tree.leaves(first.params), jax.tree.leaves(new.params))), change
  # A sweep point as a user writes it: a new agent (another seed, its own learning rate). Each
  # agent's own optimiser and bound `apply` used to make it a new program.
  swept = cfg.replace(learning_rate=3e-3)
  ppo_update(init_agent(jax.random.key(1), 5, 3, 4, swept), traj, last_value, jax.random.key(7),
             cfg=swept)
  assert ppo_update._cache_size() == size
  ppo_update(state, traj, last_value, jax.random.key(7), cfg=cfg.replace(epochs=1))
  assert ppo_update._cache_size() == size + 1


def test_an_agent_is_not_updated_through_its_tx():
  """The agent's tx is the optimiser's state layout only (its numbers come from the cfg given to
  ppo_update): using it directly is refused rather than updating with numbers nobody chose."""
  state = init_agent(jax.random.key(0), 5, 3, 4, PPOConfig(hidden_sizes=(16,)))
  with pytest.raises(TypeError, match="use jaxsets.ppo_update|update the agent with jaxsets.ppo_update"):
    state.apply_gradients(grads=state.params)


def test_ppo_update_refuses_too_few_rows():
  cfg = PPOConfig(hidden_sizes=(8,), minibatches=4)
  state = init_agent(jax.random.key(0), 3, 2, 2, cfg)
  T, E = 1, 2
  traj = Transition(jnp.zeros((T, E, 3)), jnp.zeros((T, E, 4), jnp.int32), jnp.zeros((T, E)),
                    jnp.ones((T, E), bool), jnp.zeros((T, E)), jnp.zeros((T, E)))
  with pytest.raises(ValueError, match="minibatches"):
    ppo_update(state, traj, jnp.zeros((2,)), jax.random.key(0), cfg=cfg)


def test_ppo_update_with_envs_sharded_over_devices_matches_one_device():
  """The loop may shard the E environments over a mesh; jit inserts the collectives."""
  devices = jax.devices()
  if len(devices) < 4:
    pytest.skip("needs 4 (fake) devices: see tests/conftest.py")
  cfg = PPOConfig(hidden_sizes=(16,), epochs=2, minibatches=3)  # as above: reuses its compile
  state = init_agent(jax.random.key(0), 5, 3, 4, cfg)
  T, E = 3, 4
  traj = _trajectory(jax.random.key(1), state, T, E, 5)
  last_value = jnp.arange(E, dtype=jnp.float32)
  ref_state, ref_metrics = ppo_update(state, traj, last_value, jax.random.key(3), cfg=cfg)
  mesh = sharding.make_mesh(devices[:4])
  env_axis = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, sharding.DATA_AXIS))
  sharded_traj = jax.device_put(traj, env_axis)  # [T, E, ...] split along E
  sharded_last = sharding.shard_batch(last_value, mesh)
  new_state, metrics = ppo_update(sharding.replicate(state, mesh), sharded_traj, sharded_last,
                                  jax.random.key(3), cfg=cfg)
  for a, b in zip(jax.tree.leaves((ref_state.params, ref_metrics)),
                  jax.tree.leaves((new_state.params, metrics))):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
  assert new_state.params["domain_head"]["kernel"].sharding.is_fully_replicated
