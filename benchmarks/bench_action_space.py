"""5. action_space_scaling: the agent's memory and PPO update time at n = 10, 100, 200, 1,000
classes, jaxsets' factorised policy (|D| + 3n logits) vs a flat |D|·n³ categorical
(flat_policy.py) updated by the same `ppo_update`, at the loop's sizes otherwise.

Memory: parameter and Adam-state bytes, plus XLA's temporary buffers for the update
(`compile().memory_analysis()`). The flat policy is only built where its estimated footprint
(parameters, gradients, two Adam moments and the update's temporaries, ~6x the parameters)
fits in a share of this machine's free memory; elsewhere the entry says it does not fit.
"""
from __future__ import annotations

import os

from common import entry, measure, measure_sides

CLASSES = (10, 100, 200, 1000)
_BYTES = 4  # float32


def available_bytes() -> int:
  with open("/proc/meminfo") as f:
    for line in f:
      if line.startswith("MemAvailable"):
        return int(line.split()[1]) * 1024
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def tree_bytes(tree) -> int:
  import jax
  return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree)))


def footprint(state, fn) -> dict:
  """Bytes of parameters, optimiser state and the compiled update's temporaries."""
  import jax

  from jaxsets.agent.ppo import ppo_update
  out = {"params": int(sum(x.size for x in jax.tree.leaves(state.params))),
         "param_bytes": tree_bytes(state.params), "opt_state_bytes": tree_bytes(state.opt_state)}
  try:
    mem = ppo_update.lower(*fn.args, **fn.kwargs).compile().memory_analysis()
    out["update_temp_bytes"] = int(mem.temp_size_in_bytes)
  except Exception as e:  # memory_analysis is optional per backend
    out["update_temp_bytes"] = None
    out["memory_analysis_error"] = repr(e)[:200]
  return out


class _Update:
  """fn(i): one ppo_update on trajectory i % 4; args/kwargs for lowering."""

  def __init__(self, state, trajs, last, cfg):
    import jax
    self.state, self.trajs, self.last, self.cfg = state, trajs, last, cfg
    self.args, self.kwargs = (state, trajs[0], last, jax.random.key(0)), {"cfg": cfg}

  def __call__(self, i):
    import jax

    from jaxsets.agent.ppo import ppo_update
    return ppo_update(self.state, self.trajs[i % len(self.trajs)], self.last, jax.random.key(i),
                      cfg=self.cfg)


def run(ctx) -> list[dict]:
  import jax
  import jax.numpy as jnp

  from bench_ppo import random_traj
  from flat_policy import init_flat_agent, num_params
  from jaxsets.agent import PPOConfig, init_agent, observation_size

  config = ctx.config
  cfg = PPOConfig.from_config(config.agent)
  d = len(config.prompts.domains)
  steps = int(config.agent.update_every) or int(config.loop.budget) // int(config.loop.images_per_step)
  envs = int(config.agent.num_envs)
  # The flat policy runs only where it fits comfortably beside the other work on this machine
  # (--quick: a smaller share, so only n = 10 runs).
  budget = available_bytes() * (0.1 if ctx.quick else 0.35)
  entries, base = [], None
  # --tiny: one n where the flat policy runs and one where it cannot, not four compiles.
  for n in CLASSES[:2] if ctx.tiny else CLASSES:
    obs_dim = observation_size(n, cfg.observation)
    trajs = [random_traj(jax.random.key(i), steps, envs, obs_dim, d, n) for i in range(4)]
    last = jnp.zeros((envs,))
    fact = init_agent(jax.random.key(0), obs_dim, d, n, cfg)
    ours = _Update(fact, trajs, last, cfg)
    flat_params = num_params(obs_dim, d * n ** 3, cfg.hidden_sizes)
    estimate = 6 * flat_params * _BYTES
    peer = {"name": f"flat categorical over |D|*n^3 = {d * n ** 3:,} prompts (same ppo_update)",
            "params": flat_params, "estimated_bytes": estimate,
            "fits": estimate <= budget, "memory_budget_bytes": int(budget)}
    sides = {"jaxsets": (ours, None)}
    if peer["fits"]:
      flat = _Update(init_flat_agent(jax.random.key(0), obs_dim, d, n, cfg), trajs, last, cfg)
      sides["flat"] = (flat, None)
    # A flat update that fits but holds ~10^8 parameters takes a minute on 2 cores: 2 repeats.
    repeats = 3 * ctx.repeats if n == 10 else (2 if len(sides) > 1 else ctx.repeats)
    t = measure_sides(sides, repeats)
    # The growth in n is read from the factorised update timed on its own: interleaved with a
    # flat update of 10^8 parameters (which evicts every cache) it measured up to 5x slower.
    alone = measure(ours, ctx.repeats)["steady_s"]
    mine = {**t["jaxsets"], **footprint(fact, ours), "logits": d + 3 * n, "alone_steady_s": alone}
    base = base or mine
    mine["time_vs_n10"] = mine["steady_s"] / base["steady_s"]
    mine["alone_time_vs_n10"] = alone / base["alone_steady_s"]
    mine["params_vs_n10"] = mine["params"] / base["params"]
    if peer["fits"]:
      peer.update(t["flat"], **footprint(flat.state, flat))
      entries.append(entry(f"action_space_scaling/n={n}", mine, peer, classes=n))
      del flat, sides
    else:
      entries.append({"name": f"action_space_scaling/n={n}", "jaxsets": mine, "peer": peer,
                      "speedup": None, "classes": n,
                      "note": "the flat policy does not fit in memory here: not run"})
  return entries
