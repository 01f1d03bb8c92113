"""The agent's observation (state vector), float32 [obs_dim], from the classifier's metrics.

Layout, in order (n = number of classes):
  [0]           overall validation accuracy
  [1 : 1+n]     per-class validation accuracy
  [1+n]         fraction of the synthetic budget used (num_synthetic / budget), in [0, 1]
  [next n]      if cfg.per_class_entropy: per-class mean predictive entropy / log(n), ~[0, 1]
  [next n]      if cfg.support_counts:    support-set images per class / (budget / n): 1 is the
                class's balanced share of the final set (so one step of 10 images of 400 moves
                a digit's entry by 0.25, not by 0.025 as a share of the budget would)
Every entry is of order 1, so the MLP needs no running normalisation. Leading dims allowed.
`metrics` is an EvalMetrics-like object: accuracy [...], per_class_accuracy [..., n] and, when
per_class_entropy is on, per_class_entropy [..., n] (nats).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxsets.agent.config import ObservationConfig


def observation_size(num_classes: int, cfg: ObservationConfig) -> int:
  return (1 + num_classes + 1 + num_classes * int(cfg.per_class_entropy)
          + num_classes * int(cfg.support_counts))


def make_observation(metrics, num_synthetic: jax.Array, class_counts: jax.Array, *,
                     budget: int, cfg: ObservationConfig) -> jax.Array:
  """num_synthetic: int [...] images in the support set; class_counts: int [..., n] of them
  per class (label c1); budget: the final support-set size (static) -> float32 [..., obs_dim]."""
  if budget <= 0:
    raise ValueError(f"budget must be > 0, got {budget}.")
  per_class = jnp.asarray(metrics.per_class_accuracy, jnp.float32)
  n = per_class.shape[-1]
  parts = [jnp.asarray(metrics.accuracy, jnp.float32)[..., None], per_class,
           (jnp.asarray(num_synthetic, jnp.float32) / budget)[..., None]]
  if cfg.per_class_entropy:
    if getattr(metrics, "per_class_entropy", None) is None:
      raise ValueError("config.agent.observation.per_class_entropy is on but the evaluation "
                       "metrics have no per_class_entropy field.")
    parts.append(jnp.asarray(metrics.per_class_entropy, jnp.float32) / math.log(max(n, 2)))
  if cfg.support_counts:
    parts.append(jnp.asarray(class_counts, jnp.float32) * (n / budget))
  batch = jnp.broadcast_shapes(*(p.shape[:-1] for p in parts))
  return jnp.concatenate([jnp.broadcast_to(p, batch + p.shape[-1:]) for p in parts], axis=-1)


def per_class_size(cfg: ObservationConfig) -> int:
  """k: values per class in the observation (accuracy, then entropy and count if on)."""
  return 1 + int(cfg.per_class_entropy) + int(cfg.support_counts)


def split_observation(obs: jax.Array, num_classes: int, cfg: ObservationConfig):
  """The inverse of make_observation's layout: obs [..., obs_dim] -> (overall [..., 2] =
  (accuracy, budget used), per_class [..., n, k] = each class's own values, in the order
  accuracy, entropy (if on), count (if on))."""
  n = num_classes
  if obs.shape[-1] != observation_size(n, cfg):
    raise ValueError(f"observation has {obs.shape[-1]} values; {n} classes and {cfg} make "
                     f"{observation_size(n, cfg)}.")
  overall = jnp.stack([obs[..., 0], obs[..., 1 + n]], axis=-1)
  blocks = [obs[..., 1:1 + n]]
  start = 2 + n
  for _ in range(per_class_size(cfg) - 1):
    blocks.append(obs[..., start:start + n])
    start += n
  return overall, jnp.stack(blocks, axis=-1)
