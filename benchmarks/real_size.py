"""Stable Diffusion at real size, offline: load, sample and check against PyTorch.

  python benchmarks/real_size.py --arch sd21base --out FILE.json [--dtype bfloat16] [--scratch DIR]
  python benchmarks/real_size.py --arch sd21 --tiny --out FILE.json       # the same path, seconds

Builds the hub layout once (sd_hub_layout.py, into --scratch), then measures, each step in its own
process so that peak memory (ru_maxrss) belongs to one step and the peers' imports do not mix:
  warm     before each of the next two, in its own process: the files into the page cache and as
           many bytes of fresh memory touched (a VM's first touch of memory is slow)
  read     every safetensors file read with safetensors.numpy
  jaxsets  `jaxsets.load_generator(folder, ...)`: its time and, within it, the weights' load
           (hf.load_parts: files to parameters on the device), peak RSS after loading, the loaded
           parameters' bytes; one image at the native resolution (2 steps); the scheduler's
           prediction type as the sampler builds it; the text encoder, UNet (one forward, batch 1,
           64x64 latent) and VAE decode (32x32 latent) on fixed inputs
  torch    the same three forwards by PyTorch diffusers/transformers loading the same folder in
           float32 (skipped, with the reason, where torch is absent): max abs difference, output std
The JSON is written atomically; a short table is printed (real_size_report.py). One arch per
process: run them in turn.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sd_hub_layout  # noqa: E402
from real_size_report import markdown, table  # noqa: E402

PROMPT = "A photo of a cat, dog, and bird"
COMPONENT_FILES = [os.path.join(p, sd_hub_layout.WEIGHT_FILES[p]) for p in ("text_encoder", "unet", "vae")]
_TIMEOUT_S = 3600


def peak_rss_gb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def _progress(stage: str) -> None:
  """To stderr, so that a child killed for memory still says how far it got and at what peak."""
  print(f"[real_size] {stage}: peak RSS {peak_rss_gb():.2f} GB", file=sys.stderr, flush=True)


def child_warm(folder: str, args) -> dict:
  """Run before each timed child, in a process of its own: the weight files into the page cache
  (through one reused buffer) and as many bytes of fresh memory touched, then freed on exit. On a
  VM, memory the guest has not used yet costs the host's page fault at its first touch (5.8 s per
  GB here against 0.3 s once touched), which would otherwise fall on whichever child came first."""
  buffer, total = bytearray(1 << 24), 0
  for name in COMPONENT_FILES:
    with open(os.path.join(folder, name), "rb", buffering=0) as f:
      while n := f.readinto(buffer):
        total += n
  np.ones(total, np.uint8)
  return {"bytes": total}


def child_read(folder: str, args) -> dict:
  import safetensors.numpy
  start, total = time.perf_counter(), 0
  for name in COMPONENT_FILES:
    total += sum(v.nbytes for v in safetensors.numpy.load_file(os.path.join(folder, name)).values())
  return {"read_s": time.perf_counter() - start, "bytes": total, "peak_rss_gb": peak_rss_gb()}


def forward_inputs(folder: str, args) -> dict:
  """The comparison's inputs, the same numbers for both sides (float32)."""
  with open(os.path.join(folder, "text_encoder", "config.json")) as f:
    width = json.load(f)["hidden_size"]
  rng = np.random.default_rng(0)
  # Tiny: 32x32, so the UNet's 1x1-pixel bottom level (at 8x8) does not leave its group norms two
  # values per group, where float32 rounding differences grow to 1e-2.
  side = 32 if args.tiny else 64
  # The VAE's latent side must not be 4: diffusers' Flax decode takes a [B, 4, 4, 4] latent as
  # channels-last (it transposes only when the last axis is not latent_channels).
  vae_side = 8 if args.tiny else 32
  return {"unet_latents": rng.standard_normal((1, 4, side, side), dtype=np.float32),
          "unet_timestep": np.array([500], np.int32),
          "unet_context": rng.standard_normal((1, 77, width), dtype=np.float32),
          "vae_latents": rng.standard_normal((1, 4, vae_side, vae_side), dtype=np.float32)}


