"""The accelerator benchmark's generation sections: jaxsets' sampler, diffusers' Flax pipeline and
diffusers' PyTorch pipeline, each in its own process (accelerator.py starts them), at the same
settings: the model folder (hub layout), resolution, DPM-Solver steps, guidance, empty negative
prompt, batches largest first (the figure that matters most is measured first).

Every side returns host images (jaxsets uint8, the pipelines float numpy, as they return them),
so each call's time covers the same work. `part` is the section's result, saved after each
measurement: a section stopped at its time limit keeps what it measured.
"""
from __future__ import annotations

import time

import numpy as np

PROMPT = "A photo of a cat, dog, and ship"


def _jax_memory() -> dict:
  import jax
  stats = jax.devices()[0].memory_stats() or {}
  return {k: stats[k] for k in ("peak_bytes_in_use", "bytes_in_use", "bytes_limit") if k in stats}


def _timings(call, repeats: int) -> dict:
  """call(i) runs and waits; the first call is compile (or warm-up) + run."""
  times = []
  for i in range(1 + repeats):
    start = time.perf_counter()
    call(i)
    times.append(time.perf_counter() - start)
  steady = float(np.median(times[1:]))
  return {"first_s": times[0], "compile_s": max(times[0] - steady, 0.0), "steady_s": steady,
          "all_s": times[1:]}


def _each_batch(plan: dict, part, measure_batch) -> None:
  """part["batches"][b] = measure_batch(b) for each batch, largest first; a batch that fails
  (out of device memory, say) records its error and the smaller ones still run."""
  part["batches"] = {}
  for batch in plan["batches"]:
    try:
      part["batches"][str(batch)] = measure_batch(batch)
    except Exception as e:  # noqa: BLE001  (recorded in the JSON, with the others' figures)
      part["batches"][str(batch)] = {"error": f"{type(e).__name__}: {str(e)[:2000]}"}
    part.save()


def jaxsets_sampler(plan: dict, part) -> None:
  import jax

  import jaxsets
  from accel_flops import matmul_peak, program_flops, xla_lowered_flops
  # What the chip gives on one large matrix product, for the utilisation beside the data sheet's.
  part["matmul_peak"] = (matmul_peak("float32", size=512) if plan["tiny"] else matmul_peak())
  start = time.perf_counter()
  gen = jaxsets.load_generator(plan["folder"], image_size=plan["size"], channels=3,
                               dtype=plan["dtype"], scheduler="dpm_solver",
                               num_inference_steps=plan["steps"], guidance_scale=plan["guidance"])
  part["load_s"] = time.perf_counter() - start
  key = jax.random.key(0)
  # FLOPs from the program itself (accel_flops), traced once at batch 1 (every part of the
  # sampler is linear in the batch), right after the first batch's timing: a trace, not a
  # compile, so the utilisation survives a section cut short before its last batch.
  sample, one_prompt = (lambda x, k: gen.generate_ids(x, k)), gen.tokenize([PROMPT])

  def measure_batch(batch):
    ids = gen.tokenize([PROMPT] * batch)
    t = _timings(lambda i: np.asarray(gen.generate_ids(ids, jax.random.fold_in(key, i))),
                 plan["repeats"])
    out = {**t, "images_per_s": batch / t["steady_s"], **_jax_memory()}
    if "flops_at_batch_1" not in part:
      part["flops_at_batch_1"] = {"jaxpr": program_flops(sample, one_prompt, key)}
    return {**out, "flops": {"jaxpr": part["flops_at_batch_1"]["jaxpr"] * batch}}

  _each_batch(plan, part, measure_batch)
  part.setdefault("flops_at_batch_1", {"jaxpr": program_flops(sample, one_prompt, key)})
  part["flops_at_batch_1"]["xla_lowered"] = xla_lowered_flops(sample, one_prompt, key)
  part.save()


