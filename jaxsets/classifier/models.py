"""classifier.model -> a Flax module. Every model maps float32 [B, H, W, C] in [-1, 1] to
logits [B, num_classes] and has no mutable state (see resnets.py for why GroupNorm)."""
from __future__ import annotations

import difflib

import flax.linen as nn

from jaxsets.classifier.resnets import CifarResNet, ResNet, SmallCNN
from jaxsets.classifier.vit import ViT
from jaxsets.errors import UserError

MODELS = {
    "small_cnn": lambda n: SmallCNN(num_classes=n),
    "resnet20": lambda n: CifarResNet(num_classes=n, depth=20),
    "resnet56": lambda n: CifarResNet(num_classes=n, depth=56),
    "resnet18": lambda n: ResNet(num_classes=n, stage_sizes=(2, 2, 2, 2)),
    "resnet50": lambda n: ResNet(num_classes=n, stage_sizes=(3, 4, 6, 3), bottleneck=True),
    "vit_small": lambda n: ViT(num_classes=n),
}


def check_model_name(name: str) -> None:
  if name not in MODELS:
    close = difflib.get_close_matches(name, MODELS, n=3)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise UserError(f"classifier.model={name!r} is unknown.{hint} Choose one of: "
                    f"{', '.join(MODELS)}.")


def make_model(name: str, num_classes: int) -> nn.Module:
  check_model_name(name)
  return MODELS[name](num_classes)