def child_jaxsets(folder: str, args) -> dict:
  import jax
  import jax.numpy as jnp

  import jaxsets
  from jaxsets.generator import hf
  from jaxsets.generator.sampler import encode_text
  with open(os.path.join(folder, "unet", "config.json")) as f:
    native = 8 * json.load(f)["sample_size"]
  # The public call below loads the weights (hf.load_parts, timed on its own here) and then
  # readies the generator: parameters placed on the mesh, the negative prompt's text encoding
  # compiled and run. Only the first is loading; the second is reported beside it.
  load_parts, weights = hf.load_parts, {}

  def timed_load_parts(*a, **kw):
    t = time.perf_counter()
    parts = jax.block_until_ready(load_parts(*a, **kw))
    weights["s"] = time.perf_counter() - t
    return parts

  hf.load_parts = timed_load_parts
  start = time.perf_counter()
  gen = jaxsets.load_generator(folder, image_size=native, dtype=args.dtype, scheduler="ddim",
                               num_inference_steps=max(args.steps, 1), guidance_scale=7.5)
  load_s, load_peak = time.perf_counter() - start, peak_rss_gb()
  hf.load_parts = load_parts
  _progress(f"loaded in {load_s:.1f} s, of which the weights {weights['s']:.1f} s")
  parts, params = gen.parts, gen.parts.params
  param_bytes = sum(x.nbytes for x in jax.tree.leaves(params))
  scheduler, _ = hf.make_scheduler(gen.cfg.scheduler, parts.scheduler_config)
  start = time.perf_counter()
  # --steps 0: load and compare only (the sample's compilation dominates a CPU run).
  image = gen.generate([PROMPT], jax.random.key(0)) if args.steps else np.zeros((0,), np.uint8)
  sample_s = time.perf_counter() - start if args.steps else None
  _progress(f"sampled in {sample_s} s")
  inputs, dtype = forward_inputs(folder, args), jax.tree.leaves(params["unet"])[0].dtype
  ids = gen.tokenize([PROMPT])
  text = jax.jit(lambda p, i: encode_text(parts, p, i))(params["text_encoder"], ids)
  unet = jax.jit(lambda p, x, t, c: parts.unet.apply({"params": p}, x, t, encoder_hidden_states=c).sample)(
      params["unet"], jnp.asarray(inputs["unet_latents"], dtype), jnp.asarray(inputs["unet_timestep"]),
      jnp.asarray(inputs["unet_context"], dtype))
  vae = jax.jit(lambda p, z: parts.vae.apply({"params": p}, z, method=parts.vae.decode).sample)(
      params["vae"], jnp.asarray(inputs["vae_latents"], dtype))
  as32 = lambda x: np.asarray(jnp.asarray(x, jnp.float32))
  np.savez(os.path.join(args.scratch, f"{args.tag}_jaxsets_outputs.npz"), ids=np.asarray(ids),
           text=as32(text), unet=as32(unet), vae=as32(vae), **inputs)
  return {"load_s": load_s, "weights_s": weights["s"], "peak_rss_after_load_gb": load_peak,
          "param_bytes": int(param_bytes),
          "param_count": int(sum(x.size for x in jax.tree.leaves(params))),
          "params_dtype": str(dtype), "sample_s_first_call": sample_s,
          "image_shape": list(image.shape), "image_std": float(image.std()) if image.size else None,
          "image_finite_nonconstant": bool(image.size and np.isfinite(image).all() and image.std() > 0),
          "scheduler": gen.cfg.scheduler,
          "prediction_type_in_folder": parts.scheduler_config.get("prediction_type", "epsilon"),
          "prediction_type_in_sampler": scheduler.config.prediction_type,
          "upcast_attention_in_config": bool(parts.unet.config.get("upcast_attention", False)),
          "peak_rss_gb": peak_rss_gb(), "jax": jax.__version__, "devices": str(jax.devices())}


def child_torch(folder: str, args) -> dict:
  import torch
  from diffusers import AutoencoderKL, UNet2DConditionModel
  from transformers import CLIPTextModel
  ours = np.load(os.path.join(args.scratch, f"{args.tag}_jaxsets_outputs.npz"))
  start = time.perf_counter()
  loaded, problems = {}, {}
  for name, cls in (("text_encoder", CLIPTextModel), ("unet", UNet2DConditionModel),
                    ("vae", AutoencoderKL)):
    model, info = cls.from_pretrained(folder, subfolder=name, torch_dtype=torch.float32,
                                      output_loading_info=True)
    loaded[name] = model.eval()
    problems[name] = {k: list(v)[:5] for k, v in info.items() if v and k != "mismatched_keys"}
  load_s = time.perf_counter() - start
  with torch.no_grad():
    ref = {"text": loaded["text_encoder"](torch.from_numpy(ours["ids"]).long()).last_hidden_state,
           "unet": loaded["unet"](torch.from_numpy(ours["unet_latents"]),
                                  torch.from_numpy(ours["unet_timestep"]).long(),
                                  encoder_hidden_states=torch.from_numpy(ours["unet_context"])).sample,
           "vae": loaded["vae"].decode(torch.from_numpy(ours["vae_latents"])).sample}
  out = {"torch": torch.__version__, "load_s": load_s, "loading_problems": problems,
         "peak_rss_gb": peak_rss_gb()}
  for name, value in ref.items():
    value = value.numpy()
    out[name] = {"max_abs_diff": float(np.abs(value - ours[name]).max()),
                 "torch_output_std": float(value.std()), "shape": list(value.shape)}
  return out


CHILDREN = {"warm": child_warm, "read": child_read, "jaxsets": child_jaxsets, "torch": child_torch}


