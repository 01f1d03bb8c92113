"""4. rl_step: one whole step of the RL loop (act, generate images_per_step images, add them,
fine-tune, evaluate, reward, store the transition, and 1/update_every of a PPO update), jaxsets'
`jaxsets.loop.driver.train_step` vs the authors' structure rebuilt with the PyTorch peers
(peers/authors_loop.py): once reloading the pipeline from disk every step (as the authors did),
once keeping it loaded (the fair peer).

Both sides run one environment (the authors' setting; jaxsets' default steps 4 at once, see the
"jaxsets_num_envs" field) and the same sizes: images_per_step, finetune_steps, batch, the
validation split, PPO epochs and minibatch size. Timed unit: one PPO period (update_every steps,
ending with the update), reported per step; one period of warm-up (compilation) first.
"""
from __future__ import annotations

from common import entry, measure_sides, no_sync


def _setup_jaxsets(ctx, update_every: int):
  import jax

  from jaxsets import config_loading, sharding
  from jaxsets.loop import driver
  from jaxsets.loop import state as st
  from jaxsets.loop.setup import make_setup

  config = ctx.generator_config()
  config_loading.apply_overrides(config, [
      "--config.agent.num_envs=1", f"--config.agent.update_every={update_every}",
      # 1 env x update_every rows in minibatches of 2, as SB3's batch_size below.
      f"--config.agent.minibatches={update_every // 2}"])
  s = make_setup(config, quiet=True)
  key = jax.random.key(0)
  # An untrained baseline: the step's cost does not depend on the weights, and the peer
  # starts from its own untrained network too.
  state = st.initial_state(s, st.untrained_baseline(s, key), key)
  # As jaxsets.loop.run does: one placement (replicated over the mesh) for the whole run. Without
  # it the agent's first PPO update changes the parameters' placement and act/value/ppo_update
  # compile a second time inside the timed period.
  state = sharding.replicate(state, s.mesh)
  box = {"state": state, "history": driver.new_history()}

  def period(i):
    for _ in range(update_every):
      box["state"] = driver.train_step(s, box["state"], box["history"])
    return box["state"]

  return s, period


def _authors(ctx, s, *, reload: bool, update_every: int, torch_settings: dict):
  import torch
  from stable_baselines3.common.vec_env import DummyVecEnv

  from peers.authors_loop import AuthorsEnv
  from peers.sb3_ppo import make_ppo
  from peers.torch_classifier import TorchClassifier
  from peers.torch_sd import TorchPipelinePeer

  torch.set_num_threads(torch_settings["threads"])
  gen = s.generator
  sd = TorchPipelinePeer(ctx.torch_sd_folder, steps=gen.cfg.num_inference_steps,
                         guidance=gen.guidance_scale, size=gen.cfg.image_size)
  sd.set_memory_format(torch_settings["memory_format"])
  sd.threads = torch_settings["threads"]
  clf = TorchClassifier(s.clf_cfg, s.spec.num_classes, s.splits.image_shape,
                        s.splits.train.images, s.splits.train.labels,
                        memory_format=torch_settings.get("classifier_memory_format", "contiguous"))
  env = AuthorsEnv(sd_peer=sd, torch_folder=ctx.torch_sd_folder, reload=reload, book=s.book,
                   classifier=clf, val=s.splits.validation, budget=s.spec.budget,
                   images_per_step=s.spec.images_per_step, out_size=gen.cfg.out_size,
                   w_acc=s.spec.reward.w_acc, w_ent=s.spec.reward.w_ent)
  model = make_ppo(DummyVecEnv([lambda: env]), s.ppo, n_steps=update_every, n_envs=1)

  def period(i):
    model.learn(total_timesteps=update_every, reset_num_timesteps=False)

  return period


def run(ctx) -> list[dict]:
  update_every = 4 if ctx.quick else 10  # divides the 40-step episode
  s, ours = _setup_jaxsets(ctx, update_every)
  settings = dict(ctx.shared.get("torch_settings") or {"threads": 1, "memory_format": "contiguous"})
  sides = {"jaxsets": (ours, None)}
  for reload in (True, False):
    sides["reload" if reload else "loaded"] = (
        _authors(ctx, s, reload=reload, update_every=update_every, torch_settings=settings), no_sync)
  repeats = 1 if ctx.quick else 2
  t = measure_sides(sides, repeats)
  per_step = lambda d: {**d, "period_s": d["steady_s"], "steady_s": d["steady_s"] / update_every,
                        "first_s": d["first_s"] / update_every,
                        "compile_s": d["compile_s"] / update_every}
  common = {"images_per_step": s.spec.images_per_step, "finetune_steps": s.clf_cfg.finetune_steps,
            "batch": s.clf_cfg.batch_size, "validation_rows": len(s.splits.validation),
            "ddim_steps": s.generator.cfg.num_inference_steps, "update_every": update_every,
            "ppo_epochs": s.ppo.epochs, "ppo_minibatch_rows": update_every // s.ppo.minibatches,
            "envs": 1, "timed_periods": repeats, "torch_settings": settings}
  names = {"reload": "authors' structure: SB3 PPO + PyTorch SD reloaded from disk every step "
                     "+ PyTorch classifier",
           "loaded": "authors' structure with the PyTorch SD pipeline kept loaded"}
  return [entry(f"rl_step/vs_{k}", per_step(t["jaxsets"]), {"name": names[k], **per_step(t[k])},
                settings=common) for k in ("reload", "loaded")]
