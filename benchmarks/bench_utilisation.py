"""6. utilisation: achieved FLOP/s of generation and of a fine-tune against this CPU's matmul peak,
measured in the same run (the cores are shared, so the peak is too).

FLOPs are XLA's own count (`jax.jit(f).lower(...).compile().cost_analysis()`). XLA counts a loop
body once whatever its trip count, so the parts are counted apart and multiplied out:
  generation = 2 text encodings (prompt, negative) + steps x UNet on [2B] + VAE decode on [B];
  fine-tune  = finetune_steps x one training step (forward, backward, AdamW).
The peers do the same arithmetic (same model, same sizes), so their FLOP/s use the same count.
Reuses the timings left by bench_generation and bench_classifier in ctx.shared.
"""
from __future__ import annotations

import statistics
import time


def _flops(fn, *args) -> float:
  import jax
  cost = jax.jit(fn).lower(*args).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost["flops"])


def matmul_peak(size: int = 2048, repeats: int = 7) -> dict:
  """float32 GFLOP/s of one large jitted matmul (XLA:CPU, every core)."""
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.key(0), (size, size))
  f = jax.jit(lambda x, y: x @ y)
  jax.block_until_ready(f(a, a))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(f(a, a))
    times.append(time.perf_counter() - start)
  best, median = min(times), statistics.median(times)
  flops = 2.0 * size ** 3
  return {"size": size, "flop_per_s_best": flops / best, "flop_per_s_median": flops / median,
          "dtype": str(jnp.float32.dtype)}


def generation_flops(gen, batch: int) -> dict:
  import jax.numpy as jnp

  from jaxsets.generator.sampler import encode_text, latent_shape
  parts, params, cfg = gen.parts, gen.params, gen.cfg
  ids = jnp.zeros((batch, gen.max_length), jnp.int32)
  shape = latent_shape(parts, cfg, batch)
  x2 = jnp.zeros((2 * batch,) + shape[1:])
  context = jnp.zeros((2 * batch, gen.max_length, parts.text_encoder.config.hidden_size))
  text = _flops(lambda p, i: encode_text(parts, p, i), params["text_encoder"], ids)
  unet = _flops(lambda p, x, c: parts.unet.apply({"params": p}, x, jnp.full((x.shape[0],), 500),
                                                 encoder_hidden_states=c).sample,
                params["unet"], x2, context)
  vae = _flops(lambda p, z: parts.vae.apply({"params": p}, z, method=parts.vae.decode).sample,
               params["vae"], jnp.zeros(shape))
  steps = cfg.num_inference_steps
  return {"text_encoder": 2 * text, "unet_per_step": unet, "steps": steps, "vae_decode": vae,
          "total": 2 * text + steps * unet + vae}


def finetune_flops(shared) -> dict:
  import jax

  from jaxsets.classifier.state import make_optimizer
  from jaxsets.classifier.train import train_steps
  cfg = shared["cfg"]
  tx = make_optimizer(cfg.finetune_learning_rate, cfg.weight_decay, cfg.finetune_steps, cfg)
  state = shared["state"].replace(opt_state=tx.init(shared["state"].params))
  step = _flops(lambda s, r, sup, k: train_steps(s, r, sup, k, 0, cfg=cfg, tx=tx, num_steps=1),
                state, shared["real"], shared["support"], jax.random.key(0))
  return {"per_step": step, "steps": cfg.finetune_steps, "total": step * cfg.finetune_steps}


def _side(flops: float, seconds: float, peak: float) -> dict:
  return {"steady_s": seconds, "flop_per_s": flops / seconds, "fraction_of_peak": flops / seconds / peak}


def _peer(name: str, flops: float, seconds, peak: float) -> dict:
  """The peer's side, or why it is missing (no PyTorch: the bench extra is not installed)."""
  if seconds is None:
    from common import missing_peers, skipped_peer
    return skipped_peer(name, missing_peers("torch") or ["torch"])
  return {"name": name, **_side(flops, seconds, peak)}


def run(ctx) -> list[dict]:
  peak = matmul_peak()
  p = peak["flop_per_s_best"]
  entries = []
  gen = ctx.shared.get("generation")
  if gen:
    f = generation_flops(gen["gen"], gen["batch"])
    entries.append({
        "name": "utilisation/generation", "matmul_peak": peak, "flops_per_call": f,
        "jaxsets": _side(f["total"], gen["jaxsets_s"], p),
        "peer": _peer("diffusers StableDiffusionPipeline (PyTorch, CPU)", f["total"],
                      gen["torch_s"], p),
        "flax_pipeline": _side(f["total"], gen["flax_s"], p),
        "speedup": gen["torch_s"] / gen["jaxsets_s"] if gen["torch_s"] else None})
  ft = ctx.shared.get("finetune")
  if ft:
    f = finetune_flops(ft)
    entries.append({
        "name": "utilisation/classifier_finetune", "matmul_peak": peak, "flops_per_call": f,
        "jaxsets": _side(f["total"], ft["jaxsets_s"], p),
        "peer": _peer("PyTorch SmallCNN, same recipe (eager, CPU)", f["total"], ft["torch_s"], p),
        "speedup": ft["torch_s"] / ft["jaxsets_s"] if ft["torch_s"] else None})
  return entries
