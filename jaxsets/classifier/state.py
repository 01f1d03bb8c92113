"""ClassifierState and its initialisation, replicated over the mesh."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh

from jaxsets import sharding
from jaxsets.classifier.config import ClassifierConfig
from jaxsets.classifier.models import make_model


@struct.dataclass
class ClassifierState:
  """params and optimizer state (pytrees, replicated); which model they belong to (static)."""
  params: Any
  opt_state: Any
  model: str = struct.field(pytree_node=False)
  num_classes: int = struct.field(pytree_node=False)

  def apply(self, images: jax.Array) -> jax.Array:
    """uint8 images [B, H, W, C] -> logits float32 [B, num_classes]."""
    return make_model(self.model, self.num_classes).apply({"params": self.params},
                                                          preprocess(images))


def preprocess(images: jax.Array) -> jax.Array:
  """uint8 [B, H, W, C] -> float32 in [-1, 1]."""
  return images.astype(jnp.float32) * (2.0 / 255.0) - 1.0


def warmup_cosine(peak, total_steps: int, warmup_fraction: float):
  """Linear warm-up over warmup_fraction of total_steps, then cosine to zero. `peak` may be a
  traced scalar (a swept learning rate does not recompile); step counts are static."""
  warm = max(1, int(round(warmup_fraction * total_steps)))

  def schedule(count):
    count = jnp.asarray(count, jnp.float32)
    up = (count + 1.0) / warm
    t = jnp.clip((count - warm) / max(1, total_steps - warm), 0.0, 1.0)
    down = 0.5 * (1.0 + jnp.cos(jnp.pi * t))
    return peak * jnp.where(count < warm, up, down)

  return schedule


def make_optimizer(peak_lr, weight_decay, total_steps: int, cfg: ClassifierConfig):
  """AdamW with the schedule above and gradient clipping at global norm 1."""
  return optax.chain(
      optax.clip_by_global_norm(1.0),
      optax.adamw(warmup_cosine(peak_lr, total_steps, cfg.warmup_fraction),
                  weight_decay=weight_decay))


def init_state(key: jax.Array, cfg: ClassifierConfig, image_shape, num_classes: int,
               mesh: Mesh) -> ClassifierState:
  """Fresh parameters for images of `image_shape` (H, W, C), replicated over `mesh`.

  Initialised under jit with replicated out_shardings, so no device holds a private copy."""
  model = make_model(cfg.model, num_classes)
  dummy = jnp.zeros((1,) + tuple(image_shape), jnp.float32)

  def init(key, cfg):
    params = model.init(key, dummy)["params"]
    tx = make_optimizer(cfg.learning_rate, cfg.weight_decay, cfg.baseline_steps, cfg)
    return ClassifierState(params, tx.init(params), cfg.model, num_classes)

  return jax.jit(init, out_shardings=sharding.replicated(mesh))(key, cfg)
