"""The same tiny Stable Diffusion weights for every generation peer.

jaxsets and diffusers' Flax pipeline read the diffusers-format Flax folder as it is; diffusers'
PyTorch pipeline gets the very same numbers converted here (Flax [in, out] kernels and HWIO conv
kernels transposed, Flax module names mapped back to PyTorch's). `check_same_weights` in
bench_generation proves the conversion: both pipelines, started from the same latents, must
produce the same images.
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np

# Flax names a list entry `down_blocks_0`; PyTorch `down_blocks.0`.
_LISTS = {"down_blocks", "up_blocks", "resnets", "attentions", "downsamplers", "upsamplers",
          "transformer_blocks", "to_out", "net"}
# The VAE's Flax attention block keeps diffusers' old names; its PyTorch Attention uses these.
_OLD_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def flax_to_torch_state(params) -> dict:
  """A Flax UNet/VAE parameter tree -> {PyTorch name: float32 numpy array in PyTorch layout}."""
  from flax.traverse_util import flatten_dict
  out = {}
  for path, value in flatten_dict(params).items():
    names = []
    for part in path[:-1]:
      head, _, index = part.rpartition("_")
      if head in _LISTS and index.isdigit():
        names.append(f"{head}.{index}")
      else:
        names.append(_OLD_ATTENTION.get(part, part))
    leaf, value = path[-1], np.asarray(value, np.float32)
    if leaf == "kernel":  # conv HWIO -> OIHW, dense [in, out] -> [out, in]
      value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
    names.append("bias" if leaf == "bias" else "weight")
    out[".".join(names)] = np.ascontiguousarray(value)
  return out


def embedded_or_random_folder(config, scratch: str, *, random_weights: bool = False) -> tuple[str, str]:
  """(folder, kind): the cached embedded generator for `config` if it is built (the loop's real
  weights), otherwise random weights at the same architecture (speed does not depend on them)."""
  from jaxsets.generator import loading
  folder = loading.embedded_folder(config)
  if not random_weights and os.path.isfile(os.path.join(folder, "model_index.json")):
    return folder, "embedded (pretrained)"
  folder = os.path.join(scratch, "tiny_sd_random")
  if not os.path.isfile(os.path.join(folder, "model_index.json")):
    _save_random(folder, config)
  return folder, "random weights, embedded architecture"


def _save_random(folder: str, config) -> None:
  import jax

  from jaxsets.generator import hf
  from jaxsets.generator.embedded import architecture, vocab
  names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
  words = [config.prompts.template.format(domain=" ".join(config.prompts.domains), c1=names[0],
                                          c2=names[1], c3=names[2]), " ".join(names)]
  tok_dir = os.path.join(folder, "tokenizer")
  vocab.write_vocab(tok_dir, words)
  tokenizer = hf.make_tokenizer(tok_dir, architecture.MAX_PROMPT_TOKENS)
  v = tokenizer.get_vocab()
  text, unet, vae = hf.build_modules(architecture.text_config(len(v), v[vocab.BOS], v[vocab.EOS]),
                                     architecture.unet_config(), architecture.vae_config(1))
  params = hf.init_params(jax.random.key(0), text, unet, vae)
  hf.save_parts(hf.SDParts(text, unet, vae, tokenizer, architecture.scheduler_config(), params),
                folder)


def torch_pipeline_folder(flax_folder: str, out: str) -> str:
  """Writes `flax_folder`'s weights as a PyTorch diffusers folder at `out` (once) and returns it.
  Loading it with strict=True is the check that every tensor found its place."""
  if os.path.isfile(os.path.join(out, "model_index.json")):
    return out
  os.environ.setdefault("USE_TORCH", "1")
  import torch
  from diffusers import (AutoencoderKL, DDIMScheduler, FlaxAutoencoderKL, FlaxUNet2DConditionModel,
                         StableDiffusionPipeline, UNet2DConditionModel)
  from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, FlaxCLIPTextModel

  tmp = out + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  modules = {}
  for kind, flax_cls, torch_cls in (("unet", FlaxUNet2DConditionModel, UNet2DConditionModel),
                                    ("vae", FlaxAutoencoderKL, AutoencoderKL)):
    _, params = flax_cls.from_pretrained(os.path.join(flax_folder, kind))
    with open(os.path.join(flax_folder, kind, "config.json")) as f:
      cfg = {k: v for k, v in json.load(f).items() if not k.startswith("_")}
    for flax_only in ("dtype", "split_head_dim", "use_memory_efficient_attention"):
      cfg.pop(flax_only, None)
    model = torch_cls.from_config(cfg)
    state = {k: torch.from_numpy(v) for k, v in flax_to_torch_state(params).items()}
    model.load_state_dict(state, strict=True)
    modules[kind] = model.eval()
  # transformers' and diffusers' own from_flax paths leave meta tensors / fail on this stack, so
  # every component goes through the same converter and a strict load.
  _, text_params = FlaxCLIPTextModel.from_pretrained(os.path.join(flax_folder, "text_encoder"),
                                                     _do_init=False)
  text = CLIPTextModel(CLIPTextConfig.from_pretrained(os.path.join(flax_folder, "text_encoder")))
  text.load_state_dict({k: torch.from_numpy(v) for k, v in flax_to_torch_state(text_params).items()},
                       strict=True)
  tokenizer = CLIPTokenizer.from_pretrained(os.path.join(flax_folder, "tokenizer"))
  with open(os.path.join(flax_folder, "scheduler", "scheduler_config.json")) as f:
    scheduler = DDIMScheduler.from_config(json.load(f))
  pipe = StableDiffusionPipeline(vae=modules["vae"], text_encoder=text.eval(), tokenizer=tokenizer,
                                 unet=modules["unet"], scheduler=scheduler, safety_checker=None,
                                 feature_extractor=None, requires_safety_checker=False)
  pipe.save_pretrained(tmp, safe_serialization=True)
  os.replace(tmp, out)
  return out
