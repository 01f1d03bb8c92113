"""`Generator`: a loaded Stable Diffusion model, its tokenizer and its compiled sampler, on a mesh."""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsets import sharding
from jaxsets.generator import hf
from jaxsets.generator.config import GeneratorConfig
from jaxsets.generator.sampler import SamplerConfig, encode_text, make_sampler
from jaxsets.generator.tokens import tokenize


class Generator:
  """Text to uint8 images at the classifier's resolution.

  `generate_ids` is the jitted path (ids in, images out, no host work); `generate` tokenizes
  first. Neither recompiles for a new prompt, seed or guidance scale; a new batch size does.
  The negative prompt is tokenized and encoded once, here and whenever it is set, and enters
  the sampler as a replicated hidden state [L, D].
  """

  def __init__(self, parts: hf.SDParts, cfg: SamplerConfig, *, guidance_scale: float = 7.5,
               negative_prompt: str = "", mesh=None):
    self.parts, self.cfg = parts, cfg
    self.mesh = mesh or sharding.make_mesh()
    self.params = sharding.replicate(parts.params, self.mesh)
    self.guidance_scale = float(guidance_scale)
    self.max_length = int(parts.tokenizer.model_max_length)
    self._sample = make_sampler(parts, cfg, self.mesh)
    rep = sharding.replicated(self.mesh)
    self._encode = jax.jit(lambda p, ids: encode_text(parts, p, ids)[0], in_shardings=(rep, rep),
                           out_shardings=rep)
    self.negative_prompt = negative_prompt

  @property
  def negative_prompt(self) -> str:
    return self._negative_prompt

  @negative_prompt.setter
  def negative_prompt(self, text: str) -> None:
    self._negative_prompt = text
    ids = sharding.replicate(jnp.asarray(self.tokenize([text])), self.mesh)       # [1, L]
    self._negative_context = self._encode(self.params["text_encoder"], ids)        # [L, D]

  def tokenize(self, prompts: Sequence[str]) -> np.ndarray:
    """int32 [N, L] (truncating, with a warning, prompts past the text encoder's limit)."""
    return tokenize(self.parts.tokenizer, prompts, self.max_length)

  def generate_ids(self, prompt_ids, key, guidance_scale=None, negative_ids=None) -> jax.Array:
    """prompt_ids int32 [B, L]; key: typed PRNG key -> uint8 [B, S, S, C] (sharded over the mesh).

    negative_ids int32 [B, L], if given, replace the generator's negative prompt for this call
    (they are encoded with the prompts)."""
    b = prompt_ids.shape[0]
    padded = sharding.padded_batch_size(b, self.mesh)
    # The batch must split evenly over the devices; extra rows are discarded.
    pad = lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], padded - b, axis=0)]) if padded != b else a
    # Ids computed by another jitted stage arrive replicated; the sampler takes them batch-sharded.
    prompt_ids = sharding.shard_batch(pad(jnp.asarray(prompt_ids, jnp.int32)), self.mesh)
    if negative_ids is None:
      negative = self._negative_context
    else:
      negative = sharding.shard_batch(pad(jnp.asarray(negative_ids, jnp.int32)), self.mesh)
    g = self.guidance_scale if guidance_scale is None else guidance_scale
    images = self._sample(self.params, prompt_ids, negative, key, jnp.float32(g))
    return images[:b] if padded != b else images

  def generate(self, prompts: Sequence[str], key, guidance_scale=None) -> np.ndarray:
    """uint8 [len(prompts), S, S, C] on the host."""
    return np.asarray(jax.device_get(self.generate_ids(self.tokenize(prompts), key, guidance_scale)))


def sampler_config(gen: GeneratorConfig, parts: hf.SDParts, *, out_size: int,
                   out_channels: int) -> SamplerConfig:
  """The static sampler settings from the generator's config, the output images' size and
  channels, and the model's own geometry."""
  factor = 2 ** (len(parts.vae.config.block_out_channels) - 1)
  return SamplerConfig(scheduler=gen.scheduler, num_inference_steps=gen.num_inference_steps,
                       image_size=int(parts.unet.config.sample_size) * factor,
                       out_size=int(out_size), out_channels=int(out_channels),
                       attention=gen.attention)
