"""The authors' side of the accelerator RL step, on the same GPU: diffusers' PyTorch pipeline in
float16 and jaxsets' CIFAR ResNet-20 (GroupNorm, zero-initialised last scale per block) with the
fine-tune recipe of peers/torch_classifier.py, both on the device. Same interfaces as the CPU
peers, so peers/authors_loop.AuthorsEnv drives them unchanged.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from peers.torch_classifier import SmallCNN, TorchClassifier, preprocess, warmup_cosine


def _norm(channels: int) -> nn.GroupNorm:
  return nn.GroupNorm(max(1, min(32, channels // 4)), channels)


class BasicBlock(nn.Module):
  def __init__(self, cin: int, cout: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    self.norm1 = _norm(cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
    self.norm2 = _norm(cout)
    nn.init.zeros_(self.norm2.weight)  # each block starts as the identity, as jaxsets' does
    self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(cout))
                     if cin != cout or stride != 1 else nn.Identity())

  def forward(self, x):
    y = self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x)))))
    return F.relu(self.shortcut(x) + y)


class CifarResNet(nn.Module):
  """depth = 6n + 2; stages of 16, 32, 64 channels (jaxsets/classifier/resnets.py)."""

  def __init__(self, num_classes: int, channels: int = 3, depth: int = 20):
    super().__init__()
    n = (depth - 2) // 6
    layers, c = [nn.Conv2d(channels, 16, 3, 1, 1, bias=False), _norm(16), nn.ReLU()], 16
    for stage, width in enumerate((16, 32, 64)):
      for i in range(n):
        layers.append(BasicBlock(c, width, 2 if (i == 0 and stage > 0) else 1))
        c = width
    self.features = nn.Sequential(*layers)
    self.head = nn.Linear(64, num_classes)

  def forward(self, x):
    return self.head(self.features(x).mean(dim=(2, 3)))


class DeviceClassifier(TorchClassifier):
  """TorchClassifier's fine-tune and evaluation with the data, the model and the minibatch
  sampling on `device`; the model is the config's (resnet20/resnet56 or small_cnn)."""

  def __init__(self, cfg, num_classes: int, image_shape, real_images: np.ndarray,
               real_labels: np.ndarray, *, device: str, seed: int = 0):
    h, w, c = image_shape
    self.cfg, self.num_classes, self.device = cfg, num_classes, device
    torch.manual_seed(seed)
    if cfg.model.startswith("resnet"):
      self.model = CifarResNet(num_classes, c, int(cfg.model[len("resnet"):]))
    else:
      self.model = SmallCNN(num_classes, c, h)
    self.name = f"PyTorch {cfg.model}, same recipe (eager, {device})"
    self.model.to(device)
    self.baseline = {k: v.clone() for k, v in self.model.state_dict().items()}
    self.real_x = torch.from_numpy(np.ascontiguousarray(real_images.transpose(0, 3, 1, 2))).to(device)
    self.real_y = torch.from_numpy(real_labels.astype(np.int64)).to(device)
    self.set_memory_format("contiguous")

  def _augment(self, images, gen):
    cfg, (b, _, h, w) = self.cfg, images.shape
    p = int(cfg.crop_padding)
    if cfg.augment and p > 0:
      padded = F.pad(images, (p,) * 4)
      off = torch.randint(0, 2 * p + 1, (b, 2), generator=gen, device=self.device)
      rows = (off[:, 0:1] + torch.arange(h, device=self.device))[:, :, None]
      cols = (off[:, 1:2] + torch.arange(w, device=self.device))[:, None, :]
      images = padded[torch.arange(b, device=self.device)[:, None, None], :, rows, cols]
      images = images.permute(0, 3, 1, 2)
    if getattr(cfg, "hflip", False):
      flip = torch.rand(b, generator=gen, device=self.device) < 0.5
      images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    return images

  def finetune(self, support_images: np.ndarray, support_labels: np.ndarray, seed: int) -> list:
    cfg = self.cfg
    self.model.load_state_dict(self.baseline)
    self.model.train()
    x = torch.cat([self.real_x, torch.from_numpy(np.ascontiguousarray(
        support_images.transpose(0, 3, 1, 2))).to(self.device)])
    y = torch.cat([self.real_y, torch.from_numpy(support_labels.astype(np.int64)).to(self.device)])
    opt = torch.optim.AdamW(self.model.parameters(), lr=float(cfg.finetune_learning_rate),
                            weight_decay=float(cfg.weight_decay), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(cfg.finetune_steps,
                                                                 cfg.warmup_fraction))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=float(cfg.label_smoothing))
    gen = torch.Generator(self.device).manual_seed(seed)
    losses = []
    for _ in range(cfg.finetune_steps):
      idx = torch.randint(0, len(y), (cfg.batch_size,), generator=gen, device=self.device)
      loss = loss_fn(self.model(preprocess(self._augment(x[idx], gen))), y[idx])
      opt.zero_grad(set_to_none=True)
      loss.backward()
      nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
      opt.step()
      sched.step()
      losses.append(loss.detach())
    return losses

  def evaluate(self, images: np.ndarray, labels: np.ndarray) -> dict:
    self.model.eval()
    with torch.inference_mode():
      x = preprocess(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(self.device))
      log_p = torch.cat([F.log_softmax(self.model(chunk), dim=-1) for chunk in x.split(1024)])
    pred = log_p.argmax(-1).cpu().numpy()
    entropy = float(-(log_p.exp() * log_p).sum(-1).mean())
    per_class = np.asarray([np.mean(pred[labels == k] == k) if np.any(labels == k) else 0.0
                            for k in range(self.num_classes)], np.float32)
    return {"accuracy": float(np.mean(pred == labels)), "per_class_accuracy": per_class,
            "mean_entropy": entropy}


class DevicePipelinePeer:
  """StableDiffusionPipeline kept loaded on `device` (float16 on a GPU), DPM-Solver++, SDPA."""

  def __init__(self, folder: str, *, steps: int, guidance: float, size: int, device: str,
               negative_prompt: str = ""):
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline
    dtype = torch.float16 if device == "cuda" else torch.float32
    self.pipe = StableDiffusionPipeline.from_pretrained(
        folder, torch_dtype=dtype, safety_checker=None, requires_safety_checker=False)
    self.pipe.scheduler = DPMSolverMultistepScheduler.from_config(self.pipe.scheduler.config)
    self.pipe = self.pipe.to(device)
    self.pipe.set_progress_bar_config(disable=True)
    self.name = f"diffusers StableDiffusionPipeline (PyTorch, {device}, {dtype})"
    self.steps, self.guidance, self.size, self.device = steps, guidance, size, device
    self.negative_prompt, self.memory_format, self.threads = negative_prompt, "contiguous", 1

  def generate(self, prompts: list[str], seed: int, latents=None) -> np.ndarray:
    """Text in, float images [B, H, W, C] in [0, 1] on the host."""
    with torch.inference_mode():
      out = self.pipe(prompt=prompts, negative_prompt=[self.negative_prompt] * len(prompts),
                      num_inference_steps=self.steps, guidance_scale=self.guidance,
                      height=self.size, width=self.size, latents=latents, output_type="np",
                      generator=torch.Generator(self.device).manual_seed(seed))
    return out.images

  def set_memory_format(self, name: str) -> None:
    mf = torch.channels_last if name == "channels_last" else torch.contiguous_format
    self.pipe.unet.to(memory_format=mf)
    self.pipe.vae.to(memory_format=mf)
    self.memory_format = name
