"""The jitted text-to-image sampler: CLIP text encoding, classifier-free guidance, a `lax.fori_loop`
over a diffusers Flax scheduler, VAE decode, resize to the classifier's resolution.

Prompt ids, the negative prompt, the random key and the guidance scale are traced arguments, so
a new prompt, seed or guidance scale reuses the compiled program. The negative prompt comes
either as ids (encoded with the prompts) or as its CLIP hidden state, encoded once by the
caller (`encode_text`) and broadcast over the batch. The batch is sharded over a one-axis mesh;
parameters are replicated. Static settings live in `SamplerConfig`.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from jaxsets import sharding
from jaxsets.generator import hf, hf_attention
from jaxsets.generator.images import to_uint8_images


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
  """Static sampler settings (changing one recompiles)."""
  scheduler: str = "ddim"          # ddim | dpm_solver | euler | pndm
  num_inference_steps: int = 25
  image_size: int = 512            # the generator's native resolution (pixels)
  out_size: int = 32               # the classifier's resolution
  out_channels: int = 3
  attention: str = "auto"          # auto | dot_product | diffusers (hf_attention.resolve_mode)


def encode_text(parts: hf.SDParts, text_params, ids: jax.Array) -> jax.Array:
  """ids int32 [B, L] -> CLIP last hidden state [B, L, D], exactly as diffusers' pipeline calls it."""
  position_ids = jnp.broadcast_to(jnp.arange(ids.shape[-1]), ids.shape)
  out = parts.text_encoder.module.apply({"params": text_params}, ids, jnp.ones_like(ids), position_ids)
  return out[0]


def text_context(parts: hf.SDParts, text_params, prompt_ids: jax.Array, negative) -> jax.Array:
  """[2B, L, D]: the negative prompt's hidden states, then the prompts' (diffusers' order, so one
  UNet call serves both halves). negative: int32 ids [B, L], or a hidden state [L, D] already
  encoded, broadcast over the batch (a row's encoding does not depend on the other rows)."""
  positive = encode_text(parts, text_params, prompt_ids)
  if jnp.issubdtype(negative.dtype, jnp.integer):
    negative = encode_text(parts, text_params, negative)
  else:
    negative = jnp.broadcast_to(negative.astype(positive.dtype), positive.shape)
  return jnp.concatenate([negative, positive])


def latent_shape(parts: hf.SDParts, cfg: SamplerConfig, batch: int) -> tuple[int, ...]:
  """[B, C_latent, h, w] for the VAE's downsampling factor (8 for real SD)."""
  factor = 2 ** (len(parts.vae.config.block_out_channels) - 1)
  side = cfg.image_size // factor
  return (batch, parts.unet.config.in_channels, side, side)


def denoise_and_decode(parts: hf.SDParts, cfg: SamplerConfig, params, prompt_ids, negative,
                       latents, guidance_scale) -> jax.Array:
  """The sampler body. prompt_ids int32 [B, L]; negative: ids int32 [B, L] or hidden state [L, D];
  latents float32 [B, C, h, w] (unit Gaussian); guidance_scale float32 []. Returns the VAE's
  output, float [B, C_img, H, W] in ~[-1, 1]."""
  dtype = jax.tree.leaves(params["unet"])[0].dtype
  # The scope only decides how the UNet and VAE are traced here; it is left before jit compiles.
  upcast = bool(parts.unet.config.get("upcast_attention", False))  # diffusers' Flax UNet ignores it
  with hf_attention.attention_scope(hf_attention.resolve_mode(cfg.attention, dtype, upcast)):
    return _denoise_and_decode(parts, cfg, params, prompt_ids, negative, latents, guidance_scale)


