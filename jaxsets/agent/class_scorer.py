"""A class slot's logits from one small MLP shared by every class (`agent.class_head="shared"`).

logit_c = w . tanh(A context + B f_c), where context [..., H] is the actor's features
(plus, for an autoregressive policy, the embedding of the choices made so far) and f_c [..., k]
is class c's own state: its validation accuracy, its share of the support set, ... and, for
slots after c1, whether c is the class already chosen for an earlier slot. The weights A, B, w
are the same for every class, so the parameters do not grow with n and a lesson learned on one
class ("few images and low accuracy: pick it", "repeat c1") holds for all. A per-class Dense
head must instead learn each class's logit separately.

There is deliberately no per-class bias: classes differ only through their state. A learned,
state-independent preference for one class is what a greedy roll-out turns into the same class
for every step (measured: with a bias, three default runs delivered 290 to 400 images of one
digit); without it the greedy choice moves on as the chosen class's count and accuracy change.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


class SharedClassScorer(nn.Module):
  num_classes: int
  width: int = 32

  @nn.compact
  def __call__(self, context: jax.Array, class_features: jax.Array) -> jax.Array:
    """context [..., H], class_features [..., n, k] -> logits float32 [..., n]."""
    orth = nn.initializers.orthogonal
    # A context and B f_c computed apart and added: n x (H + k) x width as one Dense on the
    # concatenation would repeat the context's product n times.
    from_context = nn.Dense(self.width, kernel_init=orth(math.sqrt(2.0)), name="context")(context)
    from_class = nn.Dense(self.width, use_bias=False, kernel_init=orth(math.sqrt(2.0)),
                          name="class_features")(class_features)
    hidden = nn.tanh(from_context[..., None, :] + from_class)                    # [..., n, width]
    # Gain 0.01 as for the other policy heads: the first policy is near uniform.
    return nn.Dense(1, kernel_init=orth(0.01), name="score")(hidden)[..., 0]      # [..., n]
