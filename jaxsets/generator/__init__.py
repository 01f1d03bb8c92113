"""The text-to-image generator: real Stable Diffusion (diffusers' Flax models) or the embedded one.

Only jaxsets/generator/hf*.py modules import diffusers or transformers.
"""
from jaxsets import lazy as _lazy

# On first use: each of these imports diffusers (seconds), which a config check must not wait for.
__getattr__, __dir__ = _lazy.lazy_exports(__name__, {
    "Generator": ("jaxsets.generator.generator", "Generator"),
    "sampler_config": ("jaxsets.generator.generator", "sampler_config"),
    "load_generator": ("jaxsets.generator.loading", "load_generator"),
    "ensure_embedded": ("jaxsets.generator.embedded.make", "ensure_embedded"),
    "SamplerConfig": ("jaxsets.generator.sampler", "SamplerConfig"),
    "make_sampler": ("jaxsets.generator.sampler", "make_sampler"),
})
__all__ = ["Generator", "SamplerConfig", "ensure_embedded", "load_generator", "make_sampler",
           "sampler_config"]
