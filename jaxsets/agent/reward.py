"""The agent's reward: r = w_acc * (acc_after - acc_before) - w_ent * (H_after - H_before).

`before` and `after` are evaluation metrics of the classifier on the validation split (never
the test split): any object with fields `accuracy` [...], `per_class_accuracy` [..., n] and
`mean_entropy` [...] (an EvalMetrics). Leading dims are allowed (E environments).

The entropy H is pluggable by name (`ENTROPY_FNS`, `register_entropy`):
- "mean_predictive" (default): the mean over the validation set of the classifier's predictive
  entropy, in nats (the `mean_entropy` field);
- "per_class_accuracy_entropy": the entropy of the per-class accuracies normalised to sum to 1,
  as in the authors' code (nearly constant when accuracies are nearly tied).

A NaN or inf reward means the classifier diverged. `reward` is jittable, so it cannot raise:
it returns a `finite` flag beside the reward, and the host calls `check_finite(r, finite)`,
which raises `NonFiniteRewardError` (a UserError: the CLI prints it) before the transition is
used or any checkpoint is written.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxsets import config_types
from jaxsets.errors import UserError

EntropyFn = Callable[[Any], jax.Array]
ENTROPY_FNS: dict[str, EntropyFn] = {}


class NonFiniteRewardError(UserError):
  """The reward is NaN or inf: the classifier diverged (its metrics are not finite)."""


def register_entropy(name: str) -> Callable[[EntropyFn], EntropyFn]:
  """Decorator: makes `fn(metrics) -> [...]` available as `config.reward.entropy = name`."""
  def register(fn: EntropyFn) -> EntropyFn:
    ENTROPY_FNS[name] = fn
    return fn
  return register


@register_entropy("mean_predictive")
def mean_predictive_entropy(metrics) -> jax.Array:
  return jnp.asarray(metrics.mean_entropy, jnp.float32)


@register_entropy("per_class_accuracy_entropy")
def per_class_accuracy_entropy(metrics) -> jax.Array:
  """-sum p log p with p = per-class accuracy / its sum (uniform if all accuracies are 0)."""
  acc = jnp.asarray(metrics.per_class_accuracy, jnp.float32)
  total = acc.sum(axis=-1, keepdims=True)
  p = jnp.where(total > 0, acc / jnp.where(total > 0, total, 1.0), 1.0 / acc.shape[-1])
  return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=-1)


@dataclasses.dataclass(frozen=True)
class RewardConfig:
  w_acc: float = 1.0
  w_ent: float = 1.0
  entropy: str = "mean_predictive"

  def __post_init__(self):
    if self.entropy not in ENTROPY_FNS:
      raise ValueError(f"config.reward.entropy={self.entropy!r} is not known: use one of "
                       f"{sorted(ENTROPY_FNS)}.")

  @classmethod
  def from_config(cls, section: Any) -> "RewardConfig":
    return cls(**config_types.read_section(cls, section, "reward.", required=True))


def reward(before, after, *, w_acc: float = 1.0, w_ent: float = 1.0,
           entropy: str = "mean_predictive"):
  """-> (reward float32 [...], finite bool [...]). Jittable; check `finite` on the host."""
  if entropy not in ENTROPY_FNS:
    raise ValueError(f"unknown reward entropy {entropy!r}: use one of {sorted(ENTROPY_FNS)}.")
  entropy_fn = ENTROPY_FNS[entropy]
  d_acc = (jnp.asarray(after.accuracy, jnp.float32) - jnp.asarray(before.accuracy, jnp.float32))
  d_ent = entropy_fn(after) - entropy_fn(before)
  r = w_acc * d_acc - w_ent * d_ent
  return r, jnp.isfinite(r)


def reward_from_config(before, after, cfg: RewardConfig):
  return reward(before, after, w_acc=cfg.w_acc, w_ent=cfg.w_ent, entropy=cfg.entropy)


def check_finite(r, finite, *, where: str = "") -> np.ndarray:
  """Host side: returns the reward as numpy, or raises NonFiniteRewardError."""
  finite = np.asarray(finite)
  if not finite.all():
    bad = np.flatnonzero(~finite.reshape(-1)).tolist()
    at = f" at {where}" if where else ""
    raise NonFiniteRewardError(
        f"the reward is not finite{at} (environment(s) {bad}: reward {np.asarray(r).reshape(-1)[bad]}):"
        " the classifier diverged (its validation accuracy or entropy is NaN/inf). Lower "
        "config.classifier.finetune_learning_rate or check the synthetic images; no checkpoint "
        "was written with this state.")
  return np.asarray(r)
