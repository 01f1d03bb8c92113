"""The authors' loop structure, rebuilt with the PyTorch peers at jaxsets' sizes.

A gymnasium environment whose `step(action)` writes the prompt, generates images_per_step images
with diffusers' PyTorch pipeline, adds them to the support set, fine-tunes the PyTorch SmallCNN
from the baseline weights on real + support, evaluates it on the validation split and returns
reward = w_acc * dAccuracy - w_ent * dEntropy; stable-baselines3's PPO drives it with `learn()`
(rollout of n_steps, then one update), as the authors did. Three structures (`STRUCTURES`):

  as_written: what the authors' code does in every step (github mesophil/deeprl, customs/
      make_image.py and processor.py): it builds the pipeline from disk, calls it once per image
      (`for _ in range(numImages): pipe(phrase, ...)`), saves each image as a PNG in a folder per
      class, re-reads the support set from those PNGs (torchvision ImageFolder), and loads the
      classifier's starting weights from disk (`torch.hub.load(..., pretrained=True)`). Where
      their code is slower for reasons that do not carry over to this size (50 or 5 full epochs,
      8 DataLoader workers, per-item transforms), the peer keeps jaxsets' recipe and
      in-memory minibatches: those choices would only slow it down.
  reload: the pipeline reloaded every step, but all images of a step in one batched call, in
      memory.
  loaded: the fair peer: pipeline kept loaded, one batched call, in memory.
"""
from __future__ import annotations

import os

import gymnasium as gym
import numpy as np

from peers.png_support import PngSupportSet, to_classifier_images
from peers.torch_sd import load_pipeline

STRUCTURES = ("as_written", "reload", "loaded")


class AuthorsEnv(gym.Env):
  def __init__(self, *, sd_peer, torch_folder: str, structure: str, book, classifier, val,
               budget: int, images_per_step: int, out_size: int, w_acc: float, w_ent: float,
               scratch: str | None = None):
    if structure not in STRUCTURES:
      raise ValueError(f"structure {structure!r}: choose from {STRUCTURES}")
    if structure == "as_written" and scratch is None:
      raise ValueError("the as_written structure keeps PNGs and weights on disk: pass scratch")
    n, d = book.num_classes, book.num_domains
    self.observation_space = gym.spaces.Box(0.0, 1.0, (2 * n + 2,), np.float32)
    self.action_space = gym.spaces.MultiDiscrete([d, n, n, n])
    self.sd, self.folder, self.structure, self.book = sd_peer, torch_folder, structure, book
    self.clf, self.val = classifier, val
    self.budget, self.ips, self.out_size, self.n = budget, images_per_step, out_size, n
    self.w_acc, self.w_ent = w_acc, w_ent
    self.calls = 0
    if structure == "as_written":
      import torch
      self.pngs = PngSupportSet(os.path.join(scratch, "support_pngs"))
      self.weights = os.path.join(scratch, "baseline.pt")
      torch.save(classifier.baseline, self.weights)

  def _observe(self) -> np.ndarray:
    counts = np.bincount(np.asarray(self.labels, np.int64), minlength=self.n) / self.budget
    return np.concatenate([[self.metrics["accuracy"]], self.metrics["per_class_accuracy"],
                           [len(self.labels) / self.budget], counts]).astype(np.float32)

  def _fit(self) -> dict:
    self.calls += 1
    h, w, c = self.val.images.shape[1:]
    if self.structure == "as_written":
      import torch
      self.clf.baseline = torch.load(self.weights)
      images, labels = self.pngs.read(self.out_size, c)
    else:
      images = np.stack(self.images) if self.images else np.zeros((0, h, w, c), np.uint8)
      labels = np.asarray(self.labels, np.int64)
    self.clf.finetune(images, labels, self.calls)
    return self.clf.evaluate(self.val.images, self.val.labels)

  def _generate(self, prompt: str) -> np.ndarray:
    """float [ips, H, W, C] in [0, 1] at the generator's resolution."""
    if self.structure == "as_written":  # one pipeline call per image
      return np.concatenate([self.sd.generate([prompt], self.calls * self.ips + j)
                             for j in range(self.ips)])
    return self.sd.generate([prompt] * self.ips, self.calls)

  def reset(self, *, seed=None, options=None):
    super().reset(seed=seed)
    self.images, self.labels = [], []
    if self.structure == "as_written":
      self.pngs.clear()
    self.metrics = self._fit()  # the baseline recipe on real data alone, as jaxsets' reset
    return self._observe(), {}

  def step(self, action):
    if self.structure != "loaded":  # the authors' code built the pipeline from disk every step
      self.sd.pipe = load_pipeline(self.folder)
      self.sd.set_memory_format(self.sd.memory_format)
    prompt = self.book.text(action)
    label = int(action[1])
    images = self._generate(prompt)
    if self.structure == "as_written":
      self.pngs.add(images, label)
    else:
      self.images.extend(to_classifier_images(images, self.out_size))
    self.labels.extend([label] * self.ips)
    before, self.metrics = self.metrics, self._fit()
    reward = (self.w_acc * (self.metrics["accuracy"] - before["accuracy"])
              - self.w_ent * (self.metrics["mean_entropy"] - before["mean_entropy"]))
    done = len(self.labels) >= self.budget
    return self._observe(), float(reward), done, False, {}
