"""diffusers' own FlaxStableDiffusionPipeline, called as its documentation shows: weights
replicated and prompt ids sharded over the devices, `jit=True` (its pmap-compiled sampler).
Its `jit=False` path fails for batch > 1 with a float guidance scale (shared STACK.md)."""
from __future__ import annotations

import jax
import numpy as np


class FlaxPipelinePeer:
  name = "diffusers FlaxStableDiffusionPipeline (jit=True)"

  def __init__(self, folder: str, *, steps: int, guidance: float, size: int):
    from diffusers import FlaxStableDiffusionPipeline
    from flax.jax_utils import replicate
    self.pipe, params = FlaxStableDiffusionPipeline.from_pretrained(
        folder, safety_checker=None, feature_extractor=None)
    self.params = replicate(params)
    self.steps, self.guidance, self.size = steps, guidance, size

  def generate(self, prompts: list[str], seed: int) -> np.ndarray:
    """Text in, float images [B, H, W, C] in [0, 1] on the host (the pipeline returns numpy)."""
    from flax.training.common_utils import shard
    ids = shard(self.pipe.prepare_inputs(prompts))            # [devices, B / devices, L]
    rng = jax.random.split(jax.random.PRNGKey(seed), jax.device_count())
    out = self.pipe(ids, self.params, rng, num_inference_steps=self.steps,
                    guidance_scale=self.guidance, height=self.size, width=self.size, jit=True)
    return out.images.reshape((-1,) + out.images.shape[2:])
