"""The names and shapes of Stable Diffusion's PyTorch state dicts (what a hub download's safetensors
hold), derived from the Flax modules or read from the PyTorch ones.

  state_shapes        from the Flax modules' `jax.eval_shape` (nothing allocated, no PyTorch
                      needed), renamed and transposed to PyTorch's layout: what sd_hub_layout writes
  torch_state_shapes  from the PyTorch modules on the `meta` device: the reference a test holds
                      the first equal to

A spec is sd_hub_layout.arch_configs' {part: config.json content}.
"""
from __future__ import annotations

import os
import sys

# The VAE's mid-block attention under its pre-0.15 diffusers names, as files saved in late 2022 have.
_OLD_VAE_ATTENTION = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
_LISTS = {"down_blocks", "up_blocks", "resnets", "attentions", "downsamplers", "upsamplers",
          "transformer_blocks", "to_out", "net"}
# The UNet's Flax attention names its projections as diffusers' old attention block did; PyTorch's
# UNet has the current names. (The VAE's files keep the old ones: see the docstring.)
_UNET_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v"}


def state_shapes(spec: dict) -> dict:
  """{part: {name: (shape, kind)}} as the hub's PyTorch files hold them, kind "F" (float) or
  "I64", derived from the Flax modules' parameter shapes (jax.eval_shape: nothing allocated, no
  PyTorch needed). `torch_state_shapes` gives the same from PyTorch; a test holds them equal."""
  import diffusers
  import jax
  import transformers
  from diffusers import FlaxAutoencoderKL, FlaxUNet2DConditionModel
  from flax.traverse_util import flatten_dict
  from transformers import CLIPTextConfig, FlaxCLIPTextModel
  diffusers.utils.logging.set_verbosity_error()  # a deprecation warning per Flax class
  transformers.utils.logging.set_verbosity_error()
  key = jax.random.PRNGKey(0)
  text = FlaxCLIPTextModel(CLIPTextConfig(**text_kwargs(spec)), _do_init=False)
  trees = {
      "text_encoder": jax.eval_shape(lambda k: text.init_weights(k, (1, 77)), key),
      "unet": jax.eval_shape(FlaxUNet2DConditionModel.from_config(_strip(spec["unet"])).init_weights, key),
      "vae": jax.eval_shape(FlaxAutoencoderKL.from_config(_strip(spec["vae"])).init_weights, key)}
  out = {}
  for part, tree in trees.items():
    state = {}
    for path, leaf in flatten_dict(tree).items():
      names = []
      for name in path[:-1]:
        head, _, index = name.rpartition("_")
        name = f"{head}.{index}" if head in _LISTS and index.isdigit() else name
        names.append(_UNET_ATTENTION.get(name, name) if part == "unet" else name)
      shape = tuple(leaf.shape)
      if path[-1] == "kernel":  # conv HWIO -> OIHW, dense [in, out] -> [out, in]
        shape = (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else shape[::-1]
      names.append("bias" if path[-1] == "bias" else "weight")
      state[".".join(names)] = (shape, "F")
    out[part] = state
  out["text_encoder"]["text_model.embeddings.position_ids"] = (
      (1, spec["text_encoder"]["max_position_embeddings"]), "I64")
  return out


def _strip(config: dict) -> dict:
  return {k: v for k, v in config.items() if not k.startswith("_")}


def text_kwargs(spec: dict) -> dict:
  return {k: v for k, v in _strip(spec["text_encoder"]).items()
          if k not in ("architectures", "torch_dtype", "transformers_version", "model_type")}


def torch_state_shapes(spec: dict) -> dict:
  """What `state_shapes` gives, from the PyTorch modules on the `meta` device (the reference)."""
  if os.environ.get("USE_TORCH", "").upper() in ("0", "FALSE", "NO", "OFF") and "diffusers" in sys.modules:
    raise SystemExit("diffusers was imported with USE_TORCH=0 in this process: run the builder in "
                     "its own process (python benchmarks/sd_hub_layout.py ...)")
  os.environ["USE_TORCH"] = "1"
  import torch
  from diffusers import AutoencoderKL, UNet2DConditionModel
  from transformers import CLIPTextConfig, CLIPTextModel
  with torch.device("meta"):  # names and shapes only: nothing is allocated
    modules = {"text_encoder": CLIPTextModel(CLIPTextConfig(**text_kwargs(spec))),
               "unet": UNet2DConditionModel(**_strip(spec["unet"])),
               "vae": AutoencoderKL(**_strip(spec["vae"]))}
  out = {}
  for part, module in modules.items():
    state = {name: (tuple(t.shape), "F") for name, t in module.state_dict().items()}
    if part == "vae":  # the mid block's attention under its pre-0.15 names (see the docstring)
      state = {_old_vae_name(n): v for n, v in state.items()}
    if part == "text_encoder":
      state["text_model.embeddings.position_ids"] = ((1, spec["text_encoder"]["max_position_embeddings"]), "I64")
    out[part] = state
  return out


def _old_vae_name(name: str) -> str:
  for new, old in _OLD_VAE_ATTENTION.items():
    name = name.replace(f".attentions.0.{new}.", f".attentions.0.{old}.")
  return name
