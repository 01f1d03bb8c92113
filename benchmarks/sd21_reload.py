"""What the authors' per-step pipeline reload costs at the size they ran: Stable Diffusion 2.1.

No real SD weights are on these machines, so this builds the published SD 2.1 architecture
(stabilityai/stable-diffusion-2-1's unet, text_encoder and vae configs) with random weights in
float16, as the authors loaded it (`torch_dtype=torch.float16`), writes it once as a diffusers
folder (about 2.6 GB of safetensors), and times `StableDiffusionPipeline.from_pretrained` on it:
the call their make_image.py makes at the start of every step. Loading time depends on the size
of the tensors, not their values. The page cache is warm after the first load, which favours the
peer; their `pipe.to("cuda")` copy comes on top and is not measured (no GPU here).
"""
from __future__ import annotations

import os
import shutil

# The published configs of stabilityai/stable-diffusion-2-1 (768-v), architecture fields only.
UNET = dict(
    sample_size=96, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
    cross_attention_dim=1024, use_linear_projection=True, upcast_attention=True,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
TEXT = dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
            num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu",
            projection_dim=512, bos_token_id=0, eos_token_id=2, pad_token_id=1)
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
           block_out_channels=(128, 256, 512, 512), sample_size=768,
           down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                 prediction_type="v_prediction", clip_sample=False, set_alpha_to_one=False,
                 steps_offset=1)
# Parameter counts of the released checkpoint: a check that the sizes (channels, layers, widths)
# were rebuilt right; head counts and attention flags do not change them.
PUBLISHED_PARAMS = {"unet": 865_910_724, "text_encoder": 340_387_840, "vae": 83_653_863}


def build_folder(folder: str, tokenizer_folder: str) -> None:
  """Writes the random-weight SD 2.1 pipeline to `folder` once (about 20 s and 2.6 GB). The
  tokenizer is the embedded one (its vocabulary's size does not matter for loading)."""
  if os.path.isfile(os.path.join(folder, "model_index.json")):
    return
  import torch
  from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
  from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
  torch.manual_seed(0)
  parts = {"unet": UNet2DConditionModel(**UNET), "text_encoder": CLIPTextModel(CLIPTextConfig(**TEXT)),
           "vae": AutoencoderKL(**VAE)}
  pipe = StableDiffusionPipeline(**{k: m.half().eval() for k, m in parts.items()},
                                 tokenizer=CLIPTokenizer.from_pretrained(tokenizer_folder),
                                 scheduler=DDIMScheduler(**SCHEDULER), safety_checker=None,
                                 feature_extractor=None, requires_safety_checker=False)
  tmp = folder + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  pipe.save_pretrained(tmp, safe_serialization=True)
  os.replace(tmp, folder)
  return counts


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
