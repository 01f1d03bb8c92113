"""CIFAR-10 with Stable Diffusion 2.1 base (real weights, for TPU/GPU users).

  jaxsets run --config configs/cifar10_sd.py --workdir runs/cifar10
  jaxsets run --config configs/cifar10_sd.py:smoke --workdir /tmp/smoke \
      --config.data.name=folder:PATH --config.generator.model=TINY_SD_FOLDER   # CPU, tests

Generated 512x512 images are area-resized to 32x32. The classifier is a CIFAR ResNet-20.
Built on configs/digits.py: every key not set here keeps its digits value.
"""
import os

from jaxsets.config_loading import load_config_file


def get_config(variant: str = ""):
  c = load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.py"))
  c.data.name = "cifar10"
  c.data.image_size = 32
  c.data.channels = 3
  c.data.train_per_class = 0        # all real data (the paper's setting)
  c.data.val_fraction = 0.1
  c.classifier.model = "resnet20"
  c.classifier.batch_size = 128
  c.classifier.baseline_steps = 20000
  c.classifier.finetune_steps = 500
  c.classifier.learning_rate = 0.05
  c.classifier.finetune_learning_rate = 0.01
  c.classifier.crop_padding = 4
  c.classifier.hflip = True
  c.generator.model = "stabilityai/stable-diffusion-2-1-base"
  c.generator.dtype = "auto"        # bfloat16 on GPU/TPU; float32 on CPU, where bf16 is slower
  c.generator.scheduler = "dpm_solver"
  c.generator.num_inference_steps = 25
  c.generator.guidance_scale = 7.5
  c.generator.negative_prompt = "blurry, low quality, text, watermark"
  c.prompts.domains = ("photo", "drawing", "painting", "sketch", "collage", "poster",
                       "digital art image", "3D rendering")
  # Not the CPU default's 2 episodes: on digits the reward's noise wanted ~15x the 640
  # transitions of 4 episodes (studies/issue5/README.md). 16 episodes = 2,560 transitions.
  c.agent.episodes = 16
  if variant == "smoke":
    c.data.image_size = 32
    c.classifier.batch_size = 16
    c.classifier.baseline_steps = 10
    c.classifier.finetune_steps = 3
    c.generator.dtype = "float32"
    c.generator.num_inference_steps = 2
    c.loop.budget = 8
    c.loop.images_per_step = 4
    c.loop.eval_repeats = 1
    c.agent.hidden_sizes = (16,)
    c.agent.num_envs = 2
    c.agent.episodes = 1
    c.agent.update_every = 0
    c.agent.minibatches = 2
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of configs/cifar10_sd.py: use '' or 'smoke'")
  return c
