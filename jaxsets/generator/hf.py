"""With its hf_*.py siblings, the only modules that import diffusers or transformers (their Flax code
ends with diffusers 0.39 / transformers 4.57.6; keeping it here means few files to change when that
stack moves). hf_weights.py reads and converts weight files and imports neither.

It turns a diffusers-format folder (or a Hugging Face id, via the local cache) into `SDParts`:
the three Flax modules, their parameters, the tokenizer and the scheduler config. It also saves
parts back in diffusers' format, which is how the embedded generator is stored.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
from typing import Any

os.environ.setdefault("USE_TF", "0")     # transformers must not import TensorFlow (slow, noisy)
os.environ.setdefault("USE_TORCH", "0")  # nor PyTorch: no part of the generator needs it

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

import diffusers
import transformers

# diffusers prints a deprecation warning per Flax class, some at import time: silence it first.
diffusers.utils.logging.set_verbosity_error()
transformers.utils.logging.set_verbosity_error()

from diffusers import (FlaxAutoencoderKL, FlaxDDIMScheduler, FlaxDPMSolverMultistepScheduler,
                       FlaxEulerDiscreteScheduler, FlaxPNDMScheduler, FlaxUNet2DConditionModel)
from transformers import CLIPTextConfig, CLIPTokenizer, FlaxCLIPTextModel

from jaxsets.errors import UserError
from jaxsets.generator import hf_weights
from jaxsets.generator.config import SCHEDULERS as SCHEDULER_NAMES, check_scheduler

SCHEDULERS = {  # the names of jaxsets.generator.config.SCHEDULERS, where they are checked
    "ddim": FlaxDDIMScheduler,
    "dpm_solver": FlaxDPMSolverMultistepScheduler,
    "euler": FlaxEulerDiscreteScheduler,
    "pndm": FlaxPNDMScheduler,
}
assert tuple(SCHEDULERS) == SCHEDULER_NAMES
COMPONENTS = hf_weights.COMPONENTS


@dataclasses.dataclass(frozen=True, eq=False)
class SDParts:
  """A Stable Diffusion model as Flax modules + parameters (params = {component: pytree})."""
  text_encoder: Any        # FlaxCLIPTextModel (its `.module` is the linen module)
  unet: Any                # FlaxUNet2DConditionModel
  vae: Any                 # FlaxAutoencoderKL
  tokenizer: Any           # CLIPTokenizer
  scheduler_config: dict   # diffusers scheduler_config.json contents
  params: dict


def make_scheduler(name: str, scheduler_config: dict):
  """A diffusers Flax scheduler of kind `name`, configured like the model's own, and its state."""
  check_scheduler(name)
  config = dict(scheduler_config)
  if name == "pndm":
    config["skip_prk_steps"] = True  # as Stable Diffusion ships it
  # from_config keeps the keys this scheduler knows (betas, prediction type, spacing, ...).
  # Building it by hand with filtered kwargs silently fell back to the default *linear* betas.
  scheduler = SCHEDULERS[name].from_config(config)
  return scheduler, scheduler.create_state()


def alphas_cumprod(scheduler_config: dict) -> np.ndarray:
  """The training noise schedule ᾱ_t, float32 [num_train_timesteps]."""
  _, state = make_scheduler("ddim", scheduler_config)
  return np.asarray(state.common.alphas_cumprod)


# ----------------------------------------------------------------------------- building
def build_modules(text_config: dict, unet_config: dict, vae_config: dict, dtype=jnp.float32):
  """Modules from config dicts (random weights are made by `init_params`)."""
  text = FlaxCLIPTextModel(CLIPTextConfig(**text_config), dtype=dtype, _do_init=False)
  unet = FlaxUNet2DConditionModel.from_config(unet_config, dtype=dtype)
  vae = FlaxAutoencoderKL.from_config(vae_config, dtype=dtype)
  return text, unet, vae


def init_params(key, text, unet, vae) -> dict:
  k_text, k_unet, k_vae = jax.random.split(key, 3)
  return {
      "text_encoder": text.init_weights(k_text, (1, text.config.max_position_embeddings)),
      "unet": unet.init_weights(k_unet),
      "vae": vae.init_weights(k_vae),
  }


def make_tokenizer(folder: str, max_length: int) -> CLIPTokenizer:
  tok = CLIPTokenizer.from_pretrained(folder)
  tok.model_max_length = max_length  # unset, padding overflows (STACK.md)
  return tok


