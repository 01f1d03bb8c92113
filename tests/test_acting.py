"""A training step's act (agent/acting.py) and trajectory write (loop/state.py), the driver's
two agent stages."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxsets.agent import (ObservationConfig, Plan, PPOConfig, Transition, act, act_in_episode,
                           init_agent, observation_size)
from jaxsets.agent.acting import act_for_step
from jaxsets.loop.state import write_transition

NUM_DOMAINS, NUM_CLASSES, E = 3, 5, 4
OBS_DIM = observation_size(NUM_CLASSES, ObservationConfig())


def _agent(decisions):
  cfg = PPOConfig(hidden_sizes=(16,), episode_decisions=decisions)
  return init_agent(jax.random.key(0), OBS_DIM, NUM_DOMAINS, NUM_CLASSES, cfg)


def _inputs():
  obs = jax.random.uniform(jax.random.key(1), (E, OBS_DIM))
  return obs, jax.random.split(jax.random.key(2), E)


def test_a_planned_step_credits_only_the_heads_it_chose():
  agent = _agent(("domain", "blend"))
  obs, keys = _inputs()
  # env 0 keeps domain 2 and a pure blend; env 1 keeps the domain only; envs 2, 3 keep nothing.
  plan = Plan(jnp.array([2, 1, -1, -1], jnp.int32), jnp.array([True, False, False, True]))
  step = act_for_step(agent.params, obs, keys, plan, network=agent.network)
  np.testing.assert_array_equal(step.head_mask, [[0, 1, 0, 0], [0, 1, 1, 1], [1, 1, 1, 1],
                                                 [1, 1, 0, 0]])
  assert step.action[0, 0] == 2 and step.action[1, 0] == 1
  assert step.action[0, 2] == step.action[0, 1] == step.action[0, 3]
  _, head_log_prob, value = jax.vmap(
      lambda o, k, d, p: act_in_episode(agent.params, o, k, d, p, network=agent.network))(
          obs, keys, plan.domain, plan.pure)
  expected = np.sum(np.asarray(head_log_prob) * np.asarray(step.head_mask), axis=-1)
  np.testing.assert_allclose(step.log_prob, expected, rtol=1e-6)
  np.testing.assert_array_equal(step.value, value)


def test_without_episode_decisions_every_head_acts_and_there_is_no_mask():
  agent = _agent(())
  obs, keys = _inputs()
  unused = Plan(jnp.full((E,), 2, jnp.int32), jnp.ones((E,), bool))  # ignored without decisions
  step = act_for_step(agent.params, obs, keys, unused, network=agent.network)
  action, log_prob, value = jax.vmap(lambda o, k: act(agent.params, o, k, network=agent.network))(
      obs, keys)
  assert step.head_mask is None
  np.testing.assert_array_equal(step.action, action)
  np.testing.assert_allclose(step.log_prob, log_prob, rtol=1e-6)
  np.testing.assert_array_equal(step.value, value)


def test_the_trajectory_write_sets_one_row_and_compiles_once():
  zeros = lambda *shape, dtype=jnp.float32: jnp.zeros(shape, dtype)
  traj = Transition(zeros(3, E, 2), zeros(3, E, 4, dtype=jnp.int32), zeros(3, E),
                    zeros(3, E, dtype=bool), zeros(3, E), zeros(3, E), None)
  row = Transition(jnp.ones((E, 2)), jnp.full((E, 4), 7, jnp.int32), jnp.arange(E, dtype=jnp.float32),
                   jnp.ones((E,), bool), jnp.ones((E,)), -jnp.ones((E,)), None)
  write_transition.clear_cache()
  for t in (1, 2):
    traj = write_transition(traj, t, row)
  assert write_transition._cache_size() == 1  # the row index is traced
  np.testing.assert_array_equal(traj.action[:, 0, 0], [0, 7, 7])
  np.testing.assert_array_equal(traj.reward[2], np.arange(E))
  np.testing.assert_array_equal(traj.done[0], np.zeros(E, bool))
