"""tests/tiny_sd.py's random Stable Diffusion, built in about a second.

Flax's `init_weights` runs each model forward op by op to find its parameters: about a minute
for the tiny UNet and VAE on two busy cores. Here the parameter shapes come from `jax.eval_shape`
(no computation) and the values are drawn on the host: kernels and embeddings N(0, 0.02^2),
norm scales 1, biases 0. Enough for tests of shapes, compilation and plumbing, not of numerics
against diffusers (tests/test_generator_sampler.py does those on Flax's own initialisation).
"""
import jax
import numpy as np

import tiny_sd
from jaxsets.generator import hf

_flax_init_params = hf.init_params  # the original: save_fast_tiny_sd swaps hf.init_params


def _from_shapes(shapes, seed: int):
  rng = np.random.default_rng(seed)  # test weights, not a learner: host randomness is fine

  def draw(path, leaf):
    name = jax.tree_util.keystr(path[-1:])
    if "scale" in name:
      return np.ones(leaf.shape, leaf.dtype)
    if "bias" in name:
      return np.zeros(leaf.shape, leaf.dtype)
    return (0.02 * rng.standard_normal(leaf.shape)).astype(leaf.dtype)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _init_params_from_shapes(key, text, unet, vae) -> dict:
  del key
  shapes = jax.eval_shape(lambda k: _flax_init_params(k, text, unet, vae), jax.random.key(0))
  return _from_shapes(shapes, seed=0)


def save_fast_tiny_sd(folder: str, channels: int = 3) -> str:
  """tiny_sd.save_tiny_sd(folder, channels) with parameters from their shapes; returns `folder`."""
  hf.init_params = _init_params_from_shapes
  try:
    return tiny_sd.save_tiny_sd(folder, channels)
  finally:
    hf.init_params = _flax_init_params