# ----------------------------------------------------------------------------- saving
def save_parts(parts: SDParts, folder: str) -> None:
  """Writes `parts` in diffusers' layout (model_index.json + one folder per component)."""
  os.makedirs(folder, exist_ok=True)
  params = jax.device_get(parts.params)
  parts.text_encoder.save_pretrained(os.path.join(folder, "text_encoder"), params=params["text_encoder"])
  parts.unet.save_pretrained(os.path.join(folder, "unet"), params=params["unet"])
  parts.vae.save_pretrained(os.path.join(folder, "vae"), params=params["vae"])
  parts.tokenizer.save_pretrained(os.path.join(folder, "tokenizer"))
  scheduler, _ = make_scheduler("ddim", parts.scheduler_config)
  scheduler.save_pretrained(os.path.join(folder, "scheduler"))
  index = {
      "_class_name": "FlaxStableDiffusionPipeline",
      "_diffusers_version": diffusers.__version__,
      "feature_extractor": [None, None],
      "safety_checker": [None, None],
      "scheduler": ["diffusers", "FlaxDDIMScheduler"],
      "text_encoder": ["transformers", "FlaxCLIPTextModel"],
      "tokenizer": ["transformers", "CLIPTokenizer"],
      "unet": ["diffusers", "FlaxUNet2DConditionModel"],
      "vae": ["diffusers", "FlaxAutoencoderKL"],
  }
  with open(os.path.join(folder, "model_index.json"), "w") as f:
    json.dump(index, f, indent=2)


# ----------------------------------------------------------------------------- loading
def resolve_model_folder(model: str, *, revision: str = "", variant: str = "") -> str:
  """A local diffusers-format folder for `model` (a folder, or a Hugging Face id via its cache).

  Only configs, tokenizer files and one weights file per component are fetched, the first kind
  the repository has of: Flax msgpack (unless a `variant` is asked for), PyTorch safetensors
  (single or sharded), pickled .bin. `revision` is a branch, tag or commit ("" = main). With
  HF_HUB_OFFLINE=1 the local cache is used, and a model missing from it is a clear error.
  """
  if os.path.isdir(model):
    if not os.path.isfile(os.path.join(model, "model_index.json")):
      raise UserError(f"{model!r} is a folder but not a diffusers model (no model_index.json). "
                      "Point generator.model at a folder saved by diffusers' save_pretrained.")
    return model
  if os.path.sep in model and model.count("/") != 1 or model.startswith((".", "~")):
    raise UserError(f"generator.model={model!r}: no such folder. Give an existing diffusers-format "
                    "folder or a Hugging Face id such as 'stabilityai/stable-diffusion-2-1-base'.")
  import huggingface_hub
  from huggingface_hub.utils import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                     RevisionNotFoundError)
  base = ["model_index.json", "*/config.json", "scheduler/*", "tokenizer/*"]
  stages = {kind: hf_weights.hub_patterns(kind, variant) for kind in COMPONENTS}
  try:
    folder, missing = None, list(COMPONENTS)
    for stage in range(max(len(s) for s in stages.values())):
      patterns = [p for kind in missing if stage < len(stages[kind]) for p in stages[kind][stage]]
      folder = huggingface_hub.snapshot_download(
          model, revision=revision or None, allow_patterns=(base if stage == 0 else []) + patterns)
      missing = [kind for kind in missing if not _has_weights(folder, kind, variant)]
      if not missing:
        break
  except RepositoryNotFoundError as e:
    raise UserError(f"Hugging Face model {model!r} not found (misspelt id, or a private/gated "
                    "repository: log in with `huggingface-cli login`).") from e
  except RevisionNotFoundError as e:
    raise UserError(f"Hugging Face model {model!r} has no revision {revision!r}: set "
                    "generator.revision to one of its branches, tags or commits ('' = main).") from e
  except GatedRepoError as e:
    raise UserError(f"Hugging Face model {model!r} is gated: accept its licence on the Hub and "
                    "log in with `huggingface-cli login`.") from e
  except LocalEntryNotFoundError as e:
    at = f" at revision {revision!r}" if revision else ""
    raise UserError(f"weights for {model!r}{at} are not in the local Hugging Face cache and the Hub "
                    "cannot be reached (HF_HUB_OFFLINE=1 or no network). Download them once with "
                    f"`huggingface-cli download {model}` on a machine with network, or point "
                    "generator.model at a local diffusers-format folder.") from e
  return folder


def _has_weights(folder: str, kind: str, variant: str) -> bool:
  return any(os.path.isfile(os.path.join(folder, kind, name))
             for name in hf_weights.weight_file_names(kind, variant))


