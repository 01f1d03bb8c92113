"""Builds the embedded generator from a pool of labelled images and saves it in diffusers' format."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxsets.generator import hf
from jaxsets.generator.embedded import architecture, captions, vocab
from jaxsets.generator.embedded.pretrain import (PretrainConfig, latent_scaling_factor,
                                                 train_denoiser, train_vae)
from jaxsets.generator.tokens import tokenize

DESCRIPTION_FILE = "jaxsets_embedded.json"


def _bar(total: int, desc: str, quiet: bool):
  bar = tqdm(total=total, desc=desc, unit="step", disable=quiet, dynamic_ncols=True)

  def update(step: int, loss: float):
    bar.update(step - bar.n)
    bar.set_postfix(loss=f"{loss:.4f}")
  return bar, update


def build_embedded(pool_images: np.ndarray, pool_labels: np.ndarray, class_names: Sequence[str],
                   template: str, cfg: PretrainConfig, folder: str, *,
                   prediction_type: str = "epsilon", quiet: bool = False,
                   describe=None) -> hf.SDParts:
  """Pretrains the tiny SD on `pool_images` (uint8 [N, h, w, C]) and writes it to `folder`.

  `describe(parts) -> dict`, if given, is written beside the weights as jaxsets_embedded.json.
  The folder appears whole or not at all: everything is written to a temporary sibling first.
  """
  key = jax.random.key(cfg.seed)
  k_init, k_vae, k_unet = jax.random.split(key, 3)
  channels = pool_images.shape[-1]
  parent = os.path.dirname(os.path.abspath(folder))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=".building-", dir=parent)

  tok_dir = os.path.join(tmp, "tokenizer")
  vocab.write_vocab(tok_dir, list(class_names) + list(captions.DOMAINS) + [template])
  tokenizer = hf.make_tokenizer(tok_dir, architecture.MAX_PROMPT_TOKENS)
  v = tokenizer.get_vocab()
  text, unet, vae = hf.build_modules(
      architecture.text_config(len(v), v[vocab.BOS], v[vocab.EOS]),
      architecture.unet_config(), architecture.vae_config(channels))
  params = hf.init_params(k_init, text, unet, vae)
  scheduler_config = architecture.scheduler_config(prediction_type=prediction_type)

  # uint8 [N, h, w, C] -> float [N, 16, 16, C] in [0, 1] (bilinear upsampling of the 8x8 digits).
  size = architecture.IMAGE_SIZE
  x = jnp.asarray(pool_images, jnp.float32) / 255.0
  x = jax.image.resize(x, (x.shape[0], size, size, channels), method="linear")
  pool = captions.make_pool(np.asarray(x), np.asarray(pool_labels), len(class_names))

  bar, update = _bar(cfg.vae_steps, "pretrain VAE", quiet)
  params["vae"] = train_vae(vae, params["vae"], pool, cfg, k_vae, update)
  bar.close()
  scale = latent_scaling_factor(vae, params["vae"], pool)
  vae = type(vae).from_config({**dict(vae.config), "scaling_factor": scale})

  tables = captions.make_caption_tables(
      lambda texts: tokenize(tokenizer, texts), class_names, template)
  bar, update = _bar(cfg.steps, "pretrain UNet+CLIP", quiet)
  trained = train_denoiser(text, unet, vae, params, pool, tables,
                           hf.alphas_cumprod(scheduler_config), prediction_type, scale, cfg,
                           k_unet, update)
  bar.close()
  params.update(trained)
  parts = hf.SDParts(text, unet, vae, tokenizer, scheduler_config, params)
  hf.save_parts(parts, tmp)
  if describe is not None:
    with open(os.path.join(tmp, DESCRIPTION_FILE), "w") as f:
      json.dump(describe(parts), f, indent=2)
  if os.path.isdir(folder):  # a concurrent build finished first: keep one, drop ours
    import shutil
    shutil.rmtree(tmp)
  else:
    os.replace(tmp, folder)
  return parts
