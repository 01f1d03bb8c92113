"""Every episode's plans, returns, KL and entropy for each seed of a `jaxsets compare` workdir,
read from the history in each seed's newest checkpoint (nothing is written there).

  python studies/issue18/episode_plans.py WORKDIR OUT.json

Prints one line per seed: per episode, the 4 environments' domain plans (D = every domain in
turn, where offered), whether each was pure, and the plan heads' entropy and KL after the update.
"""
import json
import os
import sys

import jax
import jax.numpy as jnp

from jaxsets.checkpoint.manager import read_latest


def episode_plans(seed_dir: str) -> list[dict]:
  """The history's episode_plans of the newest checkpoint that reads back (only its step leaf
  is restored)."""
  found = read_latest(seed_dir, {"step": jax.ShapeDtypeStruct((), jnp.int32)})
  if found is None:
    raise SystemExit(f"{seed_dir} has no checkpoint")
  return found[2]["episode_plans"]


def main(workdir: str, out: str) -> None:
  seeds = sorted((d for d in os.listdir(workdir) if d.startswith("seed_")),
                 key=lambda d: int(d.split("_")[1]))
  plans = {seed: episode_plans(os.path.join(workdir, seed)) for seed in seeds}
  with open(out, "w") as f:
    json.dump(plans, f)
  for seed, episodes in plans.items():
    print(seed, [(e["domains"], e["pure"], round(e["entropy"], 2), round(e["approx_kl"], 3))
                 for e in episodes])


if __name__ == "__main__":
  main(*sys.argv[1:3])
