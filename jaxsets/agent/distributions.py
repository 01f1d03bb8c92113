"""The factorised categorical over a prompt action (domain, c1, c2, c3).

This is the ONLY module of jaxsets that imports distrax: distrax pulls a floating `tfp-nightly`
that broke once on a JAX upgrade (distrax #295). If it breaks again, only this file changes
(the three functions below are a few lines of `jax.nn.log_softmax` each).

An action is an int32 array [..., 4] = (domain, c1, c2, c3). The policy gives one categorical
head for the domain (|D| logits) and one per class slot (3 x n logits), so the action space
costs |D| + 3n logits instead of |D| * n^3. For an autoregressive policy the slot logits are the
conditionals given the choices actually taken (teacher forcing), so `log_prob` and `entropy`
below are the log-probability of the sequence and the per-sample sum of the conditional
entropies along it.
"""
from __future__ import annotations

from typing import NamedTuple

import distrax
import jax
import jax.numpy as jnp

ACTION_SIZE = 4  # (domain, c1, c2, c3)
NUM_SLOTS = 3


def _categorical(logits: jax.Array) -> distrax.Categorical:
  return distrax.Categorical(logits=logits)


def sample_head(logits: jax.Array, key: jax.Array) -> jax.Array:
  """One draw per row of `logits` [..., k] -> int32 [...]."""
  return _categorical(logits).sample(seed=key).astype(jnp.int32)


def mode_head(logits: jax.Array) -> jax.Array:
  """The most likely index per row of `logits` [..., k] -> int32 [...]."""
  return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def head_log_prob(logits: jax.Array, index: jax.Array) -> jax.Array:
  """log p of `index` [...] under one head's `logits` [..., k] -> float32 [...]."""
  return _categorical(logits).log_prob(index)


def head_entropy(logits: jax.Array) -> jax.Array:
  """One head's entropy in nats: [..., k] -> [...]."""
  return _categorical(logits).entropy()


class FactorisedCategorical(NamedTuple):
  """Per-head logits of one action distribution (a pytree; leading batch dims allowed).

  domain_logits: float32 [..., D]
  class_logits:  float32 [..., 3, n]   (slot k of the prompt: c1, c2, c3)
  """
  domain_logits: jax.Array
  class_logits: jax.Array

  def head_log_probs(self, action: jax.Array) -> jax.Array:
    """log p of each head's choice: action int32 [..., 4] -> float32 [..., 4]."""
    lp_domain = _categorical(self.domain_logits).log_prob(action[..., 0])
    lp_slots = _categorical(self.class_logits).log_prob(action[..., 1:])
    return jnp.concatenate([lp_domain[..., None], lp_slots], axis=-1)

  def log_prob(self, action: jax.Array) -> jax.Array:
    """Sum over the four heads: [..., 4] -> [...]."""
    return jnp.sum(self.head_log_probs(action), axis=-1)

  def head_entropies(self) -> jax.Array:
    """Entropy of each head in nats -> float32 [..., 4]."""
    h_domain = _categorical(self.domain_logits).entropy()
    h_slots = _categorical(self.class_logits).entropy()
    return jnp.concatenate([h_domain[..., None], h_slots], axis=-1)

  def entropy(self) -> jax.Array:
    """Sum of the head entropies -> [...] (exact joint entropy when heads are independent)."""
    return jnp.sum(self.head_entropies(), axis=-1)

  def sample(self, key: jax.Array) -> jax.Array:
    """Independent draw from every head -> int32 [..., 4] (factorised policies only: an
    autoregressive policy samples head by head, see policy.ActorCritic.sample)."""
    k_domain, k_slots = jax.random.split(key)
    domain = sample_head(self.domain_logits, k_domain)
    slots = sample_head(self.class_logits, k_slots)
    return jnp.concatenate([domain[..., None], slots], axis=-1)

  def mode(self) -> jax.Array:
    """Per-head argmax -> int32 [..., 4]."""
    return jnp.concatenate(
        [mode_head(self.domain_logits)[..., None], mode_head(self.class_logits)], axis=-1)
