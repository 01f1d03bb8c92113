"""The only module that imports diffusers or transformers (their Flax code ends with diffusers 0.39 /
transformers 4.57.6; keeping it here means one file to change when that stack moves).

It turns a diffusers-format folder (or a Hugging Face id, via the local cache) into `SDParts`:
the three Flax modules, their parameters, the tokenizer and the scheduler config. It also saves
parts back in diffusers' format, which is how the embedded generator is stored.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

os.environ.setdefault("USE_TF", "0")     # transformers must not import TensorFlow (slow, noisy)
os.environ.setdefault("USE_TORCH", "0")  # nor PyTorch: no part of the generator needs it

import jax
import jax.numpy as jnp
import numpy as np

import diffusers
import transformers

# diffusers prints a deprecation warning per Flax class, some at import time: silence it first.
diffusers.utils.logging.set_verbosity_error()
transformers.utils.logging.set_verbosity_error()

from diffusers import (FlaxAutoencoderKL, FlaxDDIMScheduler, FlaxDPMSolverMultistepScheduler,
                       FlaxEulerDiscreteScheduler, FlaxPNDMScheduler, FlaxUNet2DConditionModel)
from diffusers.models.modeling_flax_pytorch_utils import convert_pytorch_state_dict_to_flax
from transformers import CLIPTextConfig, CLIPTokenizer, FlaxCLIPTextModel

from jaxsets.errors import UserError

SCHEDULERS = {
    "ddim": FlaxDDIMScheduler,
    "dpm_solver": FlaxDPMSolverMultistepScheduler,
    "euler": FlaxEulerDiscreteScheduler,
    "pndm": FlaxPNDMScheduler,
}
COMPONENTS = ("text_encoder", "unet", "vae")


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
  if name not in SCHEDULERS:
    raise UserError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}.")
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
_FLAX_WEIGHTS = {"text_encoder": "flax_model.msgpack", "unet": "diffusion_flax_model.msgpack",
                 "vae": "diffusion_flax_model.msgpack"}
_PT_WEIGHTS = {"text_encoder": "model.safetensors", "unet": "diffusion_pytorch_model.safetensors",
               "vae": "diffusion_pytorch_model.safetensors"}


def resolve_model_folder(model: str) -> str:
  """A local diffusers-format folder for `model` (a folder, or a Hugging Face id via its cache).

  Only configs, tokenizer files and one weights file per component are fetched: Flax msgpack
  where the repository has it, PyTorch safetensors otherwise. With HF_HUB_OFFLINE=1 the local
  cache is used, and a model missing from it is a clear error.
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
  from huggingface_hub.utils import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError)
  base = ["model_index.json", "*/config.json", "scheduler/*", "tokenizer/*"]
  try:
    folder = huggingface_hub.snapshot_download(
        model, allow_patterns=base + [f"{c}/{w}" for c, w in _FLAX_WEIGHTS.items()])
    missing = [c for c in COMPONENTS if not os.path.isfile(os.path.join(folder, c, _FLAX_WEIGHTS[c]))]
    if missing:
      folder = huggingface_hub.snapshot_download(
          model, allow_patterns=base + [f"{c}/{_PT_WEIGHTS[c]}" for c in missing])
  except RepositoryNotFoundError as e:
    raise UserError(f"Hugging Face model {model!r} not found (misspelt id, or a private/gated "
                    "repository: log in with `huggingface-cli login`).") from e
  except GatedRepoError as e:
    raise UserError(f"Hugging Face model {model!r} is gated: accept its licence on the Hub and "
                    "log in with `huggingface-cli login`.") from e
  except LocalEntryNotFoundError as e:
    raise UserError(f"weights for {model!r} are not in the local Hugging Face cache and the Hub "
                    "cannot be reached (HF_HUB_OFFLINE=1 or no network). Download them once with "
                    f"`huggingface-cli download {model}` on a machine with network, or point "
                    "generator.model at a local diffusers-format folder.") from e
  return folder


class _AsTensor(np.ndarray):
  """A numpy array with torch's `.numpy()`, so diffusers' converter takes safetensors' numpy output."""
  def numpy(self):
    return np.asarray(self)


