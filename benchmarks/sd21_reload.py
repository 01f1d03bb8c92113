"""What the authors' per-step pipeline reload costs at the size they ran: Stable Diffusion 2.1.

No real SD weights are on these machines, so this builds the published SD 2.1 architecture
(stabilityai/stable-diffusion-2-1's unet, text_encoder and vae configs) with random weights in
float16, as the authors loaded it (`torch_dtype=torch.float16`), writes it once in the hub's layout
(sd_hub_layout.py; about 2.6 GB of safetensors: the main branch's float32 files would be twice
that, which would only slow the peer down), and times `StableDiffusionPipeline.from_pretrained` on it:
the call their make_image.py makes at the start of every step. Loading time depends on the size
of the tensors, not their values. The page cache is warm after the first load, which favours the
peer; their `pipe.to("cuda")` copy comes on top and is not measured (no GPU here).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_hub_layout  # noqa: E402
import sd_state_names  # noqa: E402

# The published configs of stabilityai/stable-diffusion-2-1 (768-v), architecture fields only
# (the keyword arguments of diffusers' and transformers' PyTorch classes).
_SPEC = sd_hub_layout.arch_configs("sd21")
UNET = {k: v for k, v in _SPEC["unet"].items() if not k.startswith("_")}
TEXT = sd_state_names.text_kwargs(_SPEC)
VAE = {k: v for k, v in _SPEC["vae"].items() if not k.startswith("_")}
# Parameter counts of the released checkpoint: a check that the sizes (channels, layers, widths)
# were rebuilt right; head counts and attention flags do not change them.
PUBLISHED_PARAMS = sd_hub_layout.PUBLISHED_PARAMS["sd21"]


def build_folder(folder: str, tokenizer_folder: str | None = None) -> dict:
  """Writes the random-weight SD 2.1 folder once (sd_hub_layout, float16: about 2.6 GB) and
  returns {part: parameters}. The tokenizer is CLIP's real one where open_clip_torch's BPE file
  is installed, otherwise `tokenizer_folder`'s (its size does not matter for loading)."""
  import clip_bpe
  use_given = clip_bpe.bpe_path() is None and tokenizer_folder is not None
  return sd_hub_layout.build("sd21", folder, dtype="float16",
                             tokenizer_folder=tokenizer_folder if use_given else None)


def load(folder: str):
  """The authors' per-step call (make_image.py), on the CPU."""
  import torch
  from diffusers import StableDiffusionPipeline
  pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float16,
                                                 safety_checker=None, requires_safety_checker=False)
  pipe.set_progress_bar_config(disable=True)
  return pipe


def param_counts(pipe) -> dict:
  """{part: parameters}; equal to PUBLISHED_PARAMS when the architecture is SD 2.1's."""
  return {k: sum(p.numel() for p in getattr(pipe, k).parameters()) for k in PUBLISHED_PARAMS}


def folder_bytes(folder: str) -> int:
  return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(folder)
             for f in files)
