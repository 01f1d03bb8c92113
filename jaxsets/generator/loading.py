"""Finding the generator a config asks for: the cached embedded model or real SD weights.
(Making the embedded model when it is not cached: embedded/make.py.)"""
from __future__ import annotations

import hashlib
import json
import os

from jaxsets.errors import UserError
from jaxsets.generator import hf
from jaxsets.generator.config import GeneratorConfig, check_generator, generator_dtype
from jaxsets.generator.embedded.build import DESCRIPTION_FILE
from jaxsets.generator.generator import Generator, sampler_config

# Bump when the embedded model's architecture, training recipe or the bits its training computes
# change: old caches are ignored. 2: trained without YNNPACK's fusions (jaxsets/xla_cpu.py).
EMBEDDED_FORMAT = 2


def compute_dtype(config):
  """generator.dtype of a run config as a jnp dtype (see generator_dtype)."""
  return generator_dtype(GeneratorConfig.from_config(config.generator))


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


def load_generator(config, mesh=None, *, quiet: bool = True) -> Generator:
  """The generator `config.generator` names, compiled for the data's resolution and channels."""
  return load_model(GeneratorConfig.from_config(config.generator), model_folder(config),
                    image_size=config.data.image_size, channels=config.data.channels, mesh=mesh,
                    quiet=quiet)


def load_model(gen: GeneratorConfig, folder: str, *, image_size: int, channels: int,
               mesh=None, quiet: bool = True) -> Generator:
  """The generator in `folder` (a diffusers folder or a Hugging Face id) with `gen`'s settings,
  its images resized to uint8 [B, image_size, image_size, channels]. Unless `quiet`, a load that
  takes over a second shows a progress bar."""
  dtype = check_generator(gen)
  parts = hf.load_parts(folder, dtype=dtype, max_prompt_length=gen.max_prompt_length,
                        revision=gen.revision, variant=gen.variant, progress=not quiet)
  return Generator(parts, sampler_config(gen, parts, out_size=image_size, out_channels=channels),
                   guidance_scale=gen.guidance_scale, negative_prompt=gen.negative_prompt,
                   mesh=mesh)
