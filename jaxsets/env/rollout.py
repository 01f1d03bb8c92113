"""An agent's step in the environment: act, generate the step's images, step the environment.

`jaxsets run` (loop/driver.py) steps its training environments with `env_step` and builds the
delivered set with `rollout_step`; `jaxsets.build_support_set` calls `roll_out`, which is
`rollout_step` T times from a fresh environment. One function each, so a run and the API build
the same set, bit for bit, from the same agent, data and key (tests/test_rollout.py).

Keys: the roll-out's environment is reset with stream(key, ROLLOUT) and step t generates with
stream(key, GENERATE, first_step + t); in a run first_step is episodes * T, the step after the
last training step (streams.py).
"""
from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsets import sharding
from jaxsets.agent.reward import check_finite
from jaxsets.agent.rollout import RolloutMemory, empty_memory, rollout_action
from jaxsets.env import environment
from jaxsets.streams import GENERATE, ROLLOUT, stream


class World(NamedTuple):
  """What every step reads and no step changes."""
  baseline: Any                # ClassifierState trained on real data; fine-tunes start here
  real: Any                    # DeviceSet: the real training data every fine-tune sees
  val: Any                     # DeviceSet: the validation split the reward is measured on
  clf_cfg: Any                 # ClassifierConfig
  spec: environment.EnvSpec
  generator: Any               # Generator (its mesh is the one the environment runs on)
  book: Any                    # PromptBook: actions -> CLIP ids and prompt text
  mesh: Any = None             # the mesh the environment runs on (environment.py); None: one device


@partial(jax.jit, static_argnames=("book", "images_per_prompt"))
def prompt_ids(actions, *, book, images_per_prompt: int):
  """actions int32 [E, 4] -> CLIP ids int32 [E*ips, L], each prompt repeated ips times. Jitted:
  op by op, assembling the ids cost about 50 ms a step (a sixth of a generation)."""
  return book.ids(jnp.repeat(actions, images_per_prompt, axis=0))


def generate_images(generator, book, actions, key, *, images_per_prompt: int):
  """actions int32 [E, 4] -> images uint8 [E, ips, H, W, C] (ips = images_per_prompt)."""
  ids = prompt_ids(actions, book=book, images_per_prompt=images_per_prompt)     # [E*ips, L]
  images = generator.generate_ids(ids, key)
  return images.reshape((actions.shape[0], images_per_prompt) + images.shape[1:])


def env_step(world: World, env, actions, key, *, where: str):
  """Generates the images for actions int32 [E, 4] with `key` and steps the E environments.
  Returns (env, reward float32 [E], validation metrics after the step); a non-finite reward
  raises NonFiniteRewardError naming `where`."""
  images = generate_images(world.generator, world.book, actions, key,
                           images_per_prompt=world.spec.images_per_step)
  env, reward, finite, metrics = environment.step(env, actions, images, world.baseline, world.real,
                                                  world.val, world.clf_cfg, spec=world.spec,
                                                  mesh=world.mesh)
  return env, check_finite(reward, finite, where=where), metrics


def rollout_step(world: World, agent, env, memory: RolloutMemory, t: int, key, *, rollout: str):
  """Step t of the roll-out of one environment (env: EnvState of [1]): the agent's herding or
  greedy action (agent/rollout.py), its images generated with `key`, the environment stepped.
  Returns (env, memory, reward float32 [1])."""
  obs = environment.observe(env, spec=world.spec)                                # [1, obs_dim]
  counts = environment.slot_counts(env, num_classes=world.spec.num_classes)       # [1, 3, n]
  actions, memory = rollout_action(agent, obs, counts, t, memory, rollout=rollout)
  env, reward, _ = env_step(world, env, actions, key, where=f"roll-out step {t}")
  return env, memory, reward


def reset_rollout(world: World, key):
  """The roll-out's environment (E = 1) before its first step, reset with stream(key, ROLLOUT)."""
  reset_key = stream(key, ROLLOUT)
  if world.mesh is not None:  # one placement of the key, fresh or restored (loop/state.py)
    reset_key = sharding.replicate(reset_key, world.mesh)
  return environment.reset(world.baseline, world.real, world.val, reset_key, world.clf_cfg,
                           spec=world.spec, num_envs=1, mesh=world.mesh)


def roll_out(world: World, agent, key, *, rollout: str, first_step: int = 0):
  """The whole roll-out: T = budget / images_per_step steps of `rollout_step` from a fresh
  environment. Returns (env: EnvState of [1] holding the set, rewards float32 [T] on the host)."""
  env = reset_rollout(world, key)
  memory = empty_memory(world.book.num_domains, world.spec.num_classes)
  rewards = []
  for t in range(world.spec.steps_per_episode):
    env, memory, reward = rollout_step(world, agent, env, memory, t,
                                       stream(key, GENERATE, first_step + t), rollout=rollout)
    rewards.append(float(reward[0]))
  return env, np.asarray(rewards, np.float32)


def support_set_of(env, rewards, book, *, images_per_step: int):
  """The set a finished roll-out built, as a SupportSet: env an EnvState of [1], rewards float32
  [T] (step t's reward). Image i came from step i // images_per_step, whose prompt it carries."""
  from jaxsets.outputs.support_set import SupportSet

  # to_host, not np.asarray: on several hosts an array may be split over processes.
  members = sharding.to_host(env.support.mask)[0]                  # the roll-out fills the budget
  actions = sharding.to_host(env.actions)[0]                                       # [T, 4]
  steps = (np.flatnonzero(members) // images_per_step).astype(np.int32)            # [N]
  prompts = [book.text(a) for a in actions]
  return SupportSet(images=sharding.to_host(env.support.images)[0][members],
                    labels=sharding.to_host(env.support.labels)[0][members].astype(np.int32),
                    prompts=tuple(prompts[s] for s in steps), steps=steps,
                    rewards=np.asarray(sharding.to_host(rewards), np.float32)[steps],
                    class_names=tuple(book.class_names))
