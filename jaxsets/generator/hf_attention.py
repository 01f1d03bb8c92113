"""Stable Diffusion's attention through `jax.nn.dot_product_attention` instead of diffusers' einsums.

diffusers' Flax attention (`FlaxAttention` in the UNet, `FlaxAttentionBlock` in the VAE's mid
block) writes QK^T, softmax and PV as three einsums: XLA never sees an attention op, so no GPU
runs a fused kernel, and in bfloat16 the scores and softmax are rounded to bfloat16. That is
what a UNet config's `upcast_attention` (SD 2.1 at 768 px) exists to prevent, and diffusers'
Flax UNet ignores the flag. `jax.nn.dot_product_attention` computes scores and softmax in float32
whatever the input dtype (XLA's implementation by construction, cuDNN's flash kernel in its
accumulators), so the upcast is honoured for every model, and on NVIDIA GPUs it can run cuDNN's
fused kernel.

How: a flax method interceptor (`nn.intercept_methods`) replaces those two modules' `__call__`
while a model is applied. The modules, their parameter names and the loaded weights stay
diffusers' own; only the arithmetic between the projections changes, and only inside the
`with` block. A subclass would have to be swapped into diffusers' module globals (its transformer
block builds `FlaxAttention` by name), for the whole process; the interceptor leaves diffusers'
own path one setting away ("diffusers"), as the reference the tests compare against.

The VAE's attention (one head of 512 channels at real size, past cuDNN's head-dim limit) runs
once per image and gains no kernel, but goes the same way for its float32 softmax, which
PyTorch's VAE always upcasts. CLIP's attention (77 tokens, once per call) stays transformers'.
Float32 on CPU keeps diffusers' path under "auto": the routes differ in the last bits there
(~1e-6), which would move the embedded default's published results.
"""
from __future__ import annotations

import contextlib
import logging

import flax.linen as nn
import jax
import jax.numpy as jnp

from diffusers.models.attention_flax import FlaxAttention
from diffusers.models.vae_flax import FlaxAttentionBlock

from jaxsets.generator.config import check_attention

log = logging.getLogger("jaxsets")


def resolve_mode(mode: str, dtype, upcast_attention: bool = False) -> str:
  """"dot_product" or "diffusers" for a setting of generator.attention and the compute dtype.

  auto: diffusers' own arithmetic for float32 on CPU, where the two paths round differently in
  the last bits and the embedded default's published numbers were made with diffusers' path;
  dot_product everywhere else (GPU/TPU for speed, half precision anywhere for the float32 softmax).
  """
  check_attention(mode)
  half = jnp.dtype(dtype) != jnp.float32
  if mode == "diffusers" and half and upcast_attention:
    log.warning("generator.attention='diffusers' in %s ignores the UNet's upcast_attention: scores "
                "and softmax run in %s. 'auto' or 'dot_product' computes them in float32.",
                jnp.dtype(dtype).name, jnp.dtype(dtype).name)
  if mode != "auto":
    return mode
  return "diffusers" if jax.default_backend() == "cpu" and not half else "dot_product"


def attention_scope(mode: str):
  """A context manager under which the UNet's and VAE's attention use `mode` (resolved)."""
  if mode == "diffusers":
    return contextlib.nullcontext()
  if mode != "dot_product":
    raise ValueError(f"unresolved attention mode {mode!r}")
  return nn.intercept_methods(_route_to_dot_product)


def _route_to_dot_product(next_fun, args, kwargs, context):
  if context.method_name == "__call__" and isinstance(context.module, FlaxAttention):
    return _transformer_attention(context.module, *args, **kwargs)
  if context.method_name == "__call__" and isinstance(context.module, FlaxAttentionBlock):
    return _vae_attention(context.module, *args, **kwargs)
  return next_fun(*args, **kwargs)


def _transformer_attention(module: FlaxAttention, hidden_states, context=None, deterministic=True):
  """The UNet's self/cross attention. hidden_states [B, T, C]; context [B, S, D] (None: self)."""
  context = hidden_states if context is None else context
  split = lambda x: x.reshape(x.shape[0], x.shape[1], module.heads, module.dim_head)  # [B, T, N, H]
  q = split(module.query(hidden_states))
  k, v = split(module.key(context)), split(module.value(context))
  out = fused_attention(q, k, v, scale=module.dim_head ** -0.5)
  out = out.reshape(out.shape[0], out.shape[1], module.heads * module.dim_head)
  return module.dropout_layer(module.proj_attn(out), deterministic=deterministic)


def _vae_attention(module: FlaxAttentionBlock, hidden_states):
  """The VAE mid block's single-scale attention with its residual. hidden_states [B, h, w, C]."""
  batch, height, width, channels = hidden_states.shape
  heads = channels // module.num_head_channels if module.num_head_channels is not None else 1
  x = module.group_norm(hidden_states).reshape(batch, height * width, channels)
  split = lambda y: y.reshape(batch, height * width, heads, channels // heads)    # [B, T, N, H]
  out = fused_attention(split(module.query(x)), split(module.key(x)), split(module.value(x)),
                        scale=(channels / heads) ** -0.5)
  out = module.proj_attn(out.reshape(batch, height * width, channels))
  return out.reshape(batch, height, width, channels) + hidden_states


def fused_attention(q, k, v, *, scale: float):
  """softmax(q k^T * scale) v with float32 scores and softmax. q [B, T, N, H]; k, v [B, S, N, H].

  cuDNN's fused kernel where it takes the case (NVIDIA GPU, bf16/fp16, head dim a multiple of 8
  up to its limit; it rejects the rest while tracing), XLA's implementation otherwise.
  """
  if jax.default_backend() == "gpu" and q.dtype in (jnp.bfloat16, jnp.float16):
    try:
      return jax.nn.dot_product_attention(q, k, v, scale=scale, implementation="cudnn")
    except (NotImplementedError, ValueError, RuntimeError) as e:
      log.debug("cuDNN attention declined %s x %s: %s; using XLA's", q.shape, k.shape, e)
  if jax.default_backend() == "cpu" and q.dtype == jnp.float16:
    # XLA's CPU dot refuses float16 inputs with float32 accumulation (its float32 scores).
    out = jax.nn.dot_product_attention(*(x.astype(jnp.float32) for x in (q, k, v)), scale=scale,
                                       implementation="xla")
    return out.astype(jnp.float16)
  return jax.nn.dot_product_attention(q, k, v, scale=scale, implementation="xla")