def flax_pipeline(plan: dict, part) -> None:
  """diffusers' FlaxStableDiffusionPipeline as its documentation calls it: params replicated,
  prompt ids sharded over the devices, jit=True (pmap). Its Flax loaders read only Flax or .bin
  files, so its modules are built from the folder's configs and take the parameters jaxsets
  converted from the same safetensors (diffusers' own Flax names)."""
  import os

  import jax
  import jax.numpy as jnp
  from diffusers import (FlaxAutoencoderKL, FlaxDPMSolverMultistepScheduler,
                         FlaxStableDiffusionPipeline, FlaxUNet2DConditionModel)
  from transformers import CLIPTextConfig, CLIPTokenizer, FlaxCLIPTextModel

  import jaxsets
  folder, dtype = plan["folder"], jnp.dtype(plan["dtype"])
  start = time.perf_counter()
  params = jaxsets.load_generator(folder, image_size=plan["size"], dtype=plan["dtype"]).params
  params = jax.device_get(params)
  unet = FlaxUNet2DConditionModel.from_config(
      FlaxUNet2DConditionModel.load_config(os.path.join(folder, "unet")), dtype=dtype)
  vae = FlaxAutoencoderKL.from_config(
      FlaxAutoencoderKL.load_config(os.path.join(folder, "vae")), dtype=dtype)
  text = FlaxCLIPTextModel(CLIPTextConfig.from_pretrained(os.path.join(folder, "text_encoder")),
                           dtype=dtype, _do_init=False)
  tokenizer = CLIPTokenizer.from_pretrained(os.path.join(folder, "tokenizer"))
  scheduler, scheduler_state = FlaxDPMSolverMultistepScheduler.from_pretrained(
      os.path.join(folder, "scheduler"))
  pipe = FlaxStableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                                     scheduler=scheduler, safety_checker=None,
                                     feature_extractor=None, dtype=dtype)
  # What flax.jax_utils.replicate / common_utils.shard do, written out: older flax's replicate
  # calls jax.device_put_replicated, which newer jax removed (shared STACK.md).
  devices = jax.device_count()
  params = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * devices),
                        {**params, "scheduler": scheduler_state})
  shard = lambda x: x.reshape((devices, -1) + x.shape[1:])
  part["load_s"] = time.perf_counter() - start

  def measure_batch(batch):
    if batch % devices:
      return {"skipped": f"batch {batch} does not split over {devices} devices"}
    ids = shard(pipe.prepare_inputs([PROMPT] * batch))             # [devices, B / devices, L]

    def call(i):
      rng = jax.random.split(jax.random.PRNGKey(i), devices)
      return pipe(ids, params, rng, num_inference_steps=plan["steps"],
                  guidance_scale=plan["guidance"], height=plan["size"], width=plan["size"],
                  jit=True).images                                 # numpy on the host

    t = _timings(call, plan["repeats"])
    return {**t, "images_per_s": batch / t["steady_s"], **_jax_memory()}

  _each_batch(plan, part, measure_batch)


def torch_pipeline(plan: dict, part) -> None:
  """diffusers' StableDiffusionPipeline on the same GPU: float16, PyTorch's scaled-dot-product
  attention (diffusers' default processor on torch 2), DPM-Solver++, and whichever of
  channels_last and contiguous measured faster at batch 1 (accel_torch.DevicePipelinePeer)."""
  import torch

  from accel_torch import DevicePipelinePeer
  if not torch.cuda.is_available() and not plan["tiny"]:
    part["skipped"] = "torch sees no GPU"
    return
  device = "cuda" if torch.cuda.is_available() else "cpu"
  start = time.perf_counter()
  peer = DevicePipelinePeer(plan["folder"], steps=plan["steps"], guidance=plan["guidance"],
                            size=plan["size"], device=device)
  part["load_s"] = time.perf_counter() - start
  part["name"] = peer.name
  part["device"] = torch.cuda.get_device_name() if device == "cuda" else "cpu"
  processors = peer.pipe.unet.attn_processors
  part["settings"] = {"attention": sorted({type(p).__name__ for p in processors.values()}),
                      "torch": torch.__version__}

  def call(batch, i):
    images = peer.generate([PROMPT] * batch, i)
    if device == "cuda":
      torch.cuda.synchronize()
    return images

  trials = {}
  for fmt in ("contiguous", "channels_last"):
    peer.set_memory_format(fmt)
    trials[fmt] = _timings(lambda i: call(1, i), 1)["steady_s"]
  best = min(trials, key=trials.get)
  peer.set_memory_format(best)
  part["settings"].update(memory_format=best, memory_format_trials_s=trials)

  def measure_batch(batch):
    if device == "cuda":
      torch.cuda.empty_cache()  # after an out-of-memory batch, the next starts clean
      torch.cuda.reset_peak_memory_stats()
    t = _timings(lambda i: call(batch, i), plan["repeats"])
    memory = {"peak_bytes_in_use": torch.cuda.max_memory_allocated()} if device == "cuda" else {}
    return {**t, "images_per_s": batch / t["steady_s"], **memory}

  _each_batch(plan, part, measure_batch)
