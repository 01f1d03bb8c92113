"""From the VAE's output to the classifier's images: antialiased resize, channels, uint8.

Generated images are resized (area-like, antialiased), never cropped: the authors' code cropped a
random 32x32 patch out of 768-pixel images, which throws most of the object away.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

# ITU-R BT.601 luma weights: how a 3-channel image becomes one channel.
_LUMA = jnp.asarray([0.299, 0.587, 0.114], jnp.float32)


def to_uint8_images(decoded: jax.Array, out_size: int, out_channels: int) -> jax.Array:
  """decoded: float [B, C, H, W] in [-1, 1] (diffusers' VAE layout) -> uint8 [B, S, S, out_channels]."""
  x = jnp.transpose(decoded.astype(jnp.float32), (0, 2, 3, 1))  # [B, H, W, C]
  x = jnp.clip(x / 2 + 0.5, 0.0, 1.0)
  b, h, w, c = x.shape
  if h % out_size == 0 and w % out_size == 0:
    # Whole-number shrink (512 -> 32, 16 -> 8): exact area averaging over fh x fw blocks.
    fh, fw = h // out_size, w // out_size
    x = x.reshape(b, out_size, fh, out_size, fw, c).mean(axis=(2, 4))
  else:
    # Otherwise an antialiased (low-pass filtered) linear resize.
    x = jax.image.resize(x, (b, out_size, out_size, c), method="linear", antialias=True)
  if c == 3 and out_channels == 1:
    x = jnp.einsum("bhwc,c->bhw", x, _LUMA)[..., None]
  elif c == 1 and out_channels == 3:
    x = jnp.repeat(x, 3, axis=-1)
  elif c != out_channels:
    raise ValueError(f"cannot turn {c}-channel images into {out_channels}-channel images")
  return jnp.round(jnp.clip(x, 0.0, 1.0) * 255.0).astype(jnp.uint8)
