"""A tiny random Stable Diffusion saved in diffusers' format: the tests' stand-in for real weights."""
import os

import jax

from jaxsets.generator import hf
from jaxsets.generator.embedded import architecture, vocab

WORDS = ["A photo of a zero, one, and two", "drawing sketch painting three four"]


def save_tiny_sd(folder: str, channels: int = 3, seed: int = 0) -> str:
  """Random weights, SD's layout; returns `folder`."""
  tok_dir = os.path.join(folder, "tokenizer")
  vocab.write_vocab(tok_dir, WORDS)
  tokenizer = hf.make_tokenizer(tok_dir, architecture.MAX_PROMPT_TOKENS)
  v = tokenizer.get_vocab()
  text, unet, vae = hf.build_modules(architecture.text_config(len(v), v[vocab.BOS], v[vocab.EOS]),
                                     architecture.unet_config(),
                                     architecture.vae_config(channels, scaling_factor=0.5))
  params = hf.init_params(jax.random.key(seed), text, unet, vae)
  hf.save_parts(hf.SDParts(text, unet, vae, tokenizer, architecture.scheduler_config(), params), folder)
  return folder


# diffusers' VAE keeps the old attention names in Flax; its PyTorch Attention (as on the hub) uses these.
_PYTORCH_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
_PYTORCH_FILES = {"text_encoder": ("flax_model.msgpack", "model"),
                  "unet": ("diffusion_flax_model.msgpack", "diffusion_pytorch_model"),
                  "vae": ("diffusion_flax_model.msgpack", "diffusion_pytorch_model")}


def flax_to_pytorch_names(params) -> dict:
  """The inverse of diffusers' PyTorch->Flax renaming, for writing a safetensors file in the
  layout a PyTorch checkpoint has (conv kernels OIHW, linear weights [out, in], norms 'weight')."""
  import numpy as np
  from flax.traverse_util import flatten_dict
  lists = {"down_blocks", "up_blocks", "resnets", "attentions", "downsamplers", "upsamplers",
           "transformer_blocks", "to_out", "net"}
  out = {}
  for path, value in flatten_dict(params).items():
    names = []
    for part in path[:-1]:
      head, _, index = part.rpartition("_")
      names.append(f"{head}.{index}" if head in lists and index.isdigit()
                   else _PYTORCH_ATTENTION.get(part, part))
    leaf, value = path[-1], np.asarray(value)
    if leaf == "kernel":
      value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
    names.append("bias" if leaf == "bias" else "weight")
    out[".".join(names)] = np.ascontiguousarray(value)
  return out


def write_pytorch_layout(flax_folder: str, folder: str, dtype="float32", variant: str = "") -> str:
  """A copy of `flax_folder` laid out as the hub's Stable Diffusion repositories are: PyTorch
  safetensors for all three components (`model.safetensors`, `diffusion_pytorch_model.safetensors`,
  with `.{variant}` before the suffix if given) in `dtype`, no Flax weights. Returns `folder`."""
  import shutil

  import numpy as np
  import safetensors.numpy
  from flax import serialization
  shutil.copytree(flax_folder, folder)
  infix = f".{variant}" if variant else ""
  for kind, (flax_name, stem) in _PYTORCH_FILES.items():
    with open(os.path.join(folder, kind, flax_name), "rb") as f:
      params = serialization.msgpack_restore(f.read())
    os.remove(os.path.join(folder, kind, flax_name))
    tensors = {k: v.astype(dtype) for k, v in flax_to_pytorch_names(params).items()}
    safetensors.numpy.save_file(tensors, os.path.join(folder, kind, f"{stem}{infix}.safetensors"),
                                metadata={"format": "pt"})
  return folder
