"""Image-caption pairs for pretraining the embedded generator, drawn inside `jit`.

Captions use the prompt template's vocabulary. A domain is a visual variation of the digit image
(a real foundation model knows photos from sketches; here each domain is a rendering of the
stroke image). A three-class caption "A {d} of a {c1}, {c2}, and {c3}" shows a blend dominated by
c1 with fainter c2 and c3 strokes: what the method expects of Stable Diffusion, which weights the
first class most and lets the others pull the image towards the boundary between them.
"""
from __future__ import annotations

import itertools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

# The domains the embedded generator knows, and how each renders an image x in [0, 1].
DOMAINS = ("photo", "drawing", "sketch", "painting")
BLEND = (0.6, 0.25, 0.15)   # weights of c1, c2, c3 in a three-class image
SINGLE_TEMPLATE = "A {domain} of a {c1}"


def _pool3(x, op):
  """3x3 stride-1 max (or -max of -x) pooling over [B, H, W, C], same size."""
  init = -jnp.inf
  if op == "min":
    return -_pool3(-x, "max")
  return jax.lax.reduce_window(x, init, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")


def _blur3(x):
  kernel = jnp.asarray([1.0, 2.0, 1.0]) / 4.0
  k2 = (kernel[:, None] * kernel[None, :])[:, :, None, None]  # HWIO, one channel at a time
  c = x.shape[-1]
  return jax.lax.conv_general_dilated(x, jnp.tile(k2, (1, 1, 1, c)), (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      feature_group_count=c)


def render(x: jax.Array, domain: jax.Array) -> jax.Array:
  """x: float [B, H, W, C] in [0, 1]; domain: int32 [B] indexing DOMAINS."""
  styles = jnp.stack([
      x,                                    # photo: the digit as scanned
      jnp.maximum(x, _pool3(x, "max")),     # drawing: thick marker strokes
      x ** 2.5,                             # sketch: thin, light pencil strokes
      _blur3(_blur3(x)),                    # painting: soft, blurred brush
  ])                                        # [4, B, H, W, C]
  return jnp.take_along_axis(styles, domain[None, :, None, None, None], axis=0)[0]


def caption_texts(class_names: Sequence[str], template: str):
  """Every caption, in the order of `CaptionTables`: singles [D, n], triples [D, n, n, n]."""
  n = len(class_names)
  singles = [SINGLE_TEMPLATE.format(domain=d, c1=c) for d in DOMAINS for c in class_names]
  triples = [template.format(domain=d, c1=class_names[a], c2=class_names[b], c3=class_names[c])
             for d in DOMAINS for a, b, c in itertools.product(range(n), repeat=3)]
  return singles, triples


class CaptionTables(NamedTuple):
  single: jax.Array   # int32 [D, n, L]
  triple: jax.Array   # int32 [D, n, n, n, L]
  empty: jax.Array    # int32 [L], the unconditional caption ""


def make_caption_tables(tokenize, class_names: Sequence[str], template: str) -> CaptionTables:
  """Tokenizes every caption once on the host (tokenize: list[str] -> int32 [N, L])."""
  n, d = len(class_names), len(DOMAINS)
  singles, triples = caption_texts(class_names, template)
  single = tokenize(singles).reshape(d, n, -1)
  triple = tokenize(triples).reshape(d, n, n, n, -1)
  return CaptionTables(jnp.asarray(single), jnp.asarray(triple), jnp.asarray(tokenize([""])[0]))


class Pool(NamedTuple):
  """The generator pool on device, indexed by class so a class can be sampled inside jit."""
  images: jax.Array        # float [N, H, W, C] in [0, 1]
  by_class: jax.Array      # int32 [n, max_count]: pool indices of each class (padded)
  counts: jax.Array        # int32 [n]


def make_pool(images: np.ndarray, labels: np.ndarray, num_classes: int) -> Pool:
  order = [np.flatnonzero(labels == c) for c in range(num_classes)]
  if min(len(o) for o in order) == 0:
    raise ValueError("every class needs at least one image in the generator pool")
  width = max(len(o) for o in order)
  by_class = np.stack([np.resize(o, width) for o in order]).astype(np.int32)
  return Pool(jnp.asarray(images, jnp.float32), jnp.asarray(by_class),
              jnp.asarray([len(o) for o in order], jnp.int32))


def sample_batch(key, pool: Pool, tables: CaptionTables, batch: int, p_triple: float,
                 caption_dropout: float):
  """A batch of (image float [B, H, W, C] in [0, 1], caption ids int32 [B, L])."""
  n = pool.counts.shape[0]
  k_cls, k_pick, k_dom, k_tri, k_drop = jax.random.split(key, 5)
  classes = jax.random.randint(k_cls, (batch, 3), 0, n)                      # c1, c2, c3
  slot = (jax.random.uniform(k_pick, (batch, 3)) * pool.counts[classes]).astype(jnp.int32)
  picks = pool.images[pool.by_class[classes, slot]]                          # [B, 3, H, W, C]
  triple = jax.random.bernoulli(k_tri, p_triple, (batch,))
  blended = jnp.einsum("bkhwc,k->bhwc", picks, jnp.asarray(BLEND))
  images = jnp.where(triple[:, None, None, None], blended, picks[:, 0])
  domain = jax.random.randint(k_dom, (batch,), 0, len(DOMAINS))
  images = render(images, domain)
  c1, c2, c3 = classes[:, 0], classes[:, 1], classes[:, 2]
  ids = jnp.where(triple[:, None], tables.triple[domain, c1, c2, c3], tables.single[domain, c1])
  dropped = jax.random.bernoulli(k_drop, caption_dropout, (batch,))
  ids = jnp.where(dropped[:, None], tables.empty[None, :], ids)
  return images, ids
