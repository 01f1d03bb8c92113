"""GeneratorConfig: the `generator` config section, typed and checked once at the boundary.
(Which names are valid for dtype, attention and scheduler: loading.check_generator_config.)"""
from __future__ import annotations

import dataclasses
from typing import Any

from jaxsets import config_types


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
