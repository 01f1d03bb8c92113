"""Pretraining the embedded generator: first the VAE (16x16 digits <-> 8x8x4 latents), then the
UNet and CLIP text encoder together on latents, with SD's noise schedule and loss.

Every stage is a pure jitted step; `train_*` drive it from a Python loop. Not `lax.scan` over
steps: on CPU, XLA runs convolution gradients inside a scan 20-50x slower (jax issue #12868;
measured here: 7.8 s against 0.3 s per VAE step), and dispatching one step costs microseconds.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxsets import config_types
from jaxsets.generator.embedded import captions

REPORT_EVERY = 25  # steps between progress-bar updates (each reads the loss: one device sync)


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
  steps: int = 3000
  vae_steps: int = 600
  batch_size: int = 64
  learning_rate: float = 2e-3
  ema_decay: float = 0.999
  caption_dropout: float = 0.1
  p_triple: float = 0.5          # share of three-class captions (blends)
  min_snr_gamma: float = 5.0     # Min-SNR loss weighting (Hang et al. 2023); 0 = plain MSE
  seed: int = 0

  @classmethod
  def from_config(cls, c: ml_collections.ConfigDict) -> "PretrainConfig":
    """`config.pretrain`, each value checked for its kind and range before anything trains."""
    cfg = cls(**config_types.read_section(cls, c, "pretrain."))
    limits = [("steps", cfg.steps >= 1, "at least 1"),
              ("vae_steps", cfg.vae_steps >= 1, "at least 1"),
              ("batch_size", cfg.batch_size >= 1, "at least 1"),
              ("learning_rate", cfg.learning_rate > 0, "above 0"),
              ("ema_decay", 0 <= cfg.ema_decay < 1, "in [0, 1)"),
              ("caption_dropout", 0 <= cfg.caption_dropout < 1, "in [0, 1)"),
              ("p_triple", 0 <= cfg.p_triple <= 1, "in [0, 1] (a share of the captions)"),
              ("min_snr_gamma", cfg.min_snr_gamma >= 0, "0 (plain MSE) or above")]
    config_types.refuse([f"pretrain.{name}={getattr(cfg, name)!r} must be {what}"
                         for name, ok, what in limits if not ok])
    return cfg


def _adam(cfg: PretrainConfig, steps: int):
  warmup = min(100, max(1, steps // 10))
  schedule = optax.warmup_cosine_decay_schedule(0.0, cfg.learning_rate, warmup, max(steps, warmup + 1),
                                                end_value=cfg.learning_rate * 0.05)
  return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))


def _run_steps(step_fn: Callable, carry, steps: int, progress: Callable[[int, float], None]):
  """carry = step_fn(carry, i) -> (carry, loss) for i in 0..steps-1, reporting now and then."""
  for i in range(steps):
    carry, loss = step_fn(carry, jnp.int32(i))
    if (i + 1) % REPORT_EVERY == 0 or i + 1 == steps:
      progress(i + 1, float(loss))
  return carry


def pixels_for_vae(images: jax.Array) -> jax.Array:
  """float [B, H, W, C] in [0, 1] -> diffusers' VAE input [B, C, H, W] in [-1, 1]."""
  return jnp.transpose(images * 2.0 - 1.0, (0, 3, 1, 2))


# ----------------------------------------------------------------------------------- VAE
def train_vae(vae, params, pool: captions.Pool, cfg: PretrainConfig, key,
              progress=lambda step, loss: None):
  """A small-KL autoencoder (SD's VAE recipe without the perceptual and GAN terms)."""
  tx = _adam(cfg, cfg.vae_steps)
  n = pool.images.shape[0]

  def loss_fn(p, x, k):
    dist = vae.apply({"params": p}, x, method=vae.encode).latent_dist
    recon = vae.apply({"params": p}, dist.sample(k), method=vae.decode).sample
    return jnp.mean(jnp.abs(recon - x)) + jnp.mean((recon - x) ** 2) + 1e-5 * jnp.mean(dist.kl())

  def step(carry, i):
    p, opt = carry
    k_idx, k_dom, k_z = jax.random.split(jax.random.fold_in(key, i), 3)
    idx = jax.random.randint(k_idx, (cfg.batch_size,), 0, n)
    domain = jax.random.randint(k_dom, (cfg.batch_size,), 0, len(captions.DOMAINS))
    x = pixels_for_vae(captions.render(pool.images[idx], domain))
    loss, grads = jax.value_and_grad(loss_fn)(p, x, k_z)
    updates, opt = tx.update(grads, opt, p)
    return (optax.apply_updates(p, updates), opt), loss

  params, _ = _run_steps(jax.jit(step), (params, tx.init(params)), cfg.vae_steps, progress)
  return params


