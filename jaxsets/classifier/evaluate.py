"""Evaluation in one jitted pass: accuracy, per-class accuracy, mean predictive entropy (nats)
and the confusion matrix, from logits computed in fixed-size chunks (lax.map) so a large test
set does not hold every activation at once."""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsets.classifier.state import ClassifierState


class EvalMetrics(NamedTuple):
  accuracy: jax.Array            # float32 []: correct / valid rows
  per_class_accuracy: jax.Array  # float32 [n]: recall of each class (0 where a class is absent)
  mean_entropy: jax.Array        # float32 []: mean over rows of -sum_k p_k log p_k, nats
  confusion: jax.Array           # int32 [n, n]: rows = true class, columns = predicted class


def metrics_from_logits(logits, labels, mask, num_classes: int) -> EvalMetrics:
  """logits [N, n], labels int32 [N], mask bool [N] -> EvalMetrics over the rows with mask."""
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32))
  entropy = -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)               # [N]
  pred = jnp.argmax(logits, axis=-1)
  confusion = jnp.zeros((num_classes, num_classes), jnp.int32).at[labels, pred].add(
      mask.astype(jnp.int32))
  count = jnp.maximum(jnp.sum(mask), 1)
  support = jnp.sum(confusion, axis=1)                                # [n] rows per class
  correct = jnp.diagonal(confusion)
  return EvalMetrics(
      accuracy=jnp.sum(correct) / count,
      per_class_accuracy=jnp.where(support > 0, correct / jnp.maximum(support, 1), 0.0),
      mean_entropy=jnp.sum(jnp.where(mask, entropy, 0.0)) / count,
      confusion=confusion)


@partial(jax.jit, static_argnames=("chunk",))
def _evaluate(state: ClassifierState, images, labels, mask, chunk: int) -> EvalMetrics:
  n = labels.shape[0]
  if n <= chunk:
    logits = state.apply(images)
  else:
    rows = -(-n // chunk) * chunk
    pad = rows - n
    images = jnp.pad(images, ((0, pad),) + ((0, 0),) * (images.ndim - 1))
    chunks = images.reshape((rows // chunk, chunk) + images.shape[1:])
    logits = jax.lax.map(state.apply, chunks).reshape(rows, -1)[:n]   # [N, n]
  return metrics_from_logits(logits, labels, mask, state.num_classes)


def evaluate(state: ClassifierState, images, labels, mask=None, *, chunk: int = 1024) -> EvalMetrics:
  """Metrics of `state` on images uint8 [N, H, W, C] and labels int32 [N]; rows with mask False
  (padding of a DeviceSet) are ignored. Accepts a DeviceSet's arrays as they lie on the devices."""
  if mask is None:
    mask = jnp.ones(jnp.shape(labels), bool)
  return _evaluate(state, images, labels, mask, chunk)
