"""Training as pure jitted functions of arrays: a lax.scan over steps, minibatches sampled and
augmented on the devices from device-resident data, no host round trip inside.

  train_steps  the shared core (params, opt_state) -> (params, opt_state, losses);
  finetune     real + a masked support set, from a given state, fresh optimizer;
  train_baseline (driver) the baseline on real data in chunks, for a progress bar.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, PartitionSpec as P

from jaxsets import sharding
from jaxsets.classifier.config import ClassifierConfig
from jaxsets.classifier.state import ClassifierState, make_optimizer, preprocess
from jaxsets.classifier.models import make_model
from jaxsets.data import augment as augment_ops
from jaxsets.data.device import DeviceSet, sample_union


class SupportBatch(NamedTuple):
  """The synthetic support set padded to the full budget B: images uint8 [B, H, W, C],
  labels int32 [B], mask bool [B] (True = a real member). Same shapes at every RL step."""
  images: jax.Array
  labels: jax.Array
  mask: jax.Array


def empty_support(image_shape, rows: int) -> SupportBatch:
  """A support set with no members (`rows` of padding), for training on real data only."""
  return SupportBatch(jnp.zeros((rows,) + tuple(image_shape), jnp.uint8),
                      jnp.zeros((rows,), jnp.int32), jnp.zeros((rows,), bool))


def example_losses(params, state: ClassifierState, images, labels, label_smoothing):
  """Softmax cross-entropy of each row (images uint8 [B,H,W,C], labels int32 [B]): float32 [B]."""
  model = make_model(state.model, state.num_classes)
  logits = model.apply({"params": params}, preprocess(images))      # [B, n]
  targets = optax.smooth_labels(jax.nn.one_hot(labels, state.num_classes), label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def loss_fn(params, state: ClassifierState, images, labels, label_smoothing):
  """Mean softmax cross-entropy of a batch (images uint8 [B,H,W,C], labels int32 [B])."""
  return jnp.mean(example_losses(params, state, images, labels, label_smoothing))


def sharded_loss_and_grads(params, state: ClassifierState, images, labels, label_smoothing, *,
                           mesh: Mesh):
  """loss_fn and its gradient for a batch split over `mesh`, the same bits on any layout of its
  devices over processes: each device differentiates sum(its rows' losses) / B, and the D
  parts are added in device order (sharding.fixed_order_sum) where jit would all-reduce them.
  Returns (loss float32 [], grads like params), replicated."""
  batch = labels.shape[0]

  def local(params, images, labels, label_smoothing):          # this device's B / D rows
    part = lambda p: jnp.sum(example_losses(p, state, images, labels, label_smoothing)) / batch
    return sharding.fixed_order_sum(jax.value_and_grad(part)(params))

  rows = P(sharding.DATA_AXIS)
  # check_vma=False: all_gather's result is the same on every device, which shard_map's type
  # check cannot see; out_specs P() then takes it as it is.
  return jax.shard_map(local, mesh=mesh, in_specs=(P(), rows, rows, P()), out_specs=P(),
                       check_vma=False)(params, images, labels, label_smoothing)


def train_steps(state: ClassifierState, real: DeviceSet, support: SupportBatch, key: jax.Array,
                first_step, *, cfg: ClassifierConfig, tx, num_steps: int,
                mesh: Mesh | None = None):
  """`num_steps` optimizer steps on minibatches drawn uniformly from the valid rows of real and
  support together. Step i uses fold_in(key, first_step + i), so a run cut into chunks draws
  the same batches as one long run. With a mesh of several devices the batch is split over
  them and the gradient summed in a fixed order (sharded_loss_and_grads). Returns (state,
  losses float32 [num_steps])."""
  split = mesh is not None and mesh.size > 1

  def step(carry, i):
    params, opt_state = carry
    k_batch, k_aug = jax.random.split(jax.random.fold_in(key, first_step + i))
    images, labels = sample_union(k_batch, real, DeviceSet(*support), cfg.batch_size)
    if mesh is not None:  # the batch is split over the devices
      images, labels = jax.lax.with_sharding_constraint(
          (images, labels), sharding.batch_sharding(mesh))
    if cfg.augment:
      images = augment_ops.augment(k_aug, images, crop_padding=cfg.crop_padding, hflip=cfg.hflip)
    if split:
      loss, grads = sharded_loss_and_grads(params, state, images, labels, cfg.label_smoothing,
                                           mesh=mesh)
    else:
      loss, grads = jax.value_and_grad(loss_fn)(params, state, images, labels,
                                                cfg.label_smoothing)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  (params, opt_state), losses = jax.lax.scan(
      step, (state.params, state.opt_state), jnp.arange(num_steps))
  return state.replace(params=params, opt_state=opt_state), losses


@partial(jax.jit, static_argnames=("mesh",))
def finetune(state: ClassifierState, real: DeviceSet, support: SupportBatch, key: jax.Array, *,
             cfg: ClassifierConfig, mesh: Mesh | None = None):
  """Fine-tunes `state` on real + support for cfg.finetune_steps steps with a fresh AdamW
  (peak cfg.finetune_learning_rate, warm-up + cosine). Pure: the RL loop may jax.vmap it over
  several support sets. Which state to pass (the baseline's or the last fine-tune's) is
  cfg.finetune_from's business: see `finetune_start`. Returns (state, losses [steps])."""
  tx = make_optimizer(cfg.finetune_learning_rate, cfg.weight_decay, cfg.finetune_steps, cfg)
  state = state.replace(opt_state=tx.init(state.params))
  return train_steps(state, real, support, key, 0, cfg=cfg, tx=tx,
                     num_steps=cfg.finetune_steps, mesh=mesh)


def finetune_start(baseline: ClassifierState, last: ClassifierState | None,
                   cfg: ClassifierConfig) -> ClassifierState:
  """The state the next fine-tune starts from: always the baseline ("baseline", the authors'
  choice) or the previous fine-tune's result ("continue")."""
  return baseline if cfg.finetune_from == "baseline" or last is None else last


@partial(jax.jit, static_argnames=("num_steps", "mesh"), donate_argnums=(0,))
def baseline_chunk(state: ClassifierState, real: DeviceSet, support: SupportBatch,
                   key: jax.Array, first_step, *, cfg: ClassifierConfig, num_steps: int,
                   mesh: Mesh | None = None):
  """`num_steps` steps of the baseline recipe (the optimizer made by init_state), continuing
  its schedule from the step count held in the optimizer state."""
  tx = make_optimizer(cfg.learning_rate, cfg.weight_decay, cfg.baseline_steps, cfg)
  return train_steps(state, real, support, key, first_step, cfg=cfg, tx=tx,
                     num_steps=num_steps, mesh=mesh)
