"""The evaluation protocol: three arms, same real data, same classifier recipe, same number of
synthetic images, scored on the test split that no decision of the run has seen.

  baseline  real data only (fine-tuned with the same recipe on an empty support set)
  random    uniformly random (domain, c1, c2, c3) prompts
  rl        the roll-out of the trained agent (herding or greedy, config.loop.rollout)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsets import sharding
from jaxsets.classifier import SupportBatch, evaluate, finetune
from jaxsets.data.device import put_on_devices
from jaxsets.loop import state as st
from jaxsets.loop.driver import generate_images
from jaxsets.loop.setup import RunSetup

ARMS = ("baseline", "random", "rl")


def random_actions(s: RunSetup, key) -> jax.Array:
  """int32 [T, 4]: a uniformly random domain and three uniformly random classes per step."""
  T = s.steps_per_episode
  k_d, k_c = jax.random.split(key)
  domains = jax.random.randint(k_d, (T, 1), 0, s.book.num_domains)
  classes = jax.random.randint(k_c, (T, 3), 0, s.book.num_classes)
  return jnp.concatenate([domains, classes], axis=1).astype(jnp.int32)


def random_support(s: RunSetup, key) -> tuple[SupportBatch, np.ndarray]:
  """The random arm's support set (same size as the RL one) and its actions [T, 4]."""
  actions = random_actions(s, st.stream(key, st.RANDOM_ARM, 0))
  images = generate_images(s, actions, st.stream(key, st.RANDOM_ARM, 1))             # [T, ips, ...]
  ips = s.spec.images_per_step
  flat = images.reshape((-1,) + images.shape[2:])
  labels = jnp.repeat(actions[:, 1], ips)
  return SupportBatch(flat, labels, jnp.ones(labels.shape, bool)), np.asarray(actions)


def evaluate_arms(s: RunSetup, state: st.RunState, supports: dict) -> dict:
  """Test metrics per arm, each the mean over loop.eval_repeats fine-tunes whose minibatch
  keys are shared across arms (so the arms differ only in their support sets)."""
  test = put_on_devices(s.splits.test, s.mesh)
  repeats = int(s.config.loop.eval_repeats)
  # Each fine-tune's minibatch split over the devices (added in device order, the same bits on
  # any layout of them over processes), the test set scored where it lies.
  mesh = s.mesh if s.mesh.size > 1 else None
  out = {}
  for arm in ARMS:
    # One placement for every arm's set (some are made outside jit, some come out of it):
    # otherwise each arm compiles its own fine-tune (~5 s each for a small CNN on CPU).
    support = sharding.replicate(supports[arm], s.mesh)
    accs, per_class, entropy = [], [], []
    for r in range(repeats):
      clf, _ = finetune(state.baseline, s.real, support, st.stream(state.key, st.EVAL, r),
                        cfg=s.clf_cfg, mesh=mesh)
      m = evaluate(clf, test.images, test.labels, test.mask, chunk=s.clf_cfg.eval_chunk)
      accs.append(float(m.accuracy))
      per_class.append(np.asarray(m.per_class_accuracy))
      entropy.append(float(m.mean_entropy))
    out[arm] = {"test_accuracy": float(np.mean(accs)), "test_accuracy_repeats": accs,
                "per_class_accuracy": np.mean(per_class, axis=0).tolist(),
                "test_mean_entropy": float(np.mean(entropy))}
  return out
