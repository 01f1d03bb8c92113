"""RunState: everything a run needs to continue exactly where it stopped, as one pytree."""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxsets import sharding
from jaxsets.agent import AgentState, Plan, Transition, init_agent, no_plan, observation_size
from jaxsets.agent.rollout import RolloutMemory, empty_memory
from jaxsets.classifier import ClassifierState, init_state
from jaxsets.env import environment as env_ops
from jaxsets.env import rollout as env_rollout
from jaxsets.env.rollout import World, reset_rollout
from jaxsets.loop.setup import RunSetup

from jaxsets.streams import (ACT, AGENT_INIT, BASELINE, EVAL, GENERATE, PLAN, PPO,  # noqa: F401
                             RANDOM_ARM, RESET, ROLLOUT, stream)


class EpisodeChoice(NamedTuple):
  """The E training environments' episode-level plan (agent.episode_decisions; with none, a
  plan that keeps nothing) and what its update needs at the episode's end."""
  plan: Plan                   # Plan of [E]
  obs: jax.Array               # float32 [E, obs_dim]: the observation it was chosen from
  log_prob: jax.Array          # float32 [E]: its log-probability then
  ret: jax.Array               # float32 [E]: the episode's rewards summed so far


class RunState(NamedTuple):
  step: jax.Array              # int32 []: global steps done (training steps, then roll-out steps)
  key: jax.Array               # the run's root key (typed)
  baseline: ClassifierState    # trained on real data only; every fine-tune starts here
  agent: AgentState
  env: Any                     # EnvState [E]: the training environments, ready for the next step
  traj: Transition             # [U, E] transitions since the last PPO update
  rollout: Any                 # EnvState [1]: the roll-out that builds the delivered set
  rollout_reward: jax.Array    # float32 [T]
  episode: EpisodeChoice
  rollout_memory: RolloutMemory  # the roll-out's plan, herded plan shares and slot mass so far


def empty_traj(s: RunSetup, obs_dim: int) -> Transition:
  t, e = s.update_every, s.num_envs
  z = lambda *shape, dtype=jnp.float32: jnp.zeros(shape, dtype)
  return Transition(obs=z(t, e, obs_dim), action=z(t, e, 4, dtype=jnp.int32), reward=z(t, e),
                    done=z(t, e, dtype=bool), value=z(t, e), log_prob=z(t, e),
                    head_mask=z(t, e, 4) if s.ppo.episode_decisions else None)


@jax.jit
def write_transition(traj: Transition, row: jax.Array, transition: Transition) -> Transition:
  """traj [U, E] with row `row` (int32 [], traced: one compile for every row) replaced by
  transition [E]."""
  return jax.tree.map(lambda buf, x: buf.at[row].set(x), traj, transition)


def world(s: RunSetup, baseline: ClassifierState) -> World:
  """What every environment step of the run reads (env/rollout.py)."""
  return World(baseline, s.real, s.val, s.clf_cfg, s.spec, s.generator, s.book, s.mesh)


def generate_images(s: RunSetup, actions, key):
  """The run's generator on actions int32 [E, 4] -> images uint8 [E, ips, H, W, C]."""
  return env_rollout.generate_images(s.generator, s.book, actions, key,
                                     images_per_prompt=s.spec.images_per_step)


def reset_envs(s: RunSetup, baseline, key, num_envs: int):
  # The key arrives replicated either way, but as a jit output (GSPMDSharding) on a fresh run and
  # as a NamedSharding after a restore; one placement keeps that from compiling reset again.
  key = sharding.replicate(key, s.mesh)
  return env_ops.reset(baseline, s.real, s.val, key, s.clf_cfg, spec=s.spec, num_envs=num_envs,
                       mesh=s.mesh)


def state_shardings(s: RunSetup, state: RunState) -> RunState:
  """Where each leaf of `state` (arrays or shapes) lives: the environments as
  env_ops.env_shardings says (split over the mesh when E is a multiple of its devices),
  everything else (agent, baseline, trajectory, keys) replicated."""
  whole = sharding.replicated(s.mesh)
  places = jax.tree.map(lambda _: whole, state)
  return places._replace(env=env_ops.env_shardings(state.env, s.mesh),
                         rollout=env_ops.env_shardings(state.rollout, s.mesh))


def place(s: RunSetup, state: RunState) -> RunState:
  """`state` on the devices as state_shardings says. One placement for a fresh state, a restored
  one and each step's result, so all compile the same programs (and a resumed run has the bits
  of an uninterrupted one); a leaf already in place is not copied."""
  return jax.tree.map(sharding.put, state, state_shardings(s, state))


def placed_shapes(s: RunSetup, shapes: RunState) -> RunState:
  """jax.ShapeDtypeStruct leaves with the shardings of state_shardings: a restore template, so
  a checkpoint comes back onto the devices where the state lives (every host its own shards)."""
  return jax.tree.map(lambda x, where: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=where),
                      shapes, state_shardings(s, shapes))


def initial_state(s: RunSetup, baseline: ClassifierState, key) -> RunState:
  """The state before step 0, given a trained (or, for a restore template, untrained) baseline."""
  obs_dim = observation_size(s.spec.num_classes, s.ppo.observation)
  agent = init_agent(stream(key, AGENT_INIT), obs_dim, s.book.num_domains, s.book.num_classes, s.ppo)
  return RunState(
      step=jnp.int32(0), key=key, baseline=baseline, agent=agent,
      env=reset_envs(s, baseline, stream(key, RESET, 0), s.num_envs),
      traj=empty_traj(s, obs_dim),
      rollout=reset_rollout(world(s, baseline), key),
      rollout_reward=jnp.zeros((s.steps_per_episode,), jnp.float32),
      episode=EpisodeChoice(no_plan((s.num_envs,)), jnp.zeros((s.num_envs, obs_dim), jnp.float32),
                            jnp.zeros((s.num_envs,), jnp.float32),
                            jnp.zeros((s.num_envs,), jnp.float32)),
      rollout_memory=empty_memory(s.book.num_domains, s.spec.num_classes))


def untrained_baseline(s: RunSetup, key) -> ClassifierState:
  return init_state(stream(key, BASELINE), s.clf_cfg, s.splits.image_shape, s.spec.num_classes,
                    s.mesh)
