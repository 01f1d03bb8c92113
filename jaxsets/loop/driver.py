"""The one thin loop of a run: step, learn, log, checkpoint.

Steps 0 .. episodes*T-1 train the agent on E environments (PPO after each episode of T steps);
steps episodes*T .. episodes*T+T-1 are the roll-out of the trained agent (herding or greedy,
config.loop.rollout), which builds the support set the run delivers. Each step returns what it
logged and `record` appends it to the history. Every step is deterministic given the saved
state, so a run resumed from any checkpoint ends exactly as an uninterrupted one.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxsets import sharding
from jaxsets.agent import plan_update, ppo_update, sample_plan, step_plan
from jaxsets.agent import value as agent_value
from jaxsets.agent.acting import act_for_step
from jaxsets.agent.ppo import Transition
from jaxsets.classifier import train_baseline
from jaxsets.env import environment as env_ops
from jaxsets.env import rollout as env_rollout
from jaxsets.loop import state as st
from jaxsets.loop.setup import RunSetup


class Preempted(Exception):
  """The run was asked to stop (SIGTERM/SIGINT) and saved its state."""


def train_step(s: RunSetup, state: st.RunState) -> tuple[st.RunState, dict]:
  """One step of the E training environments; a PPO update every agent.update_every steps and
  the plans' update at an episode's end. Returns the state after it and what it logged (history
  keys -> this step's entry; "episode_over" when the step ended an episode)."""
  T, U, g = s.steps_per_episode, s.update_every, int(state.step)
  episode, t = divmod(g, T)
  # Whole on every device: the agent's side (actions, plans, trajectory) stays replicated and
  # readable on every host, while the environments may lie split over the mesh.
  obs = sharding.replicate(env_ops.observe(state.env, spec=s.spec), s.mesh)    # [E, obs]
  chosen = state.episode
  if s.ppo.episode_decisions and t == 0:  # the episode's plan, from its first observation
    plan, plan_log_prob = sample_plan(state.agent, obs, st.stream(state.key, st.PLAN, g))
    chosen = st.EpisodeChoice(plan, obs, plan_log_prob, jnp.zeros((s.num_envs,), jnp.float32))
  keys = jax.random.split(st.stream(state.key, st.ACT, g), s.num_envs)
  network = state.agent.network
  step = act_for_step(state.agent.params, obs, keys, step_plan(chosen.plan, t, network.num_domains),
                      network=network)
  env, reward, metrics = env_rollout.env_step(st.world(s, state.baseline), state.env, step.action,
                                              st.stream(state.key, st.GENERATE, g),
                                              where=f"episode {episode}, step {t}")
  chosen = chosen._replace(ret=chosen.ret + reward)
  done = jnp.full((s.num_envs,), t == T - 1)
  traj = st.write_transition(state.traj, t % U, Transition(
      obs, step.action, jnp.asarray(reward), done, step.value, step.log_prob, step.head_mask))
  log = {"step_reward": float(np.mean(reward)), "step_episode": episode,
         "step_val_accuracy": float(jnp.mean(metrics.accuracy))}
  agent = state.agent
  if (t + 1) % U == 0:  # learn from the last U steps
    last_value = (jnp.zeros((s.num_envs,)) if t == T - 1 else
                  agent_value(agent.params, env_ops.observe(env, spec=s.spec),
                              network=agent.network))
    agent, ppo_metrics = ppo_update(agent, traj, last_value,
                                    st.stream(state.key, st.PPO, g), cfg=s.ppo)
    log["ppo"] = {k: float(v) for k, v in ppo_metrics.items()}
  if t == T - 1:  # episode over: credit each plan with its return, start the next episode
    if s.ppo.episode_decisions:
      agent, log["episode_plans"] = _learn_plans(s, agent, chosen)
    log["episode_over"] = True
    env = st.reset_envs(s, state.baseline, st.stream(state.key, st.RESET, episode + 1), s.num_envs)
  return st.place(s, state._replace(step=state.step + 1, agent=agent, env=env, traj=traj,
                                    episode=chosen)), log


def _learn_plans(s: RunSetup, agent, chosen: st.EpisodeChoice):
  """The plans' update from a finished episode -> (agent, its log entry)."""
  agent, metrics = plan_update(agent, chosen.obs, chosen.plan, chosen.log_prob, chosen.ret,
                               cfg=s.ppo)
  return agent, {"domains": [int(d) for d in np.asarray(chosen.plan.domain)],
                 "pure": [bool(p) for p in np.asarray(chosen.plan.pure)],
                 "returns": [float(r) for r in np.asarray(chosen.ret)],
                 **{k: float(v) for k, v in metrics.items()}}


def rollout_step(s: RunSetup, state: st.RunState) -> tuple[st.RunState, dict]:
  """One step of the roll-out (one environment) that builds the delivered set: herding or
  greedy (config.loop.rollout), the step `jaxsets.build_support_set` takes (env/rollout.py)."""
  g = int(state.step)
  t = g - s.loop.episodes * s.steps_per_episode
  env, memory, reward = env_rollout.rollout_step(
      st.world(s, state.baseline), state.agent, state.rollout, state.rollout_memory, t,
      st.stream(state.key, st.GENERATE, g), rollout=s.loop.rollout)
  rewards = state.rollout_reward.at[t].set(float(reward[0]))
  return st.place(s, state._replace(step=state.step + 1, rollout=env, rollout_memory=memory,
                                    rollout_reward=rewards)), {"rollout_reward": float(reward[0])}


def record(history: dict, log: dict, *, steps_per_episode: int) -> None:
  """Appends a step's log to the history: the one place the history grows."""
  for name, entry in log.items():
    if name != "episode_over":
      history[name].append(entry)
  if log.get("episode_over"):
    history["episode_reward"].append(float(np.sum(history["step_reward"][-steps_per_episode:])))


def total_steps(s: RunSetup) -> int:
  return (s.loop.episodes + 1) * s.steps_per_episode


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
  n_train = s.loop.episodes * s.steps_per_episode
  every = s.loop.checkpoint_every
  bar = tqdm(total=total_steps(s), initial=int(state.step), disable=quiet, unit="step",
             desc="jaxsets run", dynamic_ncols=True)
  try:
    while int(state.step) < total_steps(s):
      g = int(state.step)
      if g < n_train:
        state, log = train_step(s, state)
        record(history, log, steps_per_episode=s.steps_per_episode)
        episode = g // s.steps_per_episode
        bar.set_postfix(episode=f"{episode + 1}/{s.loop.episodes}",
                        reward=f"{history['step_reward'][-1]:+.4f}",
                        val_acc=f"{history['step_val_accuracy'][-1]:.3f}")
        if writer is not None:
          writer.scalars({"train/reward": history["step_reward"][-1],
                          "train/val_accuracy": history["step_val_accuracy"][-1]}, g)
      else:
        state, log = rollout_step(s, state)
        record(history, log, steps_per_episode=s.steps_per_episode)
        bar.set_postfix(phase=f"{s.loop.rollout} roll-out",
                        reward=f"{history['rollout_reward'][-1]:+.4f}")
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
