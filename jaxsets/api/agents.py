"""The prompt agent and the reward for the public API, as pure jittable functions.

Shapes: obs float32 [..., obs_dim]; action int32 [..., 4] = (domain, c1, c2, c3); a trajectory
`Transition` holds leaves [T, E, ...] (T steps of E environments). `agent` is an `AgentState`
(a pytree: params + Adam state + step; its network is static), so it passes through jax.jit.
`load_agent` gives back the agent a run trained, from its workdir.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax

from jaxsets.agent import observation as _observation
from jaxsets.agent import policy as _policy
from jaxsets.agent import ppo as _ppo
# Functions, not the module: jaxsets.agent re-exports a function named `reward` over its module.
from jaxsets.agent.reward import check_finite as _check_finite
from jaxsets.agent.reward import register_entropy as _register_entropy
from jaxsets.agent.reward import reward as _reward
from jaxsets.agent.config import ObservationConfig, PPOConfig


@dataclasses.dataclass(frozen=True)
class TrainedAgent:
  """A run's agent as `load_agent` returns it, with what is needed to use it.

  agent: `AgentState` (params, Adam state, step = PPO updates done) of the newest checkpoint;
  observation_cfg: the `ObservationConfig` it was trained with (`build_support_set`'s
  observation_cfg); ppo_cfg: its `PPOConfig` (`ppo_update`'s cfg, to train it further);
  domains and template: the run's prompt book (`make_prompt_book(generator, class_names,
  domains=..., template=...)`; class_names: the dataset's, or config["prompts"]["class_names"]
  when set); step: the checkpoint's run step; config: the run's config.json (a dict).
  """
  agent: Any
  observation_cfg: ObservationConfig
  ppo_cfg: PPOConfig
  domains: tuple[str, ...]
  template: str
  step: int
  config: dict


def load_agent(workdir: str) -> TrainedAgent:
  """The trained agent of a `jaxsets run` workdir, from its newest checkpoint (as brax's
  `load_policy`). Reads config.json for the network's shape and only the agent's arrays from
  the checkpoint: no dataset or generator is loaded, and nothing in `workdir` is changed (a
  run may still be going there). A UserError says what is wrong: not a run's workdir, no
  checkpoint yet, or a config.json from an incompatible version of jaxsets.

  Example:
    >>> trained = jaxsets.load_agent("runs/digits")                       # doctest: +SKIP
    >>> book = jaxsets.make_prompt_book(generator, splits.class_names,    # doctest: +SKIP
    ...                                 domains=trained.domains, template=trained.template)
    >>> support = jaxsets.build_support_set(                              # doctest: +SKIP
    ...     trained.agent, generator, book, baseline, real, val, jax.random.key(3), budget=40,
    ...     observation_cfg=trained.observation_cfg)
  """
  from jaxsets.loop.saved_run import read_agent

  step, agent, ppo, config = read_agent(str(workdir))
  return TrainedAgent(agent=agent, observation_cfg=ppo.observation, ppo_cfg=ppo,
                      domains=tuple(config["prompts"]["domains"]),
                      template=str(config["prompts"]["template"]), step=int(step), config=config)


def observation_size(num_classes: int, cfg: ObservationConfig | None = None) -> int:
  """obs_dim of `make_observation` for n classes: 1 + n + 1 (+ n per optional part).

  Example:
    >>> import jaxsets
    >>> jaxsets.observation_size(10)   # accuracy, 10 per-class accuracies, budget used, 10 counts
    22
  """
  return _observation.observation_size(int(num_classes), cfg or ObservationConfig())


def make_observation(metrics, num_synthetic, class_counts, *, budget: int,
                     cfg: ObservationConfig | None = None) -> jax.Array:
  """The agent's state vector float32 [..., obs_dim] from validation `EvalMetrics`
  (accuracy [...], per_class_accuracy [..., n]), num_synthetic int [...] (support images so far)
  and class_counts int [..., n] (of them per class); budget: the final support-set size.
  Layout: [accuracy, per-class accuracy (n), num_synthetic / budget, counts / (budget / n) (n)].

  Example:
    >>> import jax.numpy as jnp, jaxsets
    >>> m = jaxsets.EvalMetrics(jnp.float32(0.5), jnp.full((3,), 0.5), jnp.float32(1.0),
    ...                         jnp.zeros((3, 3), jnp.int32))
    >>> jaxsets.make_observation(m, 10, jnp.array([10, 0, 0]), budget=40).tolist()
    [0.5, 0.5, 0.5, 0.5, 0.25, 0.75, 0.0, 0.0]
  """
  return _observation.make_observation(metrics, num_synthetic, class_counts, budget=budget,
                                       cfg=cfg or ObservationConfig())


def init_agent(key: jax.Array, obs_dim: int, num_domains: int, num_classes: int,
               cfg: PPOConfig | None = None):
  """A fresh `AgentState`: actor-critic MLP (cfg.hidden_sizes, tanh), one categorical head for
  the domain and one per class slot (|D| + 3n logits), Adam with gradient clipping.

  Example:
    >>> import jax, jaxsets
    >>> agent = jaxsets.init_agent(jax.random.key(0), obs_dim=22, num_domains=4, num_classes=10)
    >>> int(agent.step)
    0
  """
  return _policy.init_agent(key, int(obs_dim), int(num_domains), int(num_classes),
                            cfg or PPOConfig())


def act(agent, obs: jax.Array, key: jax.Array):
  """Samples actions: obs float32 [..., obs_dim] -> (action int32 [..., 4], log_prob float32
  [...], value float32 [...]). Jitted; one key serves the whole batch.

  Example:
    >>> import jax, jax.numpy as jnp, jaxsets
    >>> agent = jaxsets.init_agent(jax.random.key(0), obs_dim=22, num_domains=4, num_classes=10)
    >>> action, log_prob, value = jaxsets.act(agent, jnp.zeros((5, 22)), jax.random.key(1))
    >>> action.shape, action.dtype, log_prob.shape
    ((5, 4), dtype('int32'), (5,))
  """
  return _policy.act(agent.params, obs, key, network=agent.network)


def greedy_action(agent, obs: jax.Array) -> jax.Array:
  """The deterministic action (head-by-head argmax): obs [..., obs_dim] -> int32 [..., 4].

  Example:
    >>> import jax, jax.numpy as jnp, jaxsets
    >>> agent = jaxsets.init_agent(jax.random.key(0), obs_dim=22, num_domains=4, num_classes=10)
    >>> jaxsets.greedy_action(agent, jnp.zeros((22,))).shape
    (4,)
  """
  return _policy.greedy_action(agent.params, obs, network=agent.network)


def agent_value(agent, obs: jax.Array) -> jax.Array:
  """The critic V(obs): [..., obs_dim] -> float32 [...] (e.g. `last_value` for `ppo_update`
  when a trajectory stops mid-episode).

  Example:
    >>> import jax, jax.numpy as jnp, jaxsets
    >>> agent = jaxsets.init_agent(jax.random.key(0), obs_dim=22, num_domains=4, num_classes=10)
    >>> jaxsets.agent_value(agent, jnp.zeros((3, 22))).shape
    (3,)
  """
  return _policy.value(agent.params, obs, network=agent.network)


def ppo_update(agent, traj, last_value: jax.Array, key: jax.Array, *, cfg: PPOConfig | None = None):
  """One PPO update (GAE, cfg.epochs x cfg.minibatches clipped-loss steps, all `lax.scan` in
  one jitted program; cfg's structure is static, its numbers (gamma, gae_lambda, clip_eps,
  learning_rate, ...) traced: a new value does not recompile).

  Args:
    agent: `AgentState`; traj: `Transition` with leaves [T, E, ...] (obs float32, action int32
      [T, E, 4], reward/value/log_prob float32 [T, E], done bool [T, E]: the episode ended with
      that step); last_value: float32 [E], V of the state after the last step (ignored where
      done); key: PRNG key for the minibatch shuffles.
  Returns: (agent, metrics: dict of float32 scalars: loss, policy_loss, value_loss, entropy,
    approx_kl, clip_fraction, grad_norm, explained_variance, mean_advantage, mean_return, ...).
  A second call with new data of the same shapes does not recompile.

  Example:
    >>> import jax, jax.numpy as jnp, jaxsets
    >>> agent = jaxsets.init_agent(jax.random.key(0), obs_dim=22, num_domains=4, num_classes=10)
    >>> T, E = 4, 2
    >>> obs = jnp.zeros((T, E, 22))
    >>> action, log_prob, value = jaxsets.act(agent, obs, jax.random.key(1))
    >>> traj = jaxsets.Transition(obs, action, jnp.ones((T, E)), jnp.zeros((T, E), bool),
    ...                           value, log_prob)
    >>> agent, metrics = jaxsets.ppo_update(agent, traj, jnp.zeros((E,)), jax.random.key(2))
    >>> int(agent.step)     # 4 epochs x 4 minibatches
    16
  """
  return _ppo.ppo_update(agent, traj, last_value, key, cfg=cfg or PPOConfig())


def gae(reward, value, done, last_value, *, gamma: float = 0.99, gae_lambda: float = 0.95):
  """Generalised advantage estimation (a reverse `lax.scan` over T): reward, value, done [T, ...],
  last_value [...] -> (advantages, returns) float32 [T, ...], returns = advantages + value.

  Example:
    >>> import jax.numpy as jnp, jaxsets
    >>> adv, ret = jaxsets.gae(jnp.array([1.0, 1.0]), jnp.zeros(2), jnp.array([False, True]),
    ...                        jnp.float32(0.0), gamma=0.5, gae_lambda=1.0)
    >>> adv.tolist()        # 1 + 0.5 * 1, then 1 (the episode ends)
    [1.5, 1.0]
  """
  return _ppo.gae(reward, value, done, last_value, gamma, gae_lambda)


def reward(before, after, *, w_acc: float = 1.0, w_ent: float = 1.0,
           entropy: str = "mean_predictive"):
  """r = w_acc * (acc_after - acc_before) - w_ent * (H_after - H_before), from two validation
  `EvalMetrics` (leading dims allowed). entropy: "mean_predictive" (mean predictive entropy,
  nats), "per_class_accuracy_entropy" (the authors' code) or a name from `register_entropy`.
  Returns (r float32 [...], finite bool [...]); jittable, so it cannot raise: call
  `check_finite(r, finite)` on the host.

  Example:
    >>> import jax.numpy as jnp, jaxsets
    >>> m = lambda acc, ent: jaxsets.EvalMetrics(jnp.float32(acc), jnp.zeros(3), jnp.float32(ent),
    ...                                          jnp.zeros((3, 3), jnp.int32))
    >>> r, finite = jaxsets.reward(m(0.80, 0.50), m(0.85, 0.40))
    >>> round(float(r), 4), bool(finite)      # 0.05 - (-0.10)
    (0.15, True)
  """
  return _reward(before, after, w_acc=w_acc, w_ent=w_ent, entropy=entropy)


def check_finite(r, finite):
  """Host side: the reward as numpy, or `NonFiniteRewardError` (the classifier diverged).

  Example:
    >>> import jax.numpy as jnp, jaxsets
    >>> jaxsets.check_finite(jnp.array([0.25]), jnp.array([True])).tolist()
    [0.25]
  """
  return _check_finite(r, finite)


def register_entropy(name: str):
  """Decorator: makes `fn(metrics) -> float32 [...]` usable as `reward(..., entropy=name)` (and as
  `config.reward.entropy = name` in a run).

  Example:
    >>> import jaxsets
    >>> @jaxsets.register_entropy("worst_class_error")
    ... def worst_class_error(metrics):
    ...   return 1.0 - metrics.per_class_accuracy.min(axis=-1)
  """
  return _register_entropy(name)
