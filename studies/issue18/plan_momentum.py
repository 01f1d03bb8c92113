"""How far the plan heads move during the per-step PPO updates that follow a plan update.

  python studies/issue18/plan_momentum.py

configs/digits.py's agent (10 classes, 4 domains, 4 environments): one plan update from seed 0's
first-episode returns, then 4 per-step PPO updates on random 10-step trajectories whose plan
kept the domain and made the prompts pure (so the plan heads get no per-step gradient). Prints
the KL of the plan heads' distributions moved by each, and the same with Adam's state zeroed
after the plan update (what the shared torso's drift alone does). Before the fix in
agent/ppo.py: apply_gradients(trained=...), the per-step updates moved the plan heads along the
plan update's momentum (studies/issue18/README.md).
"""
import jax
import jax.numpy as jnp
import numpy as np

import jaxsets
from jaxsets import config_loading
from jaxsets.agent import plan_update, ppo_update
from jaxsets.agent.acting import act_for_step
from jaxsets.agent.episode_level import Plan, _plan_log_prob_and_entropy
from jaxsets.agent.policy import ActorCritic
from jaxsets.loop.checks import check_config

CFG = check_config(config_loading.load_config_file("configs/digits.py")).ppo
N, D, E, T = 10, 4, 4, 10
OBS_DIM = jaxsets.observation_size(N, CFG.observation)
OBS0 = jax.random.uniform(jax.random.key(1), (E, OBS_DIM))


def plan_probs(agent):
  domain, blend = agent.apply_fn({"params": agent.params}, OBS0[:1], method=ActorCritic.plan_logits)
  return np.asarray(jax.nn.softmax(domain))[0], np.asarray(jax.nn.softmax(blend))[0]


def kl(p, q):
  return float(np.sum(p * (np.log(p) - np.log(q))))


def step_trajectory(agent, key):
  k_obs, k_act, k_reward = jax.random.split(key, 3)
  obs = jax.random.uniform(k_obs, (T, E, OBS_DIM))
  plan = Plan(jnp.full((E,), 3, jnp.int32), jnp.ones((E,), bool))
  step = jax.vmap(lambda o, k: act_for_step(agent.params, o, jax.random.split(k, E), plan,
                                            network=agent.network))(obs, jax.random.split(k_act, T))
  reward = 0.007 * jax.random.normal(k_reward, (T, E))  # the default's per-step reward noise
  return jaxsets.Transition(obs, step.action, reward, jnp.zeros((T, E), bool), step.value,
                            step.log_prob, head_mask=step.head_mask)


def main(zero_adam_after_plan_update: bool) -> None:
  agent = jaxsets.init_agent(jax.random.key(0), OBS_DIM, D, N, CFG)
  plans = Plan(jnp.array([2, 1, 0, 0]), jnp.array([True, True, False, False]))
  log_prob = _plan_log_prob_and_entropy(agent, agent.params, OBS0, plans)[0]
  before = plan_probs(agent)
  agent, _ = plan_update(agent, OBS0, plans, log_prob, jnp.array([0.012, 0.0227, 0.017, 0.0218]),
                         cfg=CFG)
  after_plan = plan_probs(agent)
  if zero_adam_after_plan_update:
    agent = agent.replace(opt_state=jax.tree.map(jnp.zeros_like, agent.opt_state))
  for i in range(4):
    agent, _ = ppo_update(agent, step_trajectory(agent, jax.random.key(100 + i)), jnp.zeros((E,)),
                          jax.random.key(200 + i), cfg=CFG)
  after_steps = plan_probs(agent)
  print(f"Adam zeroed after the plan update: {zero_adam_after_plan_update}")
  print(f"  plan update: KL domain {kl(after_plan[0], before[0]):.4f}, "
        f"blend {kl(after_plan[1], before[1]):.4f}")
  print(f"  4 per-step updates after it: KL domain {kl(after_steps[0], after_plan[0]):.4f}, "
        f"blend {kl(after_steps[1], after_plan[1]):.4f}")
  print(f"  p(domain): {np.round(before[0], 3)} -> {np.round(after_plan[0], 3)} -> "
        f"{np.round(after_steps[0], 3)}")


if __name__ == "__main__":
  main(False)
  main(True)
