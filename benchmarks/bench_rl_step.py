"""4. rl_step: one whole step of the RL loop (act, generate images_per_step images, add them,
fine-tune, evaluate, reward, store the transition, and 1/update_every of a PPO update), jaxsets'
`jaxsets.loop.driver.train_step` vs the authors' structure rebuilt with the PyTorch peers
(peers/authors_loop.py) three ways: as their code is written (pipeline reloaded from disk every
step, one pipeline call per image, images through PNG files, classifier weights read from disk),
reloading the pipeline but batching the step's images in memory, and keeping the pipeline loaded
(the fair peer). A fourth entry times the reload itself at Stable Diffusion 2.1's size
(sd21_reload.py), the size the authors ran.

Both sides run one environment (the authors' setting; jaxsets' default steps 4 at once, see the
"jaxsets_num_envs" field) and the same sizes: images_per_step, finetune_steps, batch, the
validation split, PPO epochs and minibatch size. Timed unit: one PPO period (update_every steps,
ending with the update), reported per step; one period of warm-up (compilation) first.
"""
from __future__ import annotations

import os
import statistics
import time

from common import entry, measure_sides, missing_peers, no_sync, skipped_peer


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
  box = {"state": state}

  def period(i):
    for _ in range(update_every):
      box["state"], _ = driver.train_step(s, box["state"])
    return box["state"]

  return s, period


def _authors(ctx, s, *, structure: str, update_every: int, torch_settings: dict):
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
  env = AuthorsEnv(sd_peer=sd, torch_folder=ctx.torch_sd_folder, structure=structure, book=s.book,
                   classifier=clf, val=s.splits.validation, budget=s.spec.budget,
                   images_per_step=s.spec.images_per_step, out_size=gen.cfg.out_size,
                   w_acc=s.spec.reward.w_acc, w_ent=s.spec.reward.w_ent,
                   scratch=os.path.join(ctx.scratch, "authors_loop"))
  model = make_ppo(DummyVecEnv([lambda: env]), s.ppo, n_steps=update_every, n_envs=1)

  def period(i):
    model.learn(total_timesteps=update_every, reset_num_timesteps=False)

  return period


# peers/authors_loop.STRUCTURES, named here too: that module imports gymnasium (the bench extra).
NAMES = {"as_written": "authors' code as written: SB3 PPO + PyTorch SD reloaded every step, one "
                       "call per image, PNGs, weights from disk + PyTorch classifier",
         "reload": "authors' structure, PyTorch SD reloaded every step, images batched in memory",
         "loaded": "authors' structure with the PyTorch SD pipeline kept loaded"}


def run(ctx) -> list[dict]:
  # Divides the episode (40 steps; 4 in --tiny): the warm-up period then holds an episode's end
  # (the reset and the plan update compile there), and the timed one does not compile.
  update_every = 4 if ctx.quick else 10
  s, ours = _setup_jaxsets(ctx, update_every)
  settings = dict(ctx.shared.get("torch_settings") or {"threads": 1, "memory_format": "contiguous"})
  sides = {"jaxsets": (ours, None)}
  missing = missing_peers()
  for structure in NAMES if not missing else ():
    sides[structure] = (
        _authors(ctx, s, structure=structure, update_every=update_every, torch_settings=settings),
        no_sync)
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
  out = [entry(f"rl_step/vs_{k}", per_step(t["jaxsets"]),
               skipped_peer(name, missing) if missing else {"name": name, **per_step(t[k])},
               settings=common) for k, name in NAMES.items()]
  return out + [_sd21_reload(ctx, repeats=2 if ctx.quick else 5)]


def _sd21_reload(ctx, repeats: int) -> dict:
  """The authors' per-step `from_pretrained` at SD 2.1's size (fp16, random weights), and the
  same followed by one copy of every tensor (what their `pipe.to("cuda")` must at least read).
  jaxsets loads its generator once per run: no per-step figure, so no speedup."""
  import gc

  import sd21_reload
  ours = {"per_step_load_s": 0.0, "note": "jaxsets loads its generator once per run and keeps it "
          "in device memory"}
  name = "rl_step/pipeline_reload_at_sd2.1_size"
  missing = missing_peers("torch")
  if missing:
    return {"name": name, "jaxsets": ours, "speedup": None,
            "peer": skipped_peer("StableDiffusionPipeline.from_pretrained", missing)}
  if ctx.tiny:  # the same calls on a tiny model in the same layout (CI: minutes, not 2.6 GB)
    from accel_sd_folder import build_folder
    folder = os.path.join(ctx.scratch, "sd_tiny_hub")
    build_folder(folder, tiny=True)
  else:
    folder = os.path.join(ctx.scratch, "sd21_random_fp16")
    sd21_reload.build_folder(folder, os.path.join(ctx.sd_folder[0], "tokenizer"))
  first, loads, copies = None, [], []
  for i in range(repeats + 1):
    start = time.perf_counter()
    pipe = sd21_reload.load(folder)
    loaded = time.perf_counter()
    for module in (pipe.unet, pipe.text_encoder, pipe.vae):
      for p in module.parameters():
        p.detach().clone()
    done = time.perf_counter()
    if i == 0:
      first, counts = done - start, sd21_reload.param_counts(pipe)
    else:
      loads.append(loaded - start)
      copies.append(done - start)
    del pipe
    gc.collect()
  peer = {"name": "StableDiffusionPipeline.from_pretrained, SD 2.1 architecture, float16 "
                  "(the authors' per-step load; page cache warm)",
          "steady_s": statistics.median(loads), "with_tensor_copy_s": statistics.median(copies),
          "first_s": first, "params": sum(counts.values()), "params_by_part": counts,
          "matches_published_sd21": counts == sd21_reload.PUBLISHED_PARAMS,
          "bytes_on_disk": sd21_reload.folder_bytes(folder), "all_s": loads}
  if ctx.tiny:
    peer["name"] = "StableDiffusionPipeline.from_pretrained, a tiny model (--tiny), float16"
  return {"name": name, "jaxsets": ours, "peer": peer, "speedup": None}
