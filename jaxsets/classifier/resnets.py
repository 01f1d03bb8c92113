"""Convolutional classifiers: the small CNN for digits, CIFAR ResNet-20/56, ResNet-18/50.

Normalisation is GroupNorm everywhere, not BatchNorm, on purpose:
  * no mutable batch statistics: the classifier state is params + optimizer state only, so a
    fine-tune is a pure function that jax.vmap can map over several support sets at once;
  * per-example statistics: the result does not depend on how a batch is split over devices
    (BatchNorm would need a cross-device mean, and differs between 1 and 4 devices);
  * fine-tuning on a few hundred images does not drift running averages away from the
    baseline's, which made BatchNorm fine-tunes noisy in the authors' code.
Input: float32 [B, H, W, C] in [-1, 1]. Output: logits float32 [B, num_classes].
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxsets.classifier.conv import Conv


def _norm(channels: int) -> nn.GroupNorm:
  # Groups of >= 4 channels, at most 32 groups (Wu & He 2018 use 32 groups of >= 2 channels).
  return nn.GroupNorm(num_groups=max(1, min(32, channels // 4)))


class SmallCNN(nn.Module):
  """For 8x8 digits: two 3x3 conv pairs (32, 64 channels; the second pair at 4x4) and a linear
  head on the flattened 4x4x64 map (position matters for digits; no global pooling)."""
  num_classes: int
  width: int = 32

  @nn.compact
  def __call__(self, x):
    w = self.width
    for channels, stride in ((w, 1), (w, 1), (2 * w, 2), (2 * w, 1)):
      x = Conv(channels, (3, 3), stride, use_bias=False)(x)
      x = nn.relu(_norm(channels)(x))
    x = x.reshape(x.shape[0], -1)                       # [B, H/2 * W/2 * 2w]
    x = nn.relu(nn.Dense(4 * w)(x))
    return nn.Dense(self.num_classes)(x)


class BasicBlock(nn.Module):
  channels: int
  stride: int = 1

  @nn.compact
  def __call__(self, x):
    y = Conv(self.channels, (3, 3), self.stride, use_bias=False)(x)
    y = nn.relu(_norm(self.channels)(y))
    y = Conv(self.channels, (3, 3), use_bias=False)(y)
    # Zero-init the last scale so each block starts as the identity (Goyal et al. 2017).
    y = nn.GroupNorm(num_groups=_norm(self.channels).num_groups, scale_init=nn.initializers.zeros)(y)
    if x.shape[-1] != self.channels or self.stride != 1:
      x = Conv(self.channels, (1, 1), self.stride, use_bias=False)(x)
      x = _norm(self.channels)(x)
    return nn.relu(x + y)


class Bottleneck(nn.Module):
  channels: int             # the inner width; the block outputs 4 * channels
  stride: int = 1

  @nn.compact
  def __call__(self, x):
    out = 4 * self.channels
    y = nn.relu(_norm(self.channels)(Conv(self.channels, (1, 1), use_bias=False)(x)))
    y = Conv(self.channels, (3, 3), self.stride, use_bias=False)(y)
    y = nn.relu(_norm(self.channels)(y))
    y = Conv(out, (1, 1), use_bias=False)(y)
    y = nn.GroupNorm(num_groups=_norm(out).num_groups, scale_init=nn.initializers.zeros)(y)
    if x.shape[-1] != out or self.stride != 1:
      x = _norm(out)(Conv(out, (1, 1), self.stride, use_bias=False)(x))
    return nn.relu(x + y)


class CifarResNet(nn.Module):
  """He et al. 2016, section 4.2: depth = 6n + 2; stages of 16, 32, 64 channels."""
  num_classes: int
  depth: int = 20

  @nn.compact
  def __call__(self, x):
    assert (self.depth - 2) % 6 == 0, self.depth
    n = (self.depth - 2) // 6
    x = nn.relu(_norm(16)(Conv(16, (3, 3), use_bias=False)(x)))
    for stage, channels in enumerate((16, 32, 64)):
      for i in range(n):
        x = BasicBlock(channels, stride=2 if (i == 0 and stage > 0) else 1)(x)
    return nn.Dense(self.num_classes)(jnp.mean(x, axis=(1, 2)))


class ResNet(nn.Module):
  """ResNet-18 (basic blocks) / ResNet-50 (bottlenecks). Images of 64 pixels or less get the
  CIFAR stem (3x3, stride 1, no max-pool) so 32x32 inputs are not reduced to 1x1."""
  num_classes: int
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  bottleneck: bool = False

  @nn.compact
  def __call__(self, x):
    if x.shape[1] <= 64:
      x = nn.relu(_norm(64)(Conv(64, (3, 3), use_bias=False)(x)))
    else:
      x = nn.relu(_norm(64)(Conv(64, (7, 7), 2, use_bias=False)(x)))
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
    block = Bottleneck if self.bottleneck else BasicBlock
    for stage, blocks in enumerate(self.stage_sizes):
      for i in range(blocks):
        x = block(64 * 2 ** stage, stride=2 if (i == 0 and stage > 0) else 1)(x)
    return nn.Dense(self.num_classes)(jnp.mean(x, axis=(1, 2)))
