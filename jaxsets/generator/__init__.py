"""The text-to-image generator: real Stable Diffusion (diffusers' Flax models) or the embedded one.

Only jaxsets/generator/hf*.py modules import diffusers or transformers.
"""
from jaxsets.generator.generator import Generator, sampler_config
from jaxsets.generator.loading import load_generator
from jaxsets.generator.embedded.make import ensure_embedded
from jaxsets.generator.sampler import SamplerConfig, make_sampler

__all__ = ["Generator", "SamplerConfig", "ensure_embedded", "load_generator", "make_sampler",
           "sampler_config"]