def _load_component(kind: str, module, folder: str, dtype):
  """Parameters of one component from Flax msgpack or PyTorch safetensors (converted)."""
  sub = os.path.join(folder, kind)
  flax_file, pt_file = os.path.join(sub, _FLAX_WEIGHTS[kind]), os.path.join(sub, _PT_WEIGHTS[kind])
  if kind == "text_encoder":
    model = FlaxCLIPTextModel.from_pretrained(sub, from_pt=not os.path.isfile(flax_file),
                                              dtype=dtype, _do_init=False)
    return model[0], model[1]
  if os.path.isfile(flax_file):
    try:
      _, params = type(module).from_pretrained(sub, dtype=dtype)
    except ValueError as e:  # diffusers' own shape check
      raise UserError(f"{kind} weights do not match {kind}/config.json ({e}). The folder's weights "
                      "and configs come from different models; re-download or re-save the model.") from e
    return module, params
  if os.path.isfile(pt_file):
    import safetensors.numpy
    state = {k: v.view(_AsTensor) for k, v in safetensors.numpy.load_file(pt_file).items()}
    return module, convert_pytorch_state_dict_to_flax(state, module)
  raise UserError(f"no weights in {sub}: expected {_FLAX_WEIGHTS[kind]} or {_PT_WEIGHTS[kind]}.")


def _check_shapes(kind: str, expected, loaded) -> None:
  """Weights must match the component's config exactly (a wrong folder fails here, clearly)."""
  exp = {jax.tree_util.keystr(p): v.shape for p, v in jax.tree_util.tree_leaves_with_path(expected)}
  got = {jax.tree_util.keystr(p): np.shape(v) for p, v in jax.tree_util.tree_leaves_with_path(loaded)}
  missing, extra = sorted(set(exp) - set(got)), sorted(set(got) - set(exp))
  wrong = [k for k in exp if k in got and tuple(exp[k]) != tuple(got[k])]
  if missing or extra or wrong:
    detail = "; ".join(filter(None, [
        f"missing {missing[:3]}" if missing else "", f"unexpected {extra[:3]}" if extra else "",
        f"shape of {wrong[0]}: config says {exp[wrong[0]]}, weights have {got[wrong[0]]}" if wrong else ""]))
    raise UserError(f"{kind} weights do not match {kind}/config.json ({detail}). The folder's weights "
                    "and configs come from different models; re-download or re-save the model.")


def load_parts(model: str, dtype=jnp.float32, max_prompt_length: int = 0) -> SDParts:
  """Loads a Stable Diffusion model (folder or Hugging Face id) as `SDParts` in `dtype`."""
  folder = resolve_model_folder(model)
  for kind in COMPONENTS + ("tokenizer", "scheduler"):
    if not os.path.isdir(os.path.join(folder, kind)):
      raise UserError(f"{folder} has no {kind}/ folder: not a complete Stable Diffusion model.")
  unet = FlaxUNet2DConditionModel.from_config(
      FlaxUNet2DConditionModel.load_config(os.path.join(folder, "unet")), dtype=dtype)
  vae = FlaxAutoencoderKL.from_config(
      FlaxAutoencoderKL.load_config(os.path.join(folder, "vae")), dtype=dtype)
  text, text_params = _load_component("text_encoder", None, folder, dtype)
  _, unet_params = _load_component("unet", unet, folder, dtype)
  _, vae_params = _load_component("vae", vae, folder, dtype)
  for kind, module, params in (("unet", unet, unet_params), ("vae", vae, vae_params)):
    _check_shapes(kind, jax.eval_shape(module.init_weights, jax.random.PRNGKey(0)), params)
  _check_shapes("text_encoder", jax.eval_shape(
      lambda k: text.init_weights(k, (1, text.config.max_position_embeddings)),
      jax.random.PRNGKey(0)), text_params)
  params = {"text_encoder": text_params, "unet": unet_params, "vae": vae_params}
  # Weights are stored in fp32 or fp16; cast floating leaves to the compute dtype (jax.tree.map:
  # diffusers' own to_bf16 calls the removed jax.tree_map).
  params = jax.tree.map(lambda x: jnp.asarray(x, dtype) if jnp.issubdtype(jnp.asarray(x).dtype,
                                                                          jnp.floating) else x, params)
  with open(os.path.join(folder, "scheduler", "scheduler_config.json")) as f:
    scheduler_config = json.load(f)
  length = max_prompt_length or text.config.max_position_embeddings
  tokenizer = make_tokenizer(os.path.join(folder, "tokenizer"), length)
  return SDParts(text, unet, vae, tokenizer, scheduler_config, params)
