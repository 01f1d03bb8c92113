"""Finding the generator a config asks for: the cached embedded model or real SD weights.
(Making the embedded model when it is not cached: embedded/make.py.)"""
from __future__ import annotations

import hashlib
import json
import os

import jax
import jax.numpy as jnp

from jaxsets.errors import UserError
from jaxsets.generator import hf, hf_attention
from jaxsets.generator.config import GeneratorConfig
from jaxsets.generator.embedded.build import DESCRIPTION_FILE
from jaxsets.generator.generator import Generator, sampler_config

# Bump when the embedded model's architecture, training recipe or the bits its training computes
# change: old caches are ignored. 2: trained without YNNPACK's fusions (jaxsets/xla_cpu.py).
EMBEDDED_FORMAT = 2
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def compute_dtype(config):
  """generator.dtype of a run config as a jnp dtype (see generator_dtype)."""
  return generator_dtype(GeneratorConfig.from_config(config.generator))


def generator_dtype(gen: GeneratorConfig):
  """gen.dtype as a jnp dtype. "auto": bfloat16 for real Stable Diffusion on a GPU or TPU;
  float32 on CPU (bf16 sampled slower there, STACK.md) and for the embedded model (its results)."""
  name = gen.dtype
  if name == "auto":
    accelerated = jax.default_backend() in ("gpu", "tpu")
    name = "bfloat16" if accelerated and gen.model != "embedded" else "float32"
  if name not in _DTYPES:
    raise UserError(f"generator.dtype={name!r}: use one of auto, {', '.join(_DTYPES)}.")
  return _DTYPES[name]


def cache_dir(config) -> str:
  return (config.generator.cache_dir or os.environ.get("JAXSETS_CACHE")
          or os.path.join(os.path.expanduser("~"), ".cache", "jaxsets"))


def embedded_folder(config) -> str:
  """Where the embedded generator for this config lives: keyed by everything that shapes it."""
  recipe = {"format": EMBEDDED_FORMAT, "pretrain": config.pretrain.to_dict(),
            "data": config.data.name, "template": config.prompts.template}
  digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
  return os.path.join(cache_dir(config), "generators", f"embedded-{digest}")


def describe_embedded(folder: str) -> dict:
  """The metadata the pretraining wrote (recognition rate etc.), or {}."""
  path = os.path.join(folder, DESCRIPTION_FILE)
  if not os.path.isfile(path):
    return {}
  with open(path) as f:
    return json.load(f)


def model_folder(config) -> str:
  """A diffusers-format folder or a Hugging Face id, with a clear error when it is missing."""
  model = config.generator.model
  if model != "embedded":
    return model
  folder = embedded_folder(config)
  if not os.path.isfile(os.path.join(folder, "model_index.json")):
    raise UserError(f"the embedded generator for this config is not built yet (looked in {folder}). "
                    f"Build it once (a few minutes on a CPU) with: "
                    f"jaxsets pretrain-generator --config CONFIG (the same --config and overrides).")
  return folder


def check_generator_config(config):
  """check_generator for a run config's `generator` section."""
  return check_generator(GeneratorConfig.from_config(config.generator))


def check_generator(gen: GeneratorConfig):
  """Refuses a bad generator.dtype, generator.attention or generator.scheduler name, or a
  sampler setting out of range (UserError), before anything is loaded; returns the compute dtype."""
  if gen.num_inference_steps < 1:
    raise UserError(f"generator.num_inference_steps={gen.num_inference_steps} must be at least 1 "
                    "(the sampler's denoising steps; the embedded default uses 10, real SD 25).")
  if gen.guidance_scale < 0:
    raise UserError(f"generator.guidance_scale={gen.guidance_scale} must be 0 or above "
                    "(classifier-free guidance: 1 is the prompt alone, 0 ignores it).")
  if gen.max_prompt_length < 0:
    raise UserError(f"generator.max_prompt_length={gen.max_prompt_length} must be 0 (the "
                    "tokenizer's own limit) or a number of tokens.")
  dtype = generator_dtype(gen)
  hf_attention.resolve_mode(gen.attention, dtype)
  hf.check_scheduler(gen.scheduler)
  return dtype


def load_generator(config, mesh=None) -> Generator:
  """The generator `config.generator` names, compiled for the data's resolution and channels."""
  return load_model(GeneratorConfig.from_config(config.generator), model_folder(config),
                    image_size=config.data.image_size, channels=config.data.channels, mesh=mesh)


def load_model(gen: GeneratorConfig, folder: str, *, image_size: int, channels: int,
               mesh=None) -> Generator:
  """The generator in `folder` (a diffusers folder or a Hugging Face id) with `gen`'s settings,
  its images resized to uint8 [B, image_size, image_size, channels]."""
  dtype = check_generator(gen)
  parts = hf.load_parts(folder, dtype=dtype, max_prompt_length=gen.max_prompt_length,
                        revision=gen.revision, variant=gen.variant)
  return Generator(parts, sampler_config(gen, parts, out_size=image_size, out_channels=channels),
                   guidance_scale=gen.guidance_scale, negative_prompt=gen.negative_prompt,
                   mesh=mesh)
