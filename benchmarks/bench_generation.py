"""1. generation: jaxsets' sampler vs diffusers' Flax and PyTorch pipelines.

Same weights (the Flax folder, converted for PyTorch: `sd_weights`), DDIM, steps, guidance,
resolution and batch (the loop's images_per_step) on every side. Two patterns:
  * same_prompt: one prompt batch, a new seed per call;
  * new_prompt_each_call: the RL loop's pattern, a different prompt every call. jaxsets turns
    the action into ids inside jit (the prompt book); the peers tokenize the text, as they must.
Before timing, `check_same_weights` starts all three from the same latents and records the largest
pixel difference, so a conversion mistake cannot pass for a speed difference.
"""
from __future__ import annotations

import numpy as np

from common import entry, measure_sides, missing_peers, no_sync, skipped_peer


def _prompts(book, count: int):
  actions = [(i % book.num_domains, i % book.num_classes, (i + 3) % book.num_classes,
              (i + 6) % book.num_classes) for i in range(count)]
  return actions, [book.text(a) for a in actions]


def check_same_weights(gen, flax_peer, torch_peer, text: str, batch: int) -> dict:
  """Largest |difference| of the [0, 1] images (before the resize to the classifier's size)
  when all three samplers (two where `torch_peer` is None) start from the same initial latents."""
  import jax.numpy as jnp
  from flax.training.common_utils import shard

  from jaxsets.generator.sampler import latent_shape, make_latent_sampler
  shape = latent_shape(gen.parts, gen.cfg, batch)
  latents = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
  ids = gen.tokenize([text] * batch)
  neg = gen.tokenize([gen.negative_prompt] * batch)
  ours = make_latent_sampler(gen.parts, gen.cfg, gen.mesh)(
      gen.params, ids, neg, jnp.asarray(latents), jnp.float32(gen.guidance_scale))
  ours = np.clip(np.asarray(ours) / 2 + 0.5, 0, 1).transpose(0, 2, 3, 1)
  agreement = {}
  if torch_peer is not None:
    import torch
    theirs_torch = torch_peer.generate([text] * batch, 0, latents=torch.from_numpy(latents))
    agreement["max_abs_diff_vs_torch"] = float(np.max(np.abs(ours - theirs_torch)))
  out = flax_peer.pipe(shard(flax_peer.pipe.prepare_inputs([text] * batch)), flax_peer.params,
                       np.zeros((1, 2), np.uint32), num_inference_steps=flax_peer.steps,
                       guidance_scale=flax_peer.guidance, height=flax_peer.size,
                       width=flax_peer.size, latents=shard(latents), jit=True)
  theirs_flax = out.images.reshape(ours.shape)
  return {**agreement, "max_abs_diff_vs_flax": float(np.max(np.abs(ours - theirs_flax)))}


def run(ctx) -> list[dict]:
  import jax
  import jax.numpy as jnp

  from jaxsets.generator import load_generator
  from jaxsets.prompts import make_prompt_book
  from peers.flax_sd import FlaxPipelinePeer

  config = ctx.generator_config()
  gen = load_generator(config)
  batch, repeats = int(config.loop.images_per_step), ctx.repeats
  names = tuple(config.prompts.class_names) or tuple(
      ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
  book = make_prompt_book(gen.parts.tokenizer, config.prompts.template,
                          tuple(config.prompts.domains), names, gen.max_length)
  actions, texts = _prompts(book, repeats + 1)
  settings = {"weights": ctx.sd_folder[1], "scheduler": gen.cfg.scheduler,
              "num_inference_steps": gen.cfg.num_inference_steps,
              "guidance_scale": gen.guidance_scale, "image_size": gen.cfg.image_size,
              "batch": batch}
  sides = {"flax": FlaxPipelinePeer(ctx.sd_folder[0], steps=gen.cfg.num_inference_steps,
                                    guidance=gen.guidance_scale, size=gen.cfg.image_size)}
  missing, torch_settings = missing_peers("torch"), None
  if not missing:
    from peers.torch_sd import TorchPipelinePeer
    sides["torch"] = TorchPipelinePeer(ctx.torch_sd_folder, steps=gen.cfg.num_inference_steps,
                                       guidance=gen.guidance_scale, size=gen.cfg.image_size)
    torch_settings = sides["torch"].pick_settings([texts[0]] * batch)
    ctx.shared.setdefault("torch_settings", {}).update(
        threads=torch_settings["threads"], memory_format=torch_settings["memory_format"])
  agreement = check_same_weights(gen, sides["flax"], sides.get("torch"), texts[0], batch)

  key = jax.random.key(0)
  ids = gen.tokenize([texts[0]] * batch)
  prompt_ids = jax.jit(book.ids)  # the loop's path: action -> CLIP ids on the device
  acts = [jnp.asarray(np.repeat(np.asarray([a], np.int32), batch, axis=0)) for a in actions]
  new_ids = lambda i: prompt_ids(acts[i])
  patterns = {
      "same_prompt": {
          "jaxsets": (lambda i: gen.generate_ids(ids, jax.random.fold_in(key, i)), None),
          **{side: (lambda i, p=peer: p.generate([texts[0]] * batch, i), no_sync)
             for side, peer in sides.items()}},
      "new_prompt_each_call": {
          "jaxsets": (lambda i: gen.generate_ids(new_ids(i), jax.random.fold_in(key, 1000 + i)),
                      None),
          **{side: (lambda i, p=peer: p.generate([texts[i]] * batch, 1000 + i), no_sync)
             for side, peer in sides.items()}},
  }
  timings = {pattern: measure_sides(fns, repeats) for pattern, fns in patterns.items()}
  compiled = gen._sample._cache_size()
  same = timings["same_prompt"]
  ctx.shared["generation"] = {"gen": gen, "batch": batch, "jaxsets_s": same["jaxsets"]["steady_s"],
                              "torch_s": None,
                              **{f"{side}_s": same[side]["steady_s"] for side in sides}}
  entries = []
  if missing:
    for pattern, t in timings.items():
      j = t["jaxsets"]
      entries.append(entry(f"generation/{pattern}/vs_torch",
                           {**j, "images_per_s": batch / j["steady_s"], "compiled_programs": compiled},
                           skipped_peer("diffusers StableDiffusionPipeline (PyTorch, CPU)", missing),
                           settings=settings, agreement=agreement))
  for side, peer in sides.items():
    for pattern, t in timings.items():
      j, p = t["jaxsets"], t[side]
      extra = {"settings": torch_settings} if side == "torch" else {}
      entries.append(entry(
          f"generation/{pattern}/vs_{side}",
          {**j, "images_per_s": batch / j["steady_s"], "compiled_programs": compiled},
          {"name": peer.name, **p, "images_per_s": batch / p["steady_s"], **extra},
          settings=settings, agreement=agreement))
  return entries
