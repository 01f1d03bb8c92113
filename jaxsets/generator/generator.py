"""`Generator`: a loaded Stable Diffusion model, its tokenizer and its compiled sampler, on a mesh."""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsets import sharding
from jaxsets.generator import hf
from jaxsets.generator.sampler import SamplerConfig, make_sampler
from jaxsets.generator.tokens import tokenize


class Generator:
  """Text to uint8 images at the classifier's resolution.

  `generate_ids` is the jitted path (ids in, images out, no host work); `generate` tokenizes
  first. Neither recompiles for a new prompt, seed or guidance scale; a new batch size does.
  """

  def __init__(self, parts: hf.SDParts, cfg: SamplerConfig, *, guidance_scale: float = 7.5,
               negative_prompt: str = "", mesh=None):
    self.parts, self.cfg = parts, cfg
    self.mesh = mesh or sharding.make_mesh()
    self.params = sharding.replicate(parts.params, self.mesh)
    self.guidance_scale = float(guidance_scale)
    self.negative_prompt = negative_prompt
    self.max_length = int(parts.tokenizer.model_max_length)
    self._sample = make_sampler(parts, cfg, self.mesh)

  def tokenize(self, prompts: Sequence[str]) -> np.ndarray:
    """int32 [N, L] (truncating, with a warning, prompts past the text encoder's limit)."""
    return tokenize(self.parts.tokenizer, prompts, self.max_length)

  def generate_ids(self, prompt_ids, key, guidance_scale=None, negative_ids=None) -> jax.Array:
    """prompt_ids int32 [B, L]; key: typed PRNG key -> uint8 [B, S, S, C] (sharded over the mesh)."""
    b = prompt_ids.shape[0]
    if negative_ids is None:
      negative_ids = np.broadcast_to(self.tokenize([self.negative_prompt]), prompt_ids.shape)
    padded = sharding.padded_batch_size(b, self.mesh)
    if padded != b:  # the batch must split evenly over the devices; extra rows are discarded
      pad = lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], padded - b, axis=0)])
      prompt_ids, negative_ids = pad(jnp.asarray(prompt_ids)), pad(jnp.asarray(negative_ids))
    g = self.guidance_scale if guidance_scale is None else guidance_scale
    # Ids computed by another jitted stage arrive replicated; the sampler takes them batch-sharded.
    prompt_ids, negative_ids = sharding.shard_batch((jnp.asarray(prompt_ids, jnp.int32),
                                                     jnp.asarray(negative_ids, jnp.int32)), self.mesh)
    images = self._sample(self.params, prompt_ids, negative_ids, key, jnp.float32(g))
    return images[:b] if padded != b else images

  def generate(self, prompts: Sequence[str], key, guidance_scale=None) -> np.ndarray:
    """uint8 [len(prompts), S, S, C] on the host."""
    return np.asarray(jax.device_get(self.generate_ids(self.tokenize(prompts), key, guidance_scale)))


def sampler_config(config, parts: hf.SDParts) -> SamplerConfig:
  """The static sampler settings from the run config and the model's own geometry."""
  factor = 2 ** (len(parts.vae.config.block_out_channels) - 1)
  return SamplerConfig(scheduler=config.generator.scheduler,
                       num_inference_steps=int(config.generator.num_inference_steps),
                       image_size=int(parts.unet.config.sample_size) * factor,
                       out_size=int(config.data.image_size), out_channels=int(config.data.channels))
