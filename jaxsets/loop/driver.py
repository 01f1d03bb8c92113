"""The one thin loop of a run: restore, step, learn, checkpoint, and at the end the three arms.

Steps 0 .. episodes*T-1 train the agent on E environments (PPO after each episode of T steps);
steps episodes*T .. episodes*T+T-1 are the roll-out of the trained agent (herding or greedy,
config.loop.rollout), which builds the support set the run delivers. Every step is deterministic given the saved state, so a run
resumed from any checkpoint ends exactly as an uninterrupted one.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxsets import sharding
from jaxsets.agent import act, act_in_episode, check_finite, plan_update, ppo_update, sample_plan
from jaxsets.agent.rollout import rollout_action
from jaxsets.agent import value as agent_value
from jaxsets.classifier import train_baseline
from jaxsets.env import environment as env_ops
from jaxsets.loop import state as st
from jaxsets.loop.setup import RunSetup


class Preempted(Exception):
  """The run was asked to stop (SIGTERM/SIGINT) and saved its state."""


@partial(jax.jit, static_argnames=("book", "images_per_prompt"))
def prompt_ids(actions, *, book, images_per_prompt: int):
  """actions int32 [E, 4] -> CLIP ids int32 [E*ips, L], each prompt repeated ips times. Jitted:
  op by op, assembling the ids cost about 50 ms a step (a sixth of a generation)."""
  return book.ids(jnp.repeat(actions, images_per_prompt, axis=0))


def generate_images(s: RunSetup, actions, key):
  """actions int32 [E, 4] -> images uint8 [E, ips, H, W, C] (ips images per prompt)."""
  ips = s.spec.images_per_step
  ids = prompt_ids(actions, book=s.book, images_per_prompt=ips)                 # [E*ips, L]
  images = s.generator.generate_ids(ids, key)
  return images.reshape((actions.shape[0], ips) + images.shape[1:])


def train_step(s: RunSetup, state: st.RunState, history: dict) -> st.RunState:
  """One step of the E training environments; a PPO update every agent.update_every steps
  (bootstrapping from the value of the next state when the episode goes on)."""
  T, U, g = s.steps_per_episode, s.update_every, int(state.step)
  episode, t = divmod(g, T)
  agent, env = state.agent, state.env
  # Whole on every device: the agent's side (actions, plans, trajectory) stays replicated and
  # readable on every host, while the environments may lie split over the mesh.
  obs = sharding.replicate(env_ops.observe(env, spec=s.spec), s.mesh)          # [E, obs]
  keys = jax.random.split(st.stream(state.key, st.ACT, g), s.num_envs)
  chosen, head_mask = state.episode, None
  if s.ppo.episode_decisions:
    if t == 0:  # the episode's plan, from its first observation
      plan, plan_log_prob = sample_plan(agent, obs, st.stream(state.key, st.PLAN, g), cfg=s.ppo)
      chosen = st.EpisodeChoice(plan, obs, plan_log_prob, jnp.zeros((s.num_envs,), jnp.float32))
    plan = chosen.plan
    actions, head_log_prob, value = jax.vmap(
        lambda o, k, d, p: act_in_episode(agent.params, o, k, d, p, network=agent.network))(
            obs, keys, plan.domain, plan.pure)
    # The step's own choices: a kept domain, and c2/c3 of a pure plan, were not made here.
    kept = jnp.stack([plan.domain >= 0, jnp.zeros_like(plan.pure), plan.pure, plan.pure], -1)
    head_mask = 1.0 - kept.astype(jnp.float32)                                  # [E, 4]
    log_prob = jnp.sum(head_log_prob * head_mask, axis=-1)
  else:
    actions, log_prob, value = jax.vmap(
        lambda o, k: act(agent.params, o, k, network=agent.network))(obs, keys)
  images = generate_images(s, actions, st.stream(state.key, st.GENERATE, g))
  env, reward, finite, metrics = env_ops.step(env, actions, images, state.baseline, s.real, s.val,
                                              s.clf_cfg, spec=s.spec, mesh=s.mesh)
  reward = check_finite(reward, finite, where=f"episode {episode}, step {t}")
  chosen = chosen._replace(ret=chosen.ret + reward)
  done = jnp.full((s.num_envs,), t == T - 1)
  traj = jax.tree.map(lambda buf, x: buf.at[t % U].set(x), state.traj,
                      type(state.traj)(obs, actions, jnp.asarray(reward), done, value, log_prob,
                                       head_mask))
  history["step_reward"].append(float(np.mean(reward)))
  history["step_episode"].append(episode)
  history["step_val_accuracy"].append(float(jnp.mean(metrics.accuracy)))
  if (t + 1) % U == 0:  # learn from the last U steps
    last_value = (jnp.zeros((s.num_envs,)) if t == T - 1 else
                  agent_value(agent.params, env_ops.observe(env, spec=s.spec), network=agent.network))
    agent, ppo_metrics = ppo_update(agent, traj, last_value,
                                    st.stream(state.key, st.PPO, g), cfg=s.ppo)
    history["ppo"].append({k: float(v) for k, v in ppo_metrics.items()})
  if t == T - 1 and s.ppo.episode_decisions:  # credit each plan with its episode's return
    agent, plan_metrics = plan_update(agent, chosen.obs, chosen.plan, chosen.log_prob, chosen.ret,
                                      cfg=s.ppo)
    history["episode_plans"].append(
        {"domains": [int(d) for d in np.asarray(chosen.plan.domain)],
         "pure": [bool(p) for p in np.asarray(chosen.plan.pure)],
         "returns": [float(r) for r in np.asarray(chosen.ret)],
         **{k: float(v) for k, v in plan_metrics.items()}})
  if t == T - 1:  # episode over: start the next one (or the roll-out)
    history["episode_reward"].append(float(np.sum(history["step_reward"][-T:])))
    env = st.reset_envs(s, state.baseline, st.stream(state.key, st.RESET, episode + 1), s.num_envs)
  return st.place(s, state._replace(step=state.step + 1, agent=agent, env=env, traj=traj,
                                    episode=chosen))


def rollout_step(s: RunSetup, state: st.RunState, history: dict) -> st.RunState:
  """One step of the roll-out (one environment) that builds the delivered set: herding or
  greedy (config.loop.rollout, agent/rollout.py)."""
  g = int(state.step)
  t = g - s.ppo.episodes * s.steps_per_episode
  env = state.rollout
  obs = env_ops.observe(env, spec=s.spec)                                       # [1, obs]
  counts = env_ops.slot_counts(env, num_classes=s.spec.num_classes)             # [1, 3, n]
  actions, memory = rollout_action(state.agent, obs, counts, t, state.rollout_memory,
                                   rollout=s.config.loop.rollout, cfg=s.ppo)
  images = generate_images(s, actions, st.stream(state.key, st.GENERATE, g))
  env, reward, finite, _ = env_ops.step(env, actions, images, state.baseline, s.real, s.val,
                                        s.clf_cfg, spec=s.spec, mesh=s.mesh)
  reward = check_finite(reward, finite, where=f"roll-out step {t}")
  history["rollout_reward"].append(float(reward[0]))
  rewards = state.rollout_reward.at[t].set(float(reward[0]))
  return st.place(s, state._replace(step=state.step + 1, rollout=env, rollout_memory=memory,
                                    rollout_reward=rewards))


def total_steps(s: RunSetup) -> int:
  return (s.ppo.episodes + 1) * s.steps_per_episode


def new_history() -> dict:
  return {"step_reward": [], "step_episode": [], "step_val_accuracy": [], "episode_reward": [],
          "ppo": [], "rollout_reward": [], "episode_plans": []}


def fresh_state(s: RunSetup, key, *, quiet: bool) -> st.RunState:
  baseline, _ = train_baseline(s.splits.train, s.spec.num_classes, st.stream(key, st.BASELINE),
                               cfg=s.clf_cfg, mesh=s.mesh, progress=not quiet)
  return st.initial_state(s, baseline, key)


def run_steps(s: RunSetup, state: st.RunState, history: dict, *, save, should_stop,
              quiet: bool = False, writer=None) -> st.RunState:
  """Steps until the roll-out is complete. save(state, history) is called every
  loop.checkpoint_every steps and at phase ends; should_stop() is polled after each step."""
  n_train = s.ppo.episodes * s.steps_per_episode
  every = int(s.config.loop.checkpoint_every)
  bar = tqdm(total=total_steps(s), initial=int(state.step), disable=quiet, unit="step",
             desc="jaxsets run", dynamic_ncols=True)
  try:
    while int(state.step) < total_steps(s):
      g = int(state.step)
      if g < n_train:
        state = train_step(s, state, history)
        episode = g // s.steps_per_episode
        bar.set_postfix(episode=f"{episode + 1}/{s.ppo.episodes}",
                        reward=f"{history['step_reward'][-1]:+.4f}",
                        val_acc=f"{history['step_val_accuracy'][-1]:.3f}")
        if writer is not None:
          writer.scalars({"train/reward": history["step_reward"][-1],
                          "train/val_accuracy": history["step_val_accuracy"][-1]}, g)
      else:
        state = rollout_step(s, state, history)
        bar.set_postfix(phase=f"{s.config.loop.rollout} roll-out", reward=f"{history['rollout_reward'][-1]:+.4f}")
        if writer is not None:
          writer.scalar("rollout/reward", history["rollout_reward"][-1], g)
      bar.update(1)
      done = int(state.step)
      phase_end = done == n_train or done == total_steps(s) or done % s.steps_per_episode == 0
      if done % every == 0 or phase_end:
        save(state, history)
      if should_stop():
        if done % every != 0 and not phase_end:
          save(state, history)
        raise Preempted(done)
  finally:
    bar.close()
  return state
