"""A 2-D convolution with "SAME" padding that stays fast inside lax.scan on CPU.

XLA:CPU runs the gradient convolutions of lax.conv_general_dilated about 20-50x slower inside
a while loop (lax.scan) than outside it (jax-ml/jax#12868; measured here: a 3x3, 32-channel
kernel gradient at batch 64 took 5.7 ms in a scan vs 0.1-0.3 ms unrolled). Fine-tuning is a
scan over steps, so on CPU the convolution is written as im2col: kh*kw shifted slices
concatenated on the channel axis, then one matmul, whose gradients are slices, pads and
matmuls that XLA runs at full speed in loops. Elsewhere (GPU/TPU) the native convolution is
used. Parameters are the same as flax.linen.Conv's (kernel [kh, kw, in, out], bias [out]), so
checkpoints move between the two.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


@jax.custom_vjp
def patch_matmul(cols: jax.Array, kernel2d: jax.Array) -> jax.Array:
  """cols [..., K] @ kernel2d [K, Cout], with the kernel gradient written as one 2-D matmul.

  Autodiff's kernel gradient contracts cols and the output gradient over all their leading axes
  (B x oh x ow rows) in one dot_general; here the rows are flattened first and the product is
  cols2d.T @ g2d. Same sums in the same order (a fine-tune's weights come out bit-identical),
  and a whole digits fine-tune (40 steps, batch 64) measured 256 ms instead of 277 ms (median
  of 25, quiet 2-core CPU)."""
  return cols @ kernel2d


def _patch_matmul_fwd(cols, kernel2d):
  return cols @ kernel2d, (cols, kernel2d)


def _patch_matmul_bwd(residuals, g):
  cols, kernel2d = residuals                                  # [..., K], [K, Cout]; g [..., Cout]
  rows = cols.reshape(-1, cols.shape[-1])                     # [B*oh*ow, K]
  d_kernel = jnp.dot(rows.T, g.reshape(-1, g.shape[-1]))      # [K, Cout]
  return g @ kernel2d.T, d_kernel


patch_matmul.defvjp(_patch_matmul_fwd, _patch_matmul_bwd)


def im2col_conv(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  """x [B, H, W, Cin], kernel [kh, kw, Cin, Cout] -> [B, ceil(H/s), ceil(W/s), Cout], "SAME"
  padding exactly as lax.conv_general_dilated computes it."""
  kh, kw, cin, cout = kernel.shape
  _, h, w, _ = x.shape
  oh, ow = -(-h // stride), -(-w // stride)
  pad_h = max((oh - 1) * stride + kh - h, 0)
  pad_w = max((ow - 1) * stride + kw - w, 0)
  xp = jnp.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2),
                   (0, 0)))
  if kh == kw == 1:
    cols = xp[:, ::stride, ::stride, :]
  else:
    cols = jnp.concatenate(  # [B, oh, ow, kh*kw*Cin], ordered (dy, dx, c) like the kernel
        [xp[:, dy:dy + (oh - 1) * stride + 1:stride, dx:dx + (ow - 1) * stride + 1:stride, :]
         for dy in range(kh) for dx in range(kw)], axis=-1)
  return patch_matmul(cols, kernel.reshape(kh * kw * cin, cout))


class Conv(nn.Module):
  """Drop-in for nn.Conv(features, kernel_size, strides, padding="SAME")."""
  features: int
  kernel_size: Sequence[int] = (3, 3)
  strides: int = 1
  use_bias: bool = True
  impl: str = "auto"          # auto (im2col on CPU, native elsewhere) | im2col | native

  @nn.compact
  def __call__(self, x):
    kh, kw = self.kernel_size
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (kh, kw, x.shape[-1], self.features))
    impl = self.impl
    if impl == "auto":
      impl = "im2col" if jax.default_backend() == "cpu" else "native"
    if impl == "im2col":
      y = im2col_conv(x, kernel, self.strides)
    else:
      y = jax.lax.conv_general_dilated(x, kernel, (self.strides, self.strides), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,))
    return y
