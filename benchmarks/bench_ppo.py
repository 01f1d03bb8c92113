"""2. ppo_update: one PPO update of the prompt agent, jaxsets vs stable-baselines3.

The loop's sizes (configs/digits.py): update_every steps x num_envs environments of transitions,
epochs x minibatches gradient steps, the 64-64 actor-critic, |D| = 4 domains and n = 10 classes.
jaxsets: `jaxsets.agent.ppo_update` (GAE, every epoch and minibatch in one jitted program).
SB3: GAE on its rollout buffer + `PPO.train()`; refilling the buffer is not timed.
"""
from __future__ import annotations

from common import entry, measure_sides, missing_peers, no_sync, skipped_peer


def random_traj(key, steps: int, envs: int, obs_dim: int, num_domains: int, num_classes: int):
  import jax
  import jax.numpy as jnp

  from jaxsets.agent import Transition
  k = jax.random.split(key, 6)
  high = jnp.asarray([num_domains, num_classes, num_classes, num_classes])
  return Transition(
      obs=jax.random.uniform(k[0], (steps, envs, obs_dim)),
      action=(jax.random.uniform(k[1], (steps, envs, 4)) * high).astype(jnp.int32),
      reward=jax.random.normal(k[2], (steps, envs)),
      done=jnp.zeros((steps, envs), bool).at[-1].set(True),
      value=jax.random.normal(k[3], (steps, envs)),
      log_prob=-5 * jax.random.uniform(k[4], (steps, envs)))


def jaxsets_update(cfg, obs_dim: int, num_domains: int, num_classes: int, steps: int, envs: int):
  """(agent, a fn(i) running one update on trajectory batch i)."""
  import jax
  import jax.numpy as jnp

  from jaxsets.agent import init_agent, ppo_update
  agent = init_agent(jax.random.key(0), obs_dim, num_domains, num_classes, cfg)
  trajs = [random_traj(jax.random.key(i), steps, envs, obs_dim, num_domains, num_classes)
           for i in range(16)]
  last = jnp.zeros((envs,))
  fn = lambda i: ppo_update(agent, trajs[i % 16], last, jax.random.key(i), cfg=cfg)
  return agent, fn


def run(ctx) -> list[dict]:
  from jaxsets.agent import PPOConfig, observation_size

  config = ctx.config
  cfg = PPOConfig.from_config(config.agent)
  n, d = 10, len(config.prompts.domains)
  steps = int(config.agent.update_every) or int(config.loop.budget) // int(config.loop.images_per_step)
  envs = int(config.agent.num_envs)
  obs_dim = observation_size(n, cfg.observation)
  _, ours = jaxsets_update(cfg, obs_dim, d, n, steps, envs)
  sides = {"jaxsets": (ours, None)}
  missing = missing_peers()
  if not missing:
    from peers.sb3_ppo import SB3PPOUpdate
    from peers.torch_settings import pick_best
    peer = SB3PPOUpdate(obs_dim, d, n, cfg, n_steps=steps, n_envs=envs)
    settings_trial = pick_best(lambda threads, fmt: None, lambda i: (peer.fill(i), peer.update()),
                               formats=("contiguous",))
    sides["sb3"] = (lambda i: peer.update(), no_sync, peer.fill)
  t = measure_sides(sides, 3 * ctx.repeats)
  rows = steps * envs
  settings = {"rows": rows, "epochs": cfg.epochs, "minibatches": cfg.minibatches,
              "minibatch_rows": rows // cfg.minibatches, "hidden_sizes": list(cfg.hidden_sizes),
              "obs_dim": obs_dim, "action_heads": [d, n, n, n]}
  theirs = (skipped_peer("stable-baselines3 PPO", missing) if missing else
            {"name": peer.name, **t["sb3"], "settings": settings_trial})
  return [entry("ppo_update", t["jaxsets"], theirs, settings=settings)]
