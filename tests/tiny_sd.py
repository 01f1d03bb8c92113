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
      names.append(f"{head}.{index}" if head in lists and index.isdigit() else part)
    leaf, value = path[-1], np.asarray(value)
    if leaf == "kernel":
      value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
    names.append("bias" if leaf == "bias" else "weight")
    out[".".join(names)] = np.ascontiguousarray(value)
  return out