def run_child(name: str, folder: str, args) -> dict:
  """One measurement in a fresh process; {"error": ...} if it failed (the others still run)."""
  result = os.path.join(args.scratch, f"{args.tag}_{name}.json")
  if os.path.exists(result):
    os.remove(result)
  env = dict(os.environ, USE_TF="0", USE_TORCH="1" if name == "torch" else "0")
  cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--folder", folder,
         "--result", result, "--arch", args.arch, "--dtype", args.dtype, "--steps", str(args.steps),
         "--scratch", args.scratch] + (["--tiny"] if args.tiny else [])
  start = time.perf_counter()
  proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=_TIMEOUT_S)
  if proc.returncode != 0 or not os.path.exists(result):
    progress = [line for line in proc.stderr.splitlines() if line.startswith("[real_size]")]
    return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"],
            "exit": proc.returncode, "progress": progress,
            "stderr_tail": proc.stderr[-3000:]}
  with open(result) as f:
    return {**json.load(f), "process_s": time.perf_counter() - start}


def measure(args) -> dict:
  folder = os.path.join(args.scratch, args.arch + ("_tiny" if args.tiny else ""))
  start = time.perf_counter()
  build = subprocess.run([sys.executable, os.path.join(HERE, "sd_hub_layout.py"), "--arch", args.arch,
                          "--out", folder] + (["--tiny"] if args.tiny else [])
                         + (["--tokenizer-folder", args.tokenizer_folder] if args.tokenizer_folder else []),
                         capture_output=True, text=True, timeout=_TIMEOUT_S)
  if build.returncode != 0:
    raise SystemExit(f"building {folder} failed:\n{build.stderr[-3000:]}")
  counts = json.loads(build.stdout.strip().splitlines()[-1])["params"]
  out = {"arch": args.arch, "tiny": args.tiny, "dtype": args.dtype, "steps": args.steps,
         "folder": folder, "build_or_check_s": time.perf_counter() - start, "params_in_files": counts,
         "matches_published": None if args.tiny else counts == sd_hub_layout.PUBLISHED_PARAMS[args.arch],
         "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
         "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                     "processor": platform.processor(), "python": platform.python_version()},
         "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "code": _code_state(),
         "load_average_at_start": os.getloadavg()}
  # The two timed children start alike: page cache warm, fresh memory touched (child_warm).
  for name in ("read", "jaxsets"):
    warm = run_child("warm", folder, args)
    out[name] = {**run_child(name, folder, args), "warmed_bytes": warm.get("bytes", warm)}
  import importlib.util
  if "error" in out["jaxsets"]:
    out["torch"] = {"skipped": "jaxsets' side failed, nothing to compare"}
  elif importlib.util.find_spec("torch") is None:
    out["torch"] = {"skipped": "torch is not installed (pip install -e '.[bench]')"}
  else:
    out["torch"] = run_child("torch", folder, args)
  out["load_average_at_end"] = os.getloadavg()  # other work on the machine slows every figure
  r, j = out["read"], out["jaxsets"]
  if "error" not in r and "error" not in j:
    out["load_over_read"] = j["load_s"] / r["read_s"]
    out["weights_over_read"] = j["weights_s"] / r["read_s"]
    out["load_peak_over_params"] = j["peak_rss_after_load_gb"] * 2**30 / j["param_bytes"]
  return out


def _code_state() -> dict:
  """The commit measured and the loader files that differed from it (uncommitted work)."""
  git = lambda *a: subprocess.run(["git", *a], cwd=HERE, capture_output=True, text=True).stdout.strip()
  return {"head": git("rev-parse", "HEAD"),
          "uncommitted_generator_files": git("status", "--short", "--", "../jaxsets/generator").splitlines()}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--arch", choices=sorted(sd_hub_layout.ARCHS))
  parser.add_argument("--out", help="the JSON to write")
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--scratch", default="/tmp/jaxsets_real_size")
  parser.add_argument("--steps", type=int, default=2)
  parser.add_argument("--tiny", action="store_true")
  parser.add_argument("--tokenizer-folder", default=None,
                      help="vocab.json/merges.txt to use where open_clip_torch's BPE file is absent")
  parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
  parser.add_argument("--folder", help=argparse.SUPPRESS)
  parser.add_argument("--result", help=argparse.SUPPRESS)
  parser.add_argument("--markdown", nargs="+", metavar="JSON", help="print these results as a table")
  args = parser.parse_args(argv)
  if args.markdown:
    outs = []
    for path in args.markdown:
      with open(path) as f:
        outs.append(json.load(f))
    print(markdown(outs))
    return
  os.makedirs(args.scratch, exist_ok=True)
  args.tag = f"{args.arch}{'_tiny' if args.tiny else ''}_{args.dtype}"
  if args.child:
    result = CHILDREN[args.child](args.folder, args)
    with open(args.result, "w") as f:
      json.dump(result, f)
    return
  if not args.out or not args.arch:
    parser.error("--arch and --out are required")
  out = measure(args)
  tmp = args.out + ".tmp"
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(tmp, "w") as f:
    json.dump(out, f, indent=1)
  os.replace(tmp, args.out)
  print(table(out))


if __name__ == "__main__":
  main()
