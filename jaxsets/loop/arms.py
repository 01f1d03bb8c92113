"""The evaluation protocol: four arms, same real data, same classifier recipe, same number of
synthetic images, scored on the test split that no decision of the run has seen.

  baseline  real data only (fine-tuned with the same recipe on an empty support set)
  random    uniformly random (domain, c1, c2, c3) prompts
  balanced  a fixed rule, no learning: every class equally often as c1, pure prompts
            (c2 = c3 = c1), the domains spread evenly over the steps
  rl        the roll-out of the trained agent (herding or greedy, config.loop.rollout)
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxsets import sharding, streams
from jaxsets.classifier import SupportBatch, evaluate, finetune
from jaxsets.data.device import put_on_devices
from jaxsets.loop import state as st
from jaxsets.loop.state import generate_images
from jaxsets.loop.setup import RunSetup

ARMS = ("baseline", "random", "balanced", "rl")


def random_actions(s: RunSetup, key) -> jax.Array:
  """int32 [T, 4]: a uniformly random domain and three uniformly random classes per step."""
  T = s.steps_per_episode
  k_d, k_c = jax.random.split(key)
  domains = jax.random.randint(k_d, (T, 1), 0, s.book.num_domains)
  classes = jax.random.randint(k_c, (T, 3), 0, s.book.num_classes)
  return jnp.concatenate([domains, classes], axis=1).astype(jnp.int32)


def balanced_actions(num_steps: int, num_domains: int, num_classes: int) -> np.ndarray:
  """int32 [T, 4]: step t prompts class t mod n, pure (c2 = c3 = c1), in domain
  (t + t // lcm(n, D)) mod D. Any first k steps then hold each class and each domain equally
  often, to one step, and every lcm(n, D) steps the domains shift by one, so each class meets
  every domain in turn (default T = 40, n = 10, D = 4: each class once per domain)."""
  t = np.arange(num_steps)
  c = t % num_classes
  domain = (t + t // math.lcm(num_classes, num_domains)) % num_domains
  return np.stack([domain, c, c, c], axis=1).astype(np.int32)


def arm_support(s: RunSetup, actions, key) -> SupportBatch:
  """The support set a non-learned arm's actions [T, 4] make: images_per_step images per step,
  labelled c1, as big as the RL set."""
  images = generate_images(s, jnp.asarray(actions), key)                            # [T, ips, ...]
  ips = s.spec.images_per_step
  flat = images.reshape((-1,) + images.shape[2:])
  labels = jnp.repeat(jnp.asarray(actions)[:, 1], ips)
  return SupportBatch(flat, labels, jnp.ones(labels.shape, bool))


def random_support(s: RunSetup, key) -> tuple[SupportBatch, np.ndarray]:
  """The random arm's support set (same size as the RL one) and its actions [T, 4]."""
  actions = random_actions(s, st.stream(key, st.RANDOM_ARM, 0))
  return arm_support(s, actions, st.stream(key, st.RANDOM_ARM, 1)), np.asarray(actions)


def balanced_support(s: RunSetup, key) -> tuple[SupportBatch, np.ndarray]:
  """The balanced arm's support set (same size as the RL one) and its actions [T, 4]."""
  actions = balanced_actions(s.steps_per_episode, s.book.num_domains, s.book.num_classes)
  return arm_support(s, actions, streams.stream(key, streams.BALANCED_ARM)), actions


def evaluate_arms(s: RunSetup, state: st.RunState, supports: dict) -> dict:
  """Test metrics per arm, each the mean over loop.eval_repeats fine-tunes whose minibatch
  keys are shared across arms (so the arms differ only in their support sets), and the same
  fine-tunes' validation accuracy: what a design is chosen on, the test split staying unseen."""
  test = put_on_devices(s.splits.test, s.mesh)
  val = put_on_devices(s.splits.validation, s.mesh)  # placed as the test split, not as s.val
  repeats = s.loop.eval_repeats
  # Each fine-tune's minibatch split over the devices (added in device order, the same bits on
  # any layout of them over processes), the test set scored where it lies.
  mesh = s.mesh if s.mesh.size > 1 else None
  out = {}
  for arm in ARMS:
    # One placement for every arm's set (some are made outside jit, some come out of it):
    # otherwise each arm compiles its own fine-tune (~5 s each for a small CNN on CPU).
    support = sharding.replicate(supports[arm], s.mesh)
    accs, per_class, entropy, val_accs = [], [], [], []
    for r in range(repeats):
      clf, _ = finetune(state.baseline, s.real, support, st.stream(state.key, st.EVAL, r),
                        cfg=s.clf_cfg, mesh=mesh)
      m = evaluate(clf, test.images, test.labels, test.mask, chunk=s.clf_cfg.eval_chunk)
      accs.append(float(m.accuracy))
      per_class.append(np.asarray(m.per_class_accuracy))
      entropy.append(float(m.mean_entropy))
      v = evaluate(clf, val.images, val.labels, val.mask, chunk=s.clf_cfg.eval_chunk)
      val_accs.append(float(v.accuracy))
    out[arm] = {"test_accuracy": float(np.mean(accs)), "test_accuracy_repeats": accs,
                "per_class_accuracy": np.mean(per_class, axis=0).tolist(),
                "test_mean_entropy": float(np.mean(entropy)),
                "val_accuracy": float(np.mean(val_accs))}
  return out
