"""Tiny-ImageNet (200 classes, 64x64) with Stable Diffusion 2.1 base, for TPU/GPU users.

  jaxsets run --config configs/tiny_imagenet_sd.py --workdir runs/tin \
      --config.data.name=folder:/data/tiny-imagenet-200

Reads Tiny-ImageNet's own layout (wnids.txt, words.txt, val_annotations.txt; WordNet ids become
English class names for the prompts). Generated 512x512 images are area-resized to 64x64 (an
exact 8x8 average). Built on configs/cifar10_sd.py: keys not set here keep its values, and its
smoke variant (tiny random SD, a few steps) applies here too.
"""
import os

from jaxsets.config_loading import load_config_file


def get_config(variant: str = ""):
  here = os.path.dirname(os.path.abspath(__file__))
  c = load_config_file(os.path.join(here, "cifar10_sd.py") + (f":{variant}" if variant else ""))
  c.data.name = "folder:tiny-imagenet-200"   # point at your copy: --config.data.name=folder:PATH
  c.data.image_size = 64
  c.classifier.model = "resnet18"
  c.classifier.crop_padding = 8
  if variant == "smoke":
    # On 2 CPU cores one smoke run took 15 GB and >10 min with ResNet-18 (CIFAR stem: 64 channels
    # at full 64x64 resolution) and 7.6 GB, 11 min with ResNet-20. The smoke run is for the
    # Tiny-ImageNet layout, the 64x64 path and the loop; the ResNets have their own tests
    # (tests/test_classifier.py).
    c.classifier.model = "small_cnn"
  if not variant:
    c.classifier.batch_size = 256
    c.agent.hidden_sizes = (256, 256)    # 200 classes: |D| + 3*200 logits per action
  return c