# Files a folder must have besides the weights (checked before anything is read).
_REQUIRED_FILES = ("scheduler/scheduler_config.json", "text_encoder/config.json", "unet/config.json",
                   "vae/config.json", "tokenizer/vocab.json", "tokenizer/merges.txt")


def _check_folder(folder: str, variant: str) -> dict:
  """Every file loading needs is there (else one error naming them); returns {kind: weights path}."""
  absent = [name for name in _REQUIRED_FILES if not os.path.isfile(os.path.join(folder, name))]
  if absent:
    raise UserError(f"{folder} is not a complete Stable Diffusion model: {', '.join(absent)} "
                    "missing. A diffusers-format folder has model_index.json and scheduler/, "
                    "text_encoder/, tokenizer/, unet/, vae/; copy the missing files from the model "
                    "it came from (e.g. `huggingface-cli download MODEL`).")
  return {kind: hf_weights.find_weight_file(folder, kind, variant) for kind in COMPONENTS}


def _check_dtype(dtype) -> None:
  if not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
    raise UserError(f"dtype {jnp.dtype(dtype).name} cannot hold Stable Diffusion's weights: use "
                    "float32, bfloat16 or float16.")


def _check_vocabulary(tokenizer, text_config, folder: str) -> None:
  """Ids past the embedding table would be clamped silently inside jit: refuse the pair instead."""
  if len(tokenizer) != text_config.vocab_size:
    raise UserError(f"{folder}/tokenizer has {len(tokenizer)} tokens but text_encoder/config.json "
                    f"says vocab_size={text_config.vocab_size}: the tokenizer belongs to another "
                    "model. Copy tokenizer/ from the model the text encoder came from.")


_PROGRESS_DELAY_S = 1.0  # a load shorter than this shows no bar (the embedded model's: 0.1 s)


def load_parts(model: str, dtype=jnp.float32, max_prompt_length: int = 0, *, revision: str = "",
               variant: str = "", progress: bool = False) -> SDParts:
  """Loads a Stable Diffusion model (folder or Hugging Face id) as `SDParts` in `dtype`.

  No model is initialised: parameter shapes come from `jax.eval_shape`, and each weights file is
  converted tensor by tensor (hf_weights). `variant` picks files such as
  `diffusion_pytorch_model.fp16.safetensors`; whatever dtype the files hold, parameters come out
  in `dtype`. `progress`: a bar over the weight files' bytes on stderr, for a load that takes
  more than a second.
  """
  _check_dtype(dtype)
  folder = resolve_model_folder(model, revision=revision, variant=variant)
  weight_files = _check_folder(folder, variant)
  text_config = CLIPTextConfig.from_pretrained(os.path.join(folder, "text_encoder"))
  length = max_prompt_length or text_config.max_position_embeddings
  tokenizer = make_tokenizer(os.path.join(folder, "tokenizer"), length)
  _check_vocabulary(tokenizer, text_config, folder)
  text = FlaxCLIPTextModel(text_config, dtype=dtype, _do_init=False)
  unet = FlaxUNet2DConditionModel.from_config(
      FlaxUNet2DConditionModel.load_config(os.path.join(folder, "unet")), dtype=dtype)
  vae = FlaxAutoencoderKL.from_config(
      FlaxAutoencoderKL.load_config(os.path.join(folder, "vae")), dtype=dtype)
  key = jax.random.PRNGKey(0)
  # Shapes are traced, never run: no random weights are made only to be replaced. Tracing the
  # UNet and VAE (seconds of Python) overlaps reading the text encoder (file reads and copies,
  # which release the GIL); transformers traced the text encoder's when `text` was built.
  total = sum(hf_weights.file_bytes(path) for path in weight_files.values())
  with concurrent.futures.ThreadPoolExecutor(1) as tracer, tqdm(
      total=total, desc="load generator", unit="B", unit_scale=True, disable=not progress,
      delay=_PROGRESS_DELAY_S, dynamic_ncols=True) as bar:
    traced = {kind: tracer.submit(jax.eval_shape, module.init_weights, key)
              for kind, module in (("unet", unet), ("vae", vae))}
    params = {"text_encoder": hf_weights.load_params(weight_files["text_encoder"], "text_encoder",
                                                     text.params_shape_tree, dtype, bar.update)}
    for kind, shapes in traced.items():
      params[kind] = hf_weights.load_params(weight_files[kind], kind, shapes.result(), dtype,
                                            bar.update)
    bar.update(total - bar.n)  # the files' headers and skipped buffers: the bar ends full
  with open(os.path.join(folder, "scheduler", "scheduler_config.json")) as f:
    scheduler_config = json.load(f)
  return SDParts(text, unet, vae, tokenizer, scheduler_config, params)
