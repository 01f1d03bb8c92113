"""The PPO prompt agent: factorised (domain, c1, c2, c3) policy, PPO learner, reward, state.

Public API (pure functions of arrays; the loop in jaxsets/loop drives them):
  PPOConfig.from_config(config.agent), RewardConfig.from_config(config.reward)
  init_agent(key, obs_dim, num_domains, num_classes, cfg) -> AgentState
  act(params, obs, key, *, network) -> (action int32 [..., 4], log_prob [...], value [...])
  greedy_action(params, obs, domain=None, *, network) -> action int32 [..., 4]
  sample_plan, greedy_plan, plan_update, act_in_episode: decisions made once per episode
    (episode_level.py); rollout_action: a step of the roll-out that builds the delivered set
    (rollout.py: herd_plan and herding_action, or greedy)
  value(params, obs, *, network) -> float32 [...]
  ppo_update(state, traj, last_value, key, *, cfg) -> (state, metrics); cfg's numbers traced
  reward(before, after, *, w_acc, w_ent, entropy) -> (r, finite); check_finite(r, finite)
  make_observation(metrics, num_synthetic, class_counts, *, budget, cfg); observation_size(n, cfg)
"""
# Light modules are bound now; the networks and the learner (flax, optax, distrax and through it
# TensorFlow Probability) on first use, so that checking a config does not import them.
# `reward` is both a module and a function here: the function is bound eagerly (see jaxsets.lazy).
from jaxsets import lazy as _lazy
from jaxsets.agent.config import ROLLOUTS, ObservationConfig, PPOConfig
from jaxsets.agent.observation import make_observation, observation_size
from jaxsets.agent.reward import (ENTROPY_FNS, NonFiniteRewardError, RewardConfig, check_finite,
                                  register_entropy, reward, reward_from_config)

_MODULES = {
    "jaxsets.agent.episode_level": ("Plan", "PlanHerd", "greedy_plan", "group_advantage",
                                    "herd_plan", "no_plan", "plan_update", "sample_plan",
                                    "start_plan_herd", "step_plan"),
    "jaxsets.agent.policy": ("ActorCritic", "AgentState", "act", "act_in_episode",
                             "evaluate_actions", "greedy_action", "herding_action", "init_agent",
                             "make_network", "value"),
    "jaxsets.agent.rollout": ("RolloutMemory", "empty_memory", "rollout_action"),
    "jaxsets.agent.ppo": ("Minibatch", "Transition", "gae", "ppo_loss", "ppo_update"),
}
__getattr__, __dir__ = _lazy.lazy_exports(
    __name__, {name: (module, name) for module, names in _MODULES.items() for name in names})
