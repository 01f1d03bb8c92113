"""The accelerator benchmark's RL-step sections, each in its own process (accelerator.py):

  jaxsets_step: `jaxsets.loop.driver.train_step` on configs/cifar10_sd.py as it is (4
    environments of 10 images, ResNet-20 fine-tunes of 500 steps, SD 2.1-base at 512 px with 25
    DPM-Solver steps) except the data, CIFAR-shaped random images read as a folder dataset (no
    TFDS), and a PPO update every 2 steps so that the timed period holds one. Steps 0-3 compile,
    steps 4-5 are timed (per step: their mean). Also times one chunk of the baseline's training
    (baseline_steps / 10 steps, as train_baseline runs them), for the whole-run estimate.
  authors_step: the authors' structure (peers/authors_loop.py, "loaded": the pipeline kept in
    memory, its fairest form) on the same GPU: stable-baselines3's PPO stepping one gymnasium
    environment that generates 10 images with diffusers' PyTorch pipeline (float16), fine-tunes a
    PyTorch ResNet-20 with the same recipe and evaluates it (accel_torch). One warm-up period of
    2 steps (its reset fits the baseline recipe), then one timed period.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np


def write_cifar_like_folder(path: str, *, train_per_class: int, val_per_class: int,
                            test_per_class: int, size: int = 32, seed: int = 0) -> dict:
  """PATH/{train,validation,test}/<class>/*.png of random uint8 images, CIFAR-10's classes (once)."""
  import os

  from PIL import Image
  names = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
  counts = {"train": train_per_class, "validation": val_per_class, "test": test_per_class}
  done = os.path.join(path, "complete")
  if not os.path.isfile(done):
    rng = np.random.default_rng(seed)
    for split, per_class in counts.items():
      for name in names:
        folder = os.path.join(path, split, name)
        os.makedirs(folder, exist_ok=True)
        images = rng.integers(0, 256, (per_class, size, size, 3), dtype=np.uint8)
        for i, image in enumerate(images):
          Image.fromarray(image).save(os.path.join(folder, f"{i:05d}.png"))
    open(done, "w").close()
  return {"classes": len(names), **{f"{k}_images": v * len(names) for k, v in counts.items()}}


def _config(plan: dict):
  from jaxsets import config_loading
  config = config_loading.load_config_file(plan["config"])
  config_loading.apply_overrides(config, [
      f"--config.data.name=folder:{plan['data']}", f"--config.generator.model={plan['folder']}",
      "--config.agent.update_every=2", *plan["overrides"]])
  return config


def _settings(config) -> dict:
  c = config
  return {"envs": int(c.agent.num_envs), "images_per_step": int(c.loop.images_per_step),
          "classifier": c.classifier.model, "finetune_steps": int(c.classifier.finetune_steps),
          "batch": int(c.classifier.batch_size), "image_size": int(c.data.image_size),
          "sd_steps": int(c.generator.num_inference_steps), "sd_dtype": c.generator.dtype,
          "scheduler": c.generator.scheduler, "guidance_scale": float(c.generator.guidance_scale),
          "eval_repeats": int(c.loop.eval_repeats), "update_every": 2}


def jaxsets_step(plan: dict, part) -> None:
  import jax

  from jaxsets import sharding
  from jaxsets.loop import driver
  from jaxsets.loop import state as st
  from jaxsets.loop.setup import make_setup

  config = _config(plan)
  part["settings"] = _settings(config)
  start = time.perf_counter()
  s = make_setup(config, quiet=True)
  part["setup_s"] = time.perf_counter() - start
  part["validation_images"] = len(s.splits.validation)
  key = jax.random.key(0)
  # An untrained baseline: a step's cost does not depend on the weights. One placement for the
  # whole run, as jaxsets.loop.run does (else the first PPO update compiles again).
  state = sharding.replicate(st.initial_state(s, st.untrained_baseline(s, key), key), s.mesh)
  steps = []
  # update_every = 2: steps 0-3 compile (the first PPO update changes the agent's placement, so
  # the second compiles again), steps 4-5 are timed: one period with one PPO update.
  for _ in range(6):
    start = time.perf_counter()
    state = jax.block_until_ready(driver.train_step(s, state)[0])
    steps.append(time.perf_counter() - start)
    part["step_s"] = steps
    part.save()
  part["steady_s"] = float(np.mean(steps[4:]))
  part["compile_s"] = max(sum(steps[:4]) - 4 * part["steady_s"], 0.0)
  part["steps_per_s"] = 1.0 / part["steady_s"]
  part["transitions_per_step"] = s.num_envs
  part.save()
  # The baseline's training step (configs/cifar10_sd.py trains it for baseline_steps first),
  # timed on the very chunk train_baseline runs (one compiled scan of chunk_size steps): the
  # whole call would also time init_state, which compiles again at every call.
  from jaxsets.classifier.baseline import chunk_size
  from jaxsets.classifier.state import init_state
  from jaxsets.classifier.train import baseline_chunk, empty_support
  size = chunk_size(int(config.classifier.baseline_steps))
  shape = s.splits.train.images.shape[1:]
  clf = init_state(key, s.clf_cfg, shape, s.spec.num_classes, s.mesh)
  support, times = empty_support(shape, s.mesh.size), []
  for i in range(2):  # compile + run, then run
    start = time.perf_counter()
    clf, _ = jax.block_until_ready(baseline_chunk(clf, s.real, support, jax.random.key(i), i * size,
                                                  cfg=s.clf_cfg, num_steps=size, mesh=s.mesh))
    times.append(time.perf_counter() - start)
  part["baseline"] = {"chunk_steps": size, "first_s": times[0], "steady_s": times[1],
                      "per_step_s": times[1] / size,
                      "config_steps": int(config.classifier.baseline_steps)}
  part.save()


def authors_step(plan: dict, part) -> None:
  import importlib.util
  if importlib.util.find_spec("stable_baselines3") is None or importlib.util.find_spec("gymnasium") is None:
    part["skipped"] = "stable-baselines3 / gymnasium not installed (the bench extra)"
    return
  import os

  import torch
  from stable_baselines3.common.vec_env import DummyVecEnv
  from transformers import CLIPTokenizer

  from accel_torch import DeviceClassifier, DevicePipelinePeer
  from jaxsets import data
  from jaxsets.agent import PPOConfig
  from jaxsets.classifier import ClassifierConfig
  from jaxsets.prompts import make_prompt_book
  from peers.authors_loop import AuthorsEnv
  from peers.sb3_ppo import make_ppo

  if not torch.cuda.is_available() and not plan["tiny"]:
    part["skipped"] = "torch sees no GPU"
    return
  device = "cuda" if torch.cuda.is_available() else "cpu"
  config = _config(plan)
  part["settings"] = {**_settings(config), "envs": 1, "structure": "loaded", "device": device}
  start = time.perf_counter()
  splits = data.load_dataset(config.data, int(config.seed))
  clf_cfg = ClassifierConfig.from_config(config.classifier)
  ppo = PPOConfig.from_config(config.agent)
  tokenizer = CLIPTokenizer.from_pretrained(os.path.join(plan["folder"], "tokenizer"))
  book = make_prompt_book(tokenizer, config.prompts.template, tuple(config.prompts.domains),
                          splits.class_names, int(tokenizer.model_max_length))
  sd = DevicePipelinePeer(plan["folder"], steps=int(config.generator.num_inference_steps),
                          guidance=float(config.generator.guidance_scale), size=plan["sd_size"],
                          device=device, negative_prompt=config.generator.negative_prompt)
  clf = DeviceClassifier(clf_cfg, splits.num_classes, splits.image_shape, splits.train.images,
                         splits.train.labels, device=device)
  env = AuthorsEnv(sd_peer=sd, torch_folder=plan["folder"], structure="loaded", book=book,
                   classifier=clf, val=splits.validation, budget=int(config.loop.budget),
                   images_per_step=int(config.loop.images_per_step),
                   out_size=int(config.data.image_size), w_acc=float(config.reward.w_acc),
                   w_ent=float(config.reward.w_ent))
  # One minibatch of the 2 rows (SB3 refuses minibatches of 1 row); the update's cost is small.
  model = make_ppo(DummyVecEnv([lambda: env]), dataclasses.replace(ppo, minibatches=1),
                   n_steps=2, n_envs=1)
  part["setup_s"] = time.perf_counter() - start
  part["name"] = (f"authors' structure (SB3 PPO, 1 env) with {sd.name} kept loaded and "
                  f"{clf.name}")
  periods = []
  for _ in range(2):  # the first period resets the env (the baseline fit) and warms up
    start = time.perf_counter()
    model.learn(total_timesteps=2, reset_num_timesteps=False)
    if device == "cuda":
      torch.cuda.synchronize()
    periods.append(time.perf_counter() - start)
    part["period_s"] = periods
    part.save()
  part["steady_s"] = periods[1] / 2
  part["transitions_per_step"] = 1
  part.save()
