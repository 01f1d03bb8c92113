"""Text-to-image for the public API: load Stable Diffusion (a Hugging Face id, a diffusers folder or
the embedded model of a config) as a `Generator`, and the prompt book that turns actions into ids.

The returned `Generator` is a small object around one compiled sampler:
  generator.tokenize(prompts: list[str]) -> int32 [N, L]           (host)
  generator.generate_ids(ids int32 [B, L], key) -> uint8 [B, S, S, C]  (traceable under jax.jit)
  generator.generate(prompts: list[str], key) -> numpy uint8 [N, S, S, C]
A new prompt, seed or guidance scale reuses the compiled program; a new batch size compiles once.
"""
from __future__ import annotations

from typing import Sequence

from jaxsets.errors import UserError

TEMPLATE = "A {domain} of a {c1}, {c2}, and {c3}"


def load_generator(model: str, *, image_size: int, channels: int = 3, dtype: str = "auto",
                   scheduler: str = "ddim", num_inference_steps: int = 25,
                   guidance_scale: float = 7.5, negative_prompt: str = "",
                   max_prompt_length: int = 0, attention: str = "auto", revision: str = "",
                   variant: str = "", mesh=None, quiet: bool = True):
  """A Stable Diffusion `Generator` whose images are resized to the classifier's resolution.

  Args:
    model: a Hugging Face id ("stabilityai/stable-diffusion-2-1-base": fetched once, then read
      from the local cache; with HF_HUB_OFFLINE=1 only the cache) or a local folder in diffusers'
      layout (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/), with Flax
      msgpack or PyTorch safetensors weights. For the embedded model use
      `load_generator_from_config`.
    image_size, channels: the output images, uint8 [B, image_size, image_size, channels].
    dtype: "auto" | "float32" | "bfloat16" | "float16" (compute and parameter dtype); auto is
      bfloat16 on a GPU or TPU and float32 on CPU (where bfloat16 is slower).
    scheduler: "ddim" | "dpm_solver" | "euler" | "pndm"; num_inference_steps: its steps (static).
    guidance_scale: classifier-free guidance (a traced argument: changing it does not recompile).
    negative_prompt: encoded once here (and again when `generator.negative_prompt` is set).
    attention: "auto" | "dot_product" | "diffusers": how the UNet and VAE attend
      (jaxsets/generator/hf_attention.py); auto is diffusers' own arithmetic for float32 on CPU.
    revision: a branch, tag or commit of a Hugging Face id ("" = main).
    variant: weight files with this infix, e.g. "fp16" for `diffusion_pytorch_model.fp16.safetensors`
      ("" = the plain files); whatever the files hold, parameters are cast to `dtype`.
    mesh: a one-axis `jax.sharding.Mesh` (default: every device); the batch is split over it.
    quiet: False shows a progress bar on stderr while the weights load (when that takes over a
      second).

  Example:
    >>> import jax, jaxsets
    >>> generator = jaxsets.load_generator("stabilityai/stable-diffusion-2-1-base",
    ...                                    image_size=32, channels=3, num_inference_steps=4)
    >>> images = generator.generate(["A photo of a zero, one, and two"] * 2, jax.random.key(0))
    >>> images.shape, images.dtype
    ((2, 32, 32, 3), dtype('uint8'))
  """
  from jaxsets.generator import loading
  from jaxsets.generator.config import GeneratorConfig

  if model == "embedded":
    raise UserError("load_generator('embedded'): the embedded generator depends on a config "
                    "(its pretraining recipe and data); use "
                    "jaxsets.load_generator_from_config(jaxsets.load_config('configs/digits.py')).")
  gen = GeneratorConfig(model=model, dtype=dtype, scheduler=scheduler,
                        num_inference_steps=int(num_inference_steps),
                        guidance_scale=float(guidance_scale), negative_prompt=negative_prompt,
                        max_prompt_length=int(max_prompt_length), attention=attention,
                        revision=revision, variant=variant)
  return loading.load_model(gen, model, image_size=int(image_size), channels=int(channels),
                            mesh=mesh, quiet=quiet)


def load_generator_from_config(config, *, mesh=None, quiet: bool = True):
  """The generator a run config names (`config.generator`, `config.data` for the output size).

  With `generator.model = "embedded"` (configs/digits.py) the tiny Stable Diffusion is pretrained
  first if it is not in the cache ($JAXSETS_CACHE or ~/.cache/jaxsets): about 6 minutes on a
  2-core CPU, once; later calls load it in a second.

  Example:
    >>> import jaxsets
    >>> config = jaxsets.load_config("configs/digits.py")               # doctest: +SKIP
    >>> generator = jaxsets.load_generator_from_config(config)          # doctest: +SKIP
  """
  from jaxsets.generator import loading
  from jaxsets.generator.embedded import make

  if config.generator.model == "embedded":
    make.ensure_embedded(config, quiet=quiet)
  return loading.load_generator(config, mesh, quiet=quiet)


def make_prompt_book(generator, class_names: Sequence[str], *,
                     domains: Sequence[str] = ("photo",), template: str = TEMPLATE):
  """The agent's dictionary: action int32 [..., 4] = (domain, c1, c2, c3) -> prompt.

  `book.ids(actions)` assembles CLIP ids int32 [..., L] inside jit (no host tokenizer, no
  recompile for a new action); `book.text(action)` gives the prompt string. `template` must use
  {domain}, {c1}, {c2} and {c3} once each.

  Example:
    >>> import jax.numpy as jnp, jaxsets
    >>> generator = jaxsets.load_generator("stabilityai/stable-diffusion-2-1-base",
    ...                                    image_size=32, channels=3, num_inference_steps=4)
    >>> book = jaxsets.make_prompt_book(generator, ["zero", "one", "two"], domains=["photo"])
    >>> book.text([0, 2, 0, 1])
    'A photo of a two, zero, and one'
    >>> bool((book.ids(jnp.array([[0, 2, 0, 1]])) == generator.tokenize([book.text([0, 2, 0, 1])])).all())
    True
  """
  from jaxsets import prompts

  return prompts.make_prompt_book(generator.parts.tokenizer, template, tuple(domains),
                                  tuple(class_names), generator.max_length)