def latent_scaling_factor(vae, params, pool: captions.Pool) -> float:
  """1 / std of the latents, SD's recipe (0.18215 for SD 1.x), so the UNet sees unit variance."""
  x = pixels_for_vae(captions.render(pool.images, jnp.zeros(pool.images.shape[0], jnp.int32)))
  mean = jax.jit(lambda p, x: vae.apply({"params": p}, x, method=vae.encode).latent_dist.mean)(params, x)
  return float(1.0 / jnp.std(mean))


# ------------------------------------------------------------------------ UNet + text encoder
def train_denoiser(text, unet, vae, params, pool: captions.Pool, tables: captions.CaptionTables,
                   alphas_cumprod: np.ndarray, prediction_type: str, scaling_factor: float,
                   cfg: PretrainConfig, key, progress=lambda step, loss: None) -> dict:
  """Trains params["unet"] and params["text_encoder"] jointly; returns their EMA (as SD does)."""
  trainable = {"text_encoder": params["text_encoder"], "unet": params["unet"]}
  tx = _adam(cfg, cfg.steps)
  abar = jnp.asarray(alphas_cumprod, jnp.float32)       # [T]
  num_t = abar.shape[0]

  def loss_fn(p, latents, ids, t, noise):
    position_ids = jnp.broadcast_to(jnp.arange(ids.shape[-1]), ids.shape)
    context = text.module.apply({"params": p["text_encoder"]}, ids, jnp.ones_like(ids), position_ids)[0]
    a = abar[t][:, None, None, None]
    noisy = jnp.sqrt(a) * latents + jnp.sqrt(1 - a) * noise
    pred = unet.apply({"params": p["unet"]}, noisy, t, encoder_hidden_states=context).sample
    target = noise if prediction_type == "epsilon" else jnp.sqrt(a) * noise - jnp.sqrt(1 - a) * latents
    per_example = jnp.mean((pred - target) ** 2, axis=(1, 2, 3))
    if cfg.min_snr_gamma > 0:
      snr = abar[t] / (1 - abar[t])
      weight = jnp.minimum(snr, cfg.min_snr_gamma) / (snr if prediction_type == "epsilon" else snr + 1)
      per_example = per_example * weight
    return per_example.mean()

  def step(carry, i):
    p, opt, ema = carry
    k_batch, k_t, k_noise = jax.random.split(jax.random.fold_in(key, i), 3)
    images, ids = captions.sample_batch(k_batch, pool, tables, cfg.batch_size, cfg.p_triple,
                                        cfg.caption_dropout)
    dist = vae.apply({"params": params["vae"]}, pixels_for_vae(images), method=vae.encode).latent_dist
    # diffusers' Flax VAE encodes to NHWC; its UNet takes NCHW.
    latents = jnp.transpose(jax.lax.stop_gradient(dist.mean), (0, 3, 1, 2)) * scaling_factor  # [B, 4, 8, 8]
    t = jax.random.randint(k_t, (cfg.batch_size,), 0, num_t)
    noise = jax.random.normal(k_noise, latents.shape)
    loss, grads = jax.value_and_grad(loss_fn)(p, latents, ids, t, noise)
    updates, opt = tx.update(grads, opt, p)
    p = optax.apply_updates(p, updates)
    decay = jnp.minimum(cfg.ema_decay, (1.0 + i) / (10.0 + i))          # EMA warm-up
    ema = jax.tree.map(lambda e, q: decay * e + (1 - decay) * q, ema, p)
    return (p, opt, ema), loss

  _, _, ema = _run_steps(jax.jit(step, donate_argnums=0),
                         (trainable, tx.init(trainable), jax.tree.map(jnp.copy, trainable)),
                         cfg.steps, progress)
  return ema
