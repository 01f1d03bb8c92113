"""Named random streams of a run: fold_in(root, STREAM), then fold_in(.., step or episode).

One place for them, so the `jaxsets baseline` command and the run train the same baseline.
"""
import jax

BASELINE, AGENT_INIT, ACT, GENERATE, PPO, RESET, ROLLOUT, RANDOM_ARM, EVAL, PLAN, BALANCED_ARM = (
    range(1, 12))


def stream(key, name: int, index: int = 0):
  return jax.random.fold_in(jax.random.fold_in(key, name), index)
