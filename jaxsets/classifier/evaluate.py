"""Evaluation in one jitted pass: accuracy, per-class accuracy, mean predictive entropy (nats)
and the confusion matrix, from logits computed in fixed-size chunks (lax.map) so a large test
set does not hold every activation at once.

A set that lies split over a mesh (a DeviceSet) is scored where it lies: each device scores its
rows, the integer counts are psum-med (exact in any order) and the float entropy sums are added
in device order (sharding.fixed_order_sum), so the metrics have the same bits on any layout of
the devices over processes. Anything else (numpy, one device) takes the plain path."""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from jaxsets import sharding
from jaxsets.classifier.state import ClassifierState


class EvalMetrics(NamedTuple):
  accuracy: jax.Array            # float32 []: correct / valid rows
  per_class_accuracy: jax.Array  # float32 [n]: recall of each class (0 where a class is absent)
  mean_entropy: jax.Array        # float32 []: mean over rows of -sum_k p_k log p_k, nats
  confusion: jax.Array           # int32 [n, n]: rows = true class, columns = predicted class


def _sums(logits, labels, mask, num_classes: int):
  """(confusion int32 [n, n], entropy summed over the rows with mask float32 [])."""
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32))
  entropy = -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)               # [N]
  pred = jnp.argmax(logits, axis=-1)
  confusion = jnp.zeros((num_classes, num_classes), jnp.int32).at[labels, pred].add(
      mask.astype(jnp.int32))
  return confusion, jnp.sum(jnp.where(mask, entropy, 0.0))


def _metrics(confusion, entropy_sum, rows) -> EvalMetrics:
  count = jnp.maximum(rows, 1)
  support = jnp.sum(confusion, axis=1)                                # [n] rows per class
  correct = jnp.diagonal(confusion)
  return EvalMetrics(
      accuracy=jnp.sum(correct) / count,
      per_class_accuracy=jnp.where(support > 0, correct / jnp.maximum(support, 1), 0.0),
      mean_entropy=entropy_sum / count,
      confusion=confusion)


def metrics_from_logits(logits, labels, mask, num_classes: int) -> EvalMetrics:
  """logits [N, n], labels int32 [N], mask bool [N] -> EvalMetrics over the rows with mask."""
  confusion, entropy_sum = _sums(logits, labels, mask, num_classes)
  return _metrics(confusion, entropy_sum, jnp.sum(mask))


def _logits(state: ClassifierState, images, chunk: int):
  """images [N, ...] -> logits [N, n], `chunk` rows per forward pass."""
  n = images.shape[0]
  if n <= chunk:
    return state.apply(images)
  rows = -(-n // chunk) * chunk
  images = jnp.pad(images, ((0, rows - n),) + ((0, 0),) * (images.ndim - 1))
  chunks = images.reshape((rows // chunk, chunk) + images.shape[1:])
  return jax.lax.map(state.apply, chunks).reshape(rows, -1)[:n]       # [N, n]


def _sharded_metrics(state: ClassifierState, images, labels, mask, chunk: int, mesh) -> EvalMetrics:
  """The metrics of rows split over `mesh`: each device scores its N / D rows (`chunk` at a
  time); counts psum-med, entropy sums added in device order."""

  def local(params, images, labels, mask):
    confusion, entropy_sum = _sums(_logits(state.replace(params=params), images, chunk),
                                   labels, mask, state.num_classes)
    counts = jax.lax.psum((confusion, jnp.sum(mask, dtype=jnp.int32)), sharding.DATA_AXIS)
    return _metrics(counts[0], sharding.fixed_order_sum(entropy_sum), counts[1])

  rows = P(sharding.DATA_AXIS)
  # check_vma=False: see classifier/train.py (all_gather's result is the same everywhere).
  return jax.shard_map(local, mesh=mesh, in_specs=(P(), rows, rows, rows), out_specs=P(),
                       check_vma=False)(state.params, images, labels, mask)


@partial(jax.jit, static_argnames=("chunk",))
def _evaluate(state: ClassifierState, images, labels, mask, chunk: int) -> EvalMetrics:
  mesh = sharding.mesh_of(images)
  if mesh is not None:
    return _sharded_metrics(state, images, labels, mask, chunk, mesh)
  return metrics_from_logits(_logits(state, images, chunk), labels, mask, state.num_classes)


def evaluate(state: ClassifierState, images, labels, mask=None, *, chunk: int = 1024) -> EvalMetrics:
  """Metrics of `state` on images uint8 [N, H, W, C] and labels int32 [N]; rows with mask False
  (padding of a DeviceSet) are ignored. Accepts a DeviceSet's arrays as they lie on the devices
  (then scored on them, see above)."""
  if mask is None:
    mask = jnp.ones(jnp.shape(labels), bool)
  return _evaluate(state, images, labels, mask, chunk)
