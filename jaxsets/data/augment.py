"""Augmentation inside jit: random crop after zero padding, and horizontal flip where a
dataset allows it (never for digits: a flipped 2 is not a 2)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def random_crop(key: jax.Array, images: jax.Array, padding: int) -> jax.Array:
  """images [B, H, W, C] -> [B, H, W, C], each shifted by up to `padding` pixels each way
  (the crop of a zero-padded copy, as in the CIFAR ResNet recipe)."""
  if padding <= 0:
    return images
  b, h, w, c = images.shape
  padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  offsets = jax.random.randint(key, (b, 2), 0, 2 * padding + 1)
  crop = lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, c))
  return jax.vmap(crop)(padded, offsets)


def random_flip(key: jax.Array, images: jax.Array) -> jax.Array:
  """Mirrors each image left-right with probability 1/2. images [B, H, W, C]."""
  flip = jax.random.bernoulli(key, 0.5, (images.shape[0],))
  return jnp.where(flip[:, None, None, None], images[:, :, ::-1, :], images)


def augment(key: jax.Array, images: jax.Array, *, crop_padding: int, hflip: bool) -> jax.Array:
  k_crop, k_flip = jax.random.split(key)
  images = random_crop(k_crop, images, crop_padding)
  return random_flip(k_flip, images) if hflip else images
