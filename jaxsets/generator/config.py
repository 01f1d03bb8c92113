"""GeneratorConfig: the `generator` config section, typed and checked once at the boundary.

Light on purpose (no diffusers, no model code): a bad value is refused before anything slow is
imported. hf.py and hf_attention.py take their scheduler and attention names from here.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jaxsets import config_types
from jaxsets.errors import UserError

SCHEDULERS = ("ddim", "dpm_solver", "euler", "pndm")
ATTENTION_MODES = ("auto", "dot_product", "diffusers")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
  """The text-to-image model and its sampler (configs/digits.py, `generator`)."""
  model: str                    # "embedded", a Hugging Face id or a diffusers folder
  cache_dir: str = ""
  revision: str = ""
  variant: str = ""
  dtype: str = "auto"
  attention: str = "auto"
  scheduler: str = "ddim"
  num_inference_steps: int = 25
  guidance_scale: float = 7.5   # traced by the sampler: a new value does not recompile
  negative_prompt: str = ""
  max_prompt_length: int = 0

  @classmethod
  def from_config(cls, section: Any) -> "GeneratorConfig":
    return cls(**config_types.read_section(cls, section, "generator."))


def check_scheduler(name: str) -> None:
  """A UserError naming the choices unless `name` is a scheduler jaxsets can build."""
  if name not in SCHEDULERS:
    raise UserError(f"generator.scheduler={name!r}: unknown scheduler; use one of "
                    f"{', '.join(SCHEDULERS)}.")


def check_attention(mode: str) -> None:
  if mode not in ATTENTION_MODES:
    raise UserError(f"generator.attention={mode!r}: use one of {', '.join(ATTENTION_MODES)}.")


def generator_dtype(gen: GeneratorConfig):
  """gen.dtype as a jnp dtype. "auto": bfloat16 for real Stable Diffusion on a GPU or TPU;
  float32 on CPU (bf16 sampled slower there, STACK.md) and for the embedded model (its results)."""
  name = gen.dtype
  if name == "auto":
    accelerated = jax.default_backend() in ("gpu", "tpu")
    name = "bfloat16" if accelerated and gen.model != "embedded" else "float32"
  if name not in DTYPES:
    raise UserError(f"generator.dtype={name!r}: use one of auto, {', '.join(DTYPES)}.")
  return DTYPES[name]


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
  check_attention(gen.attention)
  check_scheduler(gen.scheduler)
  return dtype
