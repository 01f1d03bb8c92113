"""What bfloat16 does to Stable Diffusion's attention, and what `upcast_attention` would change.

SD 2.1's 768 px UNet config asks for `upcast_attention` (scores and softmax in float32), which
diffusers' Flax UNet ignores. This measures one attention layer at SD's sizes, head dim 64,
4096 queries (the 64x64 latent of a 512 px image) against 4096 keys (self-attention) or 77
(cross-attention to the text), with query/key magnitudes set so the scaled scores have a chosen
standard deviation. Paths, all on the same bfloat16-rounded q, k, v:
  diffusers_bf16   diffusers' own FlaxAttention in bfloat16 (scores, softmax, PV in bfloat16)
  dot_product_bf16 jaxsets' route (jax.nn.dot_product_attention: float32 scores and softmax,
                   probabilities rounded to bfloat16 for PV, as PyTorch's upcast does)
  diffusers_fp32   diffusers' FlaxAttention in float32
Error: RMS of (output - float64 reference) / RMS of the reference; "bf16 output rounding" is the
error of merely rounding the exact output to bfloat16 (the floor any bf16 path has).

  python studies/issue16/attention_upcast.py [--out FILE.json]
  XLA_FLAGS=--xla_allow_excess_precision=false python studies/issue16/attention_upcast.py
(XLA on CPU may skip roundings to bfloat16 between ops; the flag makes it round every one.)
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxsets.generator import hf_attention
from jaxsets.generator.hf import diffusers  # noqa: F401  (silences diffusers' warnings first)
from diffusers.models.attention_flax import FlaxAttention

HEAD_DIM, QUERIES = 64, 4096


def selector_params(d: int, dtype):
  """Projections that pick q, k, v out of one [.., 3d] input (diffusers' module, no new code)."""
  eye = np.eye(3 * d, dtype=np.float32)
  pick = lambda i: jnp.asarray(eye[:, i * d:(i + 1) * d], dtype)
  out = np.zeros((d, 3 * d), np.float32)
  out[:, :d] = np.eye(d)
  return {"to_q": {"kernel": pick(0)}, "to_k": {"kernel": pick(1)}, "to_v": {"kernel": pick(2)},
          "to_out_0": {"kernel": jnp.asarray(out, dtype), "bias": jnp.zeros(3 * d, dtype)}}


def reference(q, k, v):
  s = (q.astype(np.float64) @ k.astype(np.float64).T) / np.sqrt(q.shape[-1])
  p = np.exp(s - s.max(-1, keepdims=True))
  return (p / p.sum(-1, keepdims=True)) @ v.astype(np.float64)


def run_path(mode: str, dtype, x, context):
  module = FlaxAttention(query_dim=3 * HEAD_DIM, heads=1, dim_head=HEAD_DIM, dtype=dtype)
  params = selector_params(HEAD_DIM, dtype)
  fn = lambda p, a, c: module.apply({"params": p}, a, c)
  with hf_attention.attention_scope(mode):
    out = jax.jit(fn)(params, jnp.asarray(x, dtype)[None], jnp.asarray(context, dtype)[None])
  return np.asarray(out[0, :, :HEAD_DIM].astype(jnp.float32), np.float64)


def measure(score_std: float, keys: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  a = np.sqrt(score_std)  # q, k ~ N(0, a^2) per component: q.k / sqrt(d) has std a^2
  q = a * rng.standard_normal((QUERIES, HEAD_DIM))
  k = a * rng.standard_normal((keys, HEAD_DIM))
  v = rng.standard_normal((keys, HEAD_DIM))
  rounded = lambda y: np.asarray(jnp.asarray(y, jnp.bfloat16).astype(jnp.float32), np.float64)
  q, k, v = rounded(q), rounded(k), rounded(v)  # every path sees the same bf16 values
  ref = reference(q, k, v)
  zeros = np.zeros_like(q)
  x = np.concatenate([q, zeros, zeros], -1)            # [T, 3d]: only q is read from it
  context = np.concatenate([zeros[:keys], k, v], -1)   # [S, 3d]: k and v
  rel = lambda y: float(np.sqrt(np.mean((y - ref) ** 2) / np.mean(ref ** 2)))
  return {"score_std": score_std, "keys": keys,
          "diffusers_bf16": rel(run_path("diffusers", jnp.bfloat16, x, context)),
          "dot_product_bf16": rel(run_path("dot_product", jnp.bfloat16, x, context)),
          "diffusers_fp32": rel(run_path("diffusers", jnp.float32, x, context)),
          "bf16_output_rounding": rel(rounded(ref)),
          "max_softmax_weight": float(np.max(_probs(q[:256], k), -1).mean())}


def _probs(q, k):
  s = (q @ k.T) / np.sqrt(q.shape[-1])
  p = np.exp(s - s.max(-1, keepdims=True))
  return p / p.sum(-1, keepdims=True)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="")
  args = parser.parse_args(argv)
  rows = [measure(std, keys) for keys in (4096, 77) for std in (1.0, 3.0, 10.0, 30.0)]
  print(f"backend {jax.default_backend()}, head dim {HEAD_DIM}, {QUERIES} queries")
  cols = ["keys", "score_std", "max_softmax_weight", "diffusers_bf16", "dot_product_bf16",
          "diffusers_fp32", "bf16_output_rounding"]
  print("| " + " | ".join(cols) + " |")
  for r in rows:
    print("| " + " | ".join(f"{r[c]:.3g}" for c in cols) + " |")
  if args.out:
    with open(args.out, "w") as f:
      json.dump({"backend": jax.default_backend(), "devices": str(jax.devices()),
                 "command": " ".join(sys.argv), "xla_flags": os.environ.get("XLA_FLAGS", ""),
                 "jax": jax.__version__, "rows": rows}, f, indent=2)


if __name__ == "__main__":
  main()