def _denoise_and_decode(parts, cfg, params, prompt_ids, negative, latents, guidance_scale):
  scheduler, scheduler_state = hf.make_scheduler(cfg.scheduler, parts.scheduler_config)
  context = text_context(parts, params["text_encoder"], prompt_ids, negative)  # [2B, L, D]
  state = scheduler.set_timesteps(scheduler_state, cfg.num_inference_steps, latents.shape)
  latents = latents * state.init_noise_sigma
  guidance_scale = jnp.asarray(guidance_scale, jnp.float32)

  def step(i, carry):
    x, state = carry                                    # x: [B, C, h, w]
    t = jnp.asarray(state.timesteps, jnp.int32)[i]
    x_in = scheduler.scale_model_input(state, jnp.concatenate([x, x]), t)
    eps = parts.unet.apply({"params": params["unet"]}, x_in,
                           jnp.broadcast_to(t, (x_in.shape[0],)),
                           encoder_hidden_states=context).sample
    eps_uncond, eps_text = jnp.split(eps.astype(jnp.float32), 2)
    eps = eps_uncond + guidance_scale * (eps_text - eps_uncond)
    return scheduler.step(state, eps, t, x, return_dict=False)

  # Every timestep the scheduler set (PNDM's PLMS has n + 1; diffusers' Flax pipeline stops at n).
  num_steps = state.timesteps.shape[0]
  latents, _ = jax.lax.fori_loop(0, num_steps, step, (latents, state))
  return decode_latents(parts, params["vae"], latents / parts.vae.config.scaling_factor)


def decode_latents(parts: hf.SDParts, vae_params, latents) -> jax.Array:
  """latents [B, C, h, w] (unscaled) -> the VAE's output [B, C_img, H, W]. Handed over
  channels-last: diffusers' Flax decode guesses the layout from the last axis and would take a
  channels-first latent of width C (4: a 32-pixel SD image) as channels-last, silently."""
  dtype = jax.tree.leaves(vae_params)[0].dtype
  return parts.vae.apply({"params": vae_params}, jnp.transpose(latents, (0, 2, 3, 1)).astype(dtype),
                         method=parts.vae.decode).sample


def make_sampler(parts: hf.SDParts, cfg: SamplerConfig, mesh=None) -> Callable:
  """Returns `sample(params, prompt_ids, negative, key, guidance_scale) -> uint8 images`.

  prompt_ids: int32 [B, L] with B a multiple of the mesh size; negative: int32 ids [B, L]
  (batch-sharded) or a hidden state [L, D] (replicated), each kept as the caller placed it;
  key: a typed PRNG key; guidance_scale: float32 scalar.
  """
  mesh = mesh or sharding.make_mesh()
  batch, rep = sharding.batch_sharding(mesh), sharding.replicated(mesh)

  def sample(params, prompt_ids, negative, key, guidance_scale):
    shape = latent_shape(parts, cfg, prompt_ids.shape[0])
    # Row i's noise comes from fold_in(key, i): an image does not depend on the batch size,
    # on padding rows, or on how many devices share the batch.
    rows = jnp.arange(shape[0])
    latents = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), shape[1:]))(rows)
    latents = jax.lax.with_sharding_constraint(latents, batch)
    decoded = denoise_and_decode(parts, cfg, params, prompt_ids, negative, latents, guidance_scale)
    return to_uint8_images(decoded, cfg.out_size, cfg.out_channels)

  # None: the negative keeps its own placement (ids batch-sharded, a hidden state replicated).
  return jax.jit(sample, in_shardings=(rep, batch, None, rep, rep), out_shardings=batch)


def make_latent_sampler(parts: hf.SDParts, cfg: SamplerConfig, mesh=None) -> Callable:
  """Like `make_sampler` but takes the initial latents float32 [B, C, h, w] instead of a key and
  returns the VAE's float output [B, C, H, W] (for comparing against diffusers' own pipeline)."""
  mesh = mesh or sharding.make_mesh()
  batch, rep = sharding.batch_sharding(mesh), sharding.replicated(mesh)
  fn = lambda params, ids, neg, latents, g: denoise_and_decode(parts, cfg, params, ids, neg, latents, g)
  return jax.jit(fn, in_shardings=(rep, batch, None, batch, rep), out_shardings=batch)
