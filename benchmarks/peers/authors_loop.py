"""The authors' loop structure, rebuilt with the PyTorch peers at jaxsets' sizes.

A gymnasium environment whose `step(action)` writes the prompt, generates images_per_step
images with diffusers' PyTorch pipeline (reloading it from disk first, as the authors' code did,
or keeping it loaded: the fair variant), adds them to the support set, fine-tunes the PyTorch
SmallCNN from the baseline weights on real + support, evaluates it on the validation split and
returns reward = w_acc * dAccuracy - w_ent * dEntropy; stable-baselines3's PPO drives it with
`learn()` (rollout of n_steps, then one update), as the authors did.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from peers.torch_sd import load_pipeline


def to_classifier_images(images: np.ndarray, out_size: int) -> np.ndarray:
  """float [B, H, W, C] in [0, 1] -> uint8 [B, S, S, C] by area averaging (jaxsets' resize)."""
  b, h, w, c = images.shape
  x = images.reshape(b, out_size, h // out_size, out_size, w // out_size, c).mean(axis=(2, 4))
  return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


class AuthorsEnv(gym.Env):
  def __init__(self, *, sd_peer, torch_folder: str, reload: bool, book, classifier, val,
               budget: int, images_per_step: int, out_size: int, w_acc: float, w_ent: float):
    n, d = book.num_classes, book.num_domains
    self.observation_space = gym.spaces.Box(0.0, 1.0, (2 * n + 2,), np.float32)
    self.action_space = gym.spaces.MultiDiscrete([d, n, n, n])
    self.sd, self.folder, self.reload, self.book = sd_peer, torch_folder, reload, book
    self.clf, self.val = classifier, val
    self.budget, self.ips, self.out_size, self.n = budget, images_per_step, out_size, n
    self.w_acc, self.w_ent = w_acc, w_ent
    self.calls = 0

  def _observe(self) -> np.ndarray:
    counts = np.bincount(np.asarray(self.labels, np.int64), minlength=self.n) / self.budget
    return np.concatenate([[self.metrics["accuracy"]], self.metrics["per_class_accuracy"],
                           [len(self.labels) / self.budget], counts]).astype(np.float32)

  def _fit(self) -> dict:
    self.calls += 1
    h, w, c = self.val.images.shape[1:]
    images = (np.stack(self.images) if self.images else np.zeros((0, h, w, c), np.uint8))
    self.clf.finetune(images, np.asarray(self.labels, np.int64), self.calls)
    return self.clf.evaluate(self.val.images, self.val.labels)

  def reset(self, *, seed=None, options=None):
    super().reset(seed=seed)
    self.images, self.labels = [], []
    self.metrics = self._fit()  # the baseline recipe on real data alone, as jaxsets' reset
    return self._observe(), {}

  def step(self, action):
    if self.reload:  # the authors' code built the pipeline from disk inside every step
      self.sd.pipe = load_pipeline(self.folder)
      self.sd.set_memory_format(self.sd.memory_format)
    prompt = self.book.text(action)
    images = to_classifier_images(self.sd.generate([prompt] * self.ips, self.calls), self.out_size)
    self.images.extend(images)
    self.labels.extend([int(action[1])] * self.ips)
    before, self.metrics = self.metrics, self._fit()
    reward = (self.w_acc * (self.metrics["accuracy"] - before["accuracy"])
              - self.w_ent * (self.metrics["mean_entropy"] - before["mean_entropy"]))
    done = len(self.labels) >= self.budget
    return self._observe(), float(reward), done, False, {}
