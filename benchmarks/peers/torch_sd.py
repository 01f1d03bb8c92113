"""diffusers' PyTorch StableDiffusionPipeline on the CPU, with its recommended inference settings:
`torch.inference_mode`, no progress bar, and the thread count and memory format (channels_last or
not) that measure fastest on this machine (`pick_settings`, see torch_settings)."""
from __future__ import annotations

import os

import numpy as np


def load_pipeline(folder: str):
  """StableDiffusionPipeline from a PyTorch diffusers folder (what the authors' loop did per step)."""
  import torch
  from diffusers import StableDiffusionPipeline
  pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32)
  pipe.set_progress_bar_config(disable=True)
  return pipe


class TorchPipelinePeer:
  name = "diffusers StableDiffusionPipeline (PyTorch, CPU)"

  def __init__(self, folder: str, *, steps: int, guidance: float, size: int):
    self.threads = os.cpu_count() or 1
    self.pipe = load_pipeline(folder)
    self.steps, self.guidance, self.size = steps, guidance, size
    self.memory_format = "contiguous"

  def generate(self, prompts: list[str], seed: int, latents=None) -> np.ndarray:
    """Text in, float images [B, H, W, C] in [0, 1] (numpy, as output_type='np' gives)."""
    import torch
    with torch.inference_mode():
      out = self.pipe(prompt=prompts, num_inference_steps=self.steps, guidance_scale=self.guidance,
                      height=self.size, width=self.size, latents=latents, output_type="np",
                      generator=torch.Generator().manual_seed(seed))
    return out.images

  def set_memory_format(self, name: str) -> None:
    """channels_last helps large convolutions on CPU and can hurt tiny ones (see torch_settings)."""
    import torch
    mf = torch.channels_last if name == "channels_last" else torch.contiguous_format
    self.pipe.unet.to(memory_format=mf)
    self.pipe.vae.to(memory_format=mf)
    self.memory_format = name

  def pick_settings(self, prompts: list[str]) -> dict:
    from peers.torch_settings import pick_best
    best = pick_best(lambda threads, fmt: self.set_memory_format(fmt),
                     lambda i: self.generate(prompts, i))
    self.threads = best["threads"]
    return best
