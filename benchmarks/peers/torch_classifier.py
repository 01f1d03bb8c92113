"""jaxsets' SmallCNN and fine-tune recipe, rebuilt in PyTorch the way one would write it there.

Model (jaxsets/classifier/resnets.py): four 3x3 convs without bias (32, 32, 64 stride 2, 64), each
followed by GroupNorm(channels // 4 groups) and ReLU, then Dense(128) + ReLU and Dense(n) on the
flattened map. Recipe (jaxsets/classifier/train.py, configs/digits.py): AdamW with linear warm-up
over 5% of the steps then cosine to zero, gradient clipping at global norm 1, label smoothing,
minibatches drawn uniformly with replacement from real + support, random crop after zero padding.
Images are uint8 NCHW on the host side of the model and scaled to [-1, 1] per batch, as jaxsets does.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class SmallCNN(nn.Module):
  def __init__(self, num_classes: int, channels: int = 1, image_size: int = 8, width: int = 32):
    super().__init__()
    layers, c = [], channels
    for out, stride in ((width, 1), (width, 1), (2 * width, 2), (2 * width, 1)):
      layers += [nn.Conv2d(c, out, 3, stride, padding=1, bias=False),
                 nn.GroupNorm(max(1, min(32, out // 4)), out), nn.ReLU()]
      c = out
    self.features = nn.Sequential(*layers)
    side = -(-image_size // 2)
    self.head = nn.Sequential(nn.Flatten(), nn.Linear(side * side * 2 * width, 4 * width), nn.ReLU(),
                              nn.Linear(4 * width, num_classes))

  def forward(self, x):
    return self.head(self.features(x))


def preprocess(images: torch.Tensor, memory_format=torch.contiguous_format) -> torch.Tensor:
  """uint8 [B, C, H, W] -> float32 in [-1, 1]."""
  return (images.float() * (2.0 / 255.0) - 1.0).contiguous(memory_format=memory_format)


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
  """Each image shifted by up to `padding` pixels (crop of a zero-padded copy). [B, C, H, W]."""
  if padding <= 0:
    return images
  b, _, h, w = images.shape
  padded = F.pad(images, (padding,) * 4)
  off = torch.randint(0, 2 * padding + 1, (b, 2), generator=generator)
  rows = (off[:, 0:1] + torch.arange(h))[:, :, None]            # [B, H, 1]
  cols = (off[:, 1:2] + torch.arange(w))[:, None, :]            # [B, 1, W]
  return padded[torch.arange(b)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)


def warmup_cosine(total_steps: int, warmup_fraction: float):
  """Multiplier of the peak rate at step `count` (jaxsets.classifier.state.warmup_cosine)."""
  warm = max(1, int(round(warmup_fraction * total_steps)))

  def factor(count: int) -> float:
    if count < warm:
      return (count + 1.0) / warm
    t = min(max((count - warm) / max(1, total_steps - warm), 0.0), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * t))

  return factor


class TorchClassifier:
  """Fine-tune (fresh AdamW, from the baseline weights each time) and evaluate, on the CPU."""
  name = "PyTorch SmallCNN, same recipe (eager, CPU)"

  def __init__(self, cfg, num_classes: int, image_shape, real_images: np.ndarray,
               real_labels: np.ndarray, *, seed: int = 0, memory_format: str = "contiguous"):
    h, w, c = image_shape
    self.cfg, self.num_classes = cfg, num_classes
    torch.manual_seed(seed)
    self.model = SmallCNN(num_classes, c, h)
    self.baseline = {k: v.clone() for k, v in self.model.state_dict().items()}
    self.real_x = torch.from_numpy(np.ascontiguousarray(real_images.transpose(0, 3, 1, 2)))
    self.real_y = torch.from_numpy(real_labels.astype(np.int64))
    self.set_memory_format(memory_format)

  def set_memory_format(self, name: str) -> None:
    self.memory_format_name = name
    self.memory_format = torch.channels_last if name == "channels_last" else torch.contiguous_format
    self.model.to(memory_format=self.memory_format)

  def finetune(self, support_images: np.ndarray, support_labels: np.ndarray, seed: int) -> list:
    """cfg.finetune_steps steps on real + support from the baseline weights; returns the losses."""
    cfg = self.cfg
    self.model.load_state_dict(self.baseline)
    self.model.train()
    x = torch.cat([self.real_x, torch.from_numpy(np.ascontiguousarray(
        support_images.transpose(0, 3, 1, 2)))])
    y = torch.cat([self.real_y, torch.from_numpy(support_labels.astype(np.int64))])
    opt = torch.optim.AdamW(self.model.parameters(), lr=float(cfg.finetune_learning_rate),
                            weight_decay=float(cfg.weight_decay), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(cfg.finetune_steps,
                                                                 cfg.warmup_fraction))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=float(cfg.label_smoothing))
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(cfg.finetune_steps):
      idx = torch.randint(0, len(y), (cfg.batch_size,), generator=gen)
      images = x[idx]
      if cfg.augment:
        images = random_crop(images, cfg.crop_padding, gen)
      loss = loss_fn(self.model(preprocess(images, self.memory_format)), y[idx])
      opt.zero_grad(set_to_none=True)
      loss.backward()
      nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
      opt.step()
      sched.step()
      losses.append(loss.detach())
    return losses

  def evaluate(self, images: np.ndarray, labels: np.ndarray) -> dict:
    """accuracy, per-class accuracy [n] and mean predictive entropy (nats), as jaxsets reports."""
    self.model.eval()
    with torch.inference_mode():
      x = preprocess(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
                     self.memory_format)
      log_p = F.log_softmax(self.model(x), dim=-1)
    pred = log_p.argmax(-1).numpy()
    entropy = float(-(log_p.exp() * log_p).sum(-1).mean())
    per_class = np.asarray([np.mean(pred[labels == k] == k) if np.any(labels == k) else 0.0
                            for k in range(self.num_classes)], np.float32)
    return {"accuracy": float(np.mean(pred == labels)), "per_class_accuracy": per_class,
            "mean_entropy": entropy}
