"""A small Vision Transformer (pre-norm, mean-pooled tokens, learned position embeddings).

The patch size is chosen from the image so there are always 8x8 = 64 tokens: 1 pixel for 8x8
digits, 4 for 32x32 CIFAR, 8 for 64x64 Tiny-ImageNet. LayerNorm, no batch statistics.
Input: float32 [B, H, W, C]; output: logits [B, num_classes].
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class EncoderBlock(nn.Module):
  dim: int
  heads: int
  mlp_dim: int

  @nn.compact
  def __call__(self, x):
    y = nn.LayerNorm()(x)
    x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads)(y, y)
    y = nn.LayerNorm()(x)
    y = nn.Dense(self.dim)(nn.gelu(nn.Dense(self.mlp_dim)(y)))
    return x + y


class ViT(nn.Module):
  num_classes: int
  dim: int = 192
  depth: int = 6
  heads: int = 3
  mlp_dim: int = 384
  grid: int = 8              # tokens per side

  @nn.compact
  def __call__(self, x):
    b, h, w, _ = x.shape
    ph, pw = max(1, h // self.grid), max(1, w // self.grid)
    # Patches by reshape + one matmul (no convolution: see conv.py on CPU loops).
    c = x.shape[-1]
    x = x[:, :h // ph * ph, :w // pw * pw]
    x = x.reshape(b, h // ph, ph, w // pw, pw, c).transpose(0, 1, 3, 2, 4, 5)
    x = nn.Dense(self.dim)(x.reshape(b, (h // ph) * (w // pw), ph * pw * c))  # [B, T, D]
    pos = self.param("pos_embedding", nn.initializers.normal(0.02), (1, x.shape[1], self.dim))
    x = x + pos
    for _ in range(self.depth):
      x = EncoderBlock(self.dim, self.heads, self.mlp_dim)(x)
    x = nn.LayerNorm()(x)
    return nn.Dense(self.num_classes)(jnp.mean(x, axis=1))
