"""stable-baselines3's PPO at jaxsets' agent sizes: the authors' learner.

Same network (separate 64-64 tanh actor and critic torsos, orthogonal init), the same action
space (MultiDiscrete [|D|, n, n, n]: SB3 also gives one categorical head per slot, |D| + 3n
logits), Adam (eps 1e-5), clip, value and entropy coefficients, gradient clipping, epochs and
minibatch size, GAE(gamma, lambda) and advantage normalisation. One update = GAE over the
rollout buffer + `PPO.train()` (every epoch, every minibatch), exactly what `learn()` runs
after each rollout.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn


class _StaticEnv(gym.Env):
  """Only its spaces matter: the update never steps it."""

  def __init__(self, obs_dim: int, nvec):
    self.observation_space = gym.spaces.Box(-10.0, 10.0, (obs_dim,), np.float32)
    self.action_space = gym.spaces.MultiDiscrete(list(nvec))

  def reset(self, *, seed=None, options=None):
    return np.zeros(self.observation_space.shape, np.float32), {}

  def step(self, action):
    return np.zeros(self.observation_space.shape, np.float32), 0.0, False, False, {}


def make_ppo(env, cfg, *, n_steps: int, n_envs: int, seed: int = 0):
  """An SB3 PPO configured like jaxsets' PPOConfig `cfg` (n_steps x n_envs rows per update)."""
  from stable_baselines3 import PPO
  from stable_baselines3.common.logger import configure
  rows = n_steps * n_envs
  model = PPO(
      "MlpPolicy", env, n_steps=n_steps, batch_size=max(1, rows // cfg.minibatches),
      n_epochs=cfg.epochs, learning_rate=cfg.learning_rate, gamma=cfg.gamma,
      gae_lambda=cfg.gae_lambda, clip_range=cfg.clip_eps,
      clip_range_vf=cfg.value_clip_eps or None, normalize_advantage=cfg.normalize_advantages,
      ent_coef=cfg.ent_coef, vf_coef=cfg.vf_coef, max_grad_norm=cfg.max_grad_norm,
      policy_kwargs=dict(net_arch=dict(pi=list(cfg.hidden_sizes), vf=list(cfg.hidden_sizes)),
                         activation_fn=nn.Tanh, ortho_init=True),
      device="cpu", seed=seed, verbose=0)
  model.set_logger(configure(None, []))  # train() records metrics; keep them in memory only
  return model


class SB3PPOUpdate:
  name = "stable-baselines3 PPO.train() (PyTorch, CPU)"

  def __init__(self, obs_dim: int, num_domains: int, num_classes: int, cfg, *, n_steps: int,
               n_envs: int):
    from stable_baselines3.common.vec_env import DummyVecEnv
    nvec = (num_domains, num_classes, num_classes, num_classes)
    env = DummyVecEnv([lambda: _StaticEnv(obs_dim, nvec)] * n_envs)
    self.model = make_ppo(env, cfg, n_steps=n_steps, n_envs=n_envs)
    self.n_steps, self.n_envs, self.obs_dim, self.nvec = n_steps, n_envs, obs_dim, nvec

  def fill(self, seed: int) -> None:
    """A rollout's worth of random transitions (not timed work: collecting them is the loop's)."""
    rng = np.random.default_rng(seed)
    buf = self.model.rollout_buffer
    buf.reset()
    for _ in range(self.n_steps):
      actions = np.stack([rng.integers(0, k, self.n_envs) for k in self.nvec], axis=-1)
      buf.add(rng.random((self.n_envs, self.obs_dim), np.float32), actions,
              rng.standard_normal(self.n_envs).astype(np.float32), np.zeros(self.n_envs),
              torch.from_numpy(rng.standard_normal(self.n_envs).astype(np.float32)),
              torch.from_numpy(-rng.random(self.n_envs).astype(np.float32) * 5))
    self.last_values = torch.zeros(self.n_envs)
    self.dones = np.zeros(self.n_envs)

  def update(self) -> None:
    """GAE + every epoch and minibatch of PPO (what learn() does after a rollout)."""
    self.model.rollout_buffer.compute_returns_and_advantage(self.last_values, self.dones)
    self.model.train()
