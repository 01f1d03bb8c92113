"""Stable Diffusion laid out as its Hugging Face repository, with seeded random weights.

  python benchmarks/sd_hub_layout.py --arch sd15|sd21base|sd21 --out DIR [--tiny] [--dtype float16]

No real SD weights can be downloaded here, so this writes what a user's download holds, with the
published architecture and random numbers: model_index.json, scheduler/scheduler_config.json,
text_encoder/{config.json, model.safetensors}, tokenizer/ (CLIP's real BPE, clip_bpe.py),
unet/ and vae/ {config.json, diffusion_pytorch_model.safetensors}, feature_extractor/.
  sd15      runwayml/stable-diffusion-v1-5: CLIP ViT-L/14 text encoder (12 layers, 768), PNDM
  sd21base  stabilityai/stable-diffusion-2-1-base: OpenCLIP ViT-H text encoder (23 layers, 1024)
  sd21      stabilityai/stable-diffusion-2-1: 768 px, v-prediction, upcast_attention
Source of the configs and file details: the published config files as recalled (their values are
checked by the parameter counts below, which are the released checkpoints'). Assumptions, not
verifiable offline: the main branch holds float32 safetensors for all three (UNet ~3.4 GB; the
float16 copies are the `fp16` variant/branch); the text encoders' files still carry the int64
`text_model.embeddings.position_ids` buffer, and the VAEs' mid-block attention the pre-0.15
diffusers names (query/key/value/proj_attn), as files saved in late 2022 do; the 2.x schedulers
are DDIM. The safety checker's weights (SD 1.5) are left out, as jaxsets' download leaves them.

Names and shapes come from the Flax modules' `jax.eval_shape` (sd_state_names.py: nothing
allocated, no PyTorch needed), renamed and transposed to PyTorch's layout; a test holds them equal
to the PyTorch modules' state dicts on the `meta` device. Each tensor is drawn from its own seeded generator and streamed
to disk, so memory stays at one tensor. Values keep a forward pass finite and unsaturated: weights N(0, 1/fan_in), norm scales
1 + N(0, 0.05^2), biases N(0, 0.02^2): not 1 and 0, so a scale or bias in the wrong place shows
in a comparison. The folder is written to DIR.tmp and renamed when complete.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_bpe  # noqa: E402
from sd_state_names import state_shapes  # noqa: E402

_DOWN = ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
_UP = ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3
_UNET_COMMON = dict(
    _class_name="UNet2DConditionModel", act_fn="silu", block_out_channels=[320, 640, 1280, 1280],
    center_input_sample=False, down_block_types=_DOWN, downsample_padding=1, flip_sin_to_cos=True,
    freq_shift=0, in_channels=4, layers_per_block=2, mid_block_scale_factor=1, norm_eps=1e-05,
    norm_num_groups=32, out_channels=4, up_block_types=_UP)
_SD2_UNET = dict(_UNET_COMMON, _diffusers_version="0.10.0.dev0", attention_head_dim=[5, 10, 20, 20],
                 cross_attention_dim=1024, dual_cross_attention=False, num_class_embeds=None,
                 only_cross_attention=False, use_linear_projection=True)
_VAE = dict(_class_name="AutoencoderKL", act_fn="silu", block_out_channels=[128, 256, 512, 512],
            down_block_types=["DownEncoderBlock2D"] * 4, in_channels=3, latent_channels=4,
            layers_per_block=2, norm_num_groups=32, out_channels=3,
            up_block_types=["UpDecoderBlock2D"] * 4)
_TEXT_COMMON = dict(architectures=["CLIPTextModel"], attention_dropout=0.0, bos_token_id=0,
                    dropout=0.0, eos_token_id=2, initializer_factor=1.0, initializer_range=0.02,
                    layer_norm_eps=1e-05, max_position_embeddings=77, model_type="clip_text_model",
                    pad_token_id=1, torch_dtype="float32", vocab_size=49408)
_SCHEDULER = dict(beta_end=0.012, beta_schedule="scaled_linear", beta_start=0.00085,
                  clip_sample=False, num_train_timesteps=1000, set_alpha_to_one=False,
                  skip_prk_steps=True, steps_offset=1, trained_betas=None)
_SD2_TEXT = dict(_TEXT_COMMON, _name_or_path="hf-models/stable-diffusion-v2-768x768/text_encoder",
                 hidden_act="gelu", hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                 num_hidden_layers=23, projection_dim=512, transformers_version="4.25.0.dev0")

ARCHS = {
    "sd15": dict(
        repo="runwayml/stable-diffusion-v1-5", pad_token="<|endoftext|>",
        unet=dict(_UNET_COMMON, _diffusers_version="0.6.0", attention_head_dim=8,
                  cross_attention_dim=768, sample_size=64),
        vae=dict(_VAE, _diffusers_version="0.6.0", sample_size=512),
        text_encoder=dict(_TEXT_COMMON, _name_or_path="openai/clip-vit-large-patch14",
                          hidden_act="quick_gelu", hidden_size=768, intermediate_size=3072,
                          num_attention_heads=12, num_hidden_layers=12, projection_dim=768,
                          transformers_version="4.22.0.dev0"),
        scheduler=dict(_SCHEDULER, _class_name="PNDMScheduler", _diffusers_version="0.6.0"),
        safety_checker=["stable_diffusion", "StableDiffusionSafetyChecker"]),
    "sd21base": dict(
        repo="stabilityai/stable-diffusion-2-1-base", pad_token="!",
        unet=dict(_SD2_UNET, sample_size=64), vae=dict(_VAE, _diffusers_version="0.10.0.dev0",
                                                      sample_size=512),
        text_encoder=_SD2_TEXT,
        scheduler=dict(_SCHEDULER, _class_name="DDIMScheduler", _diffusers_version="0.10.0.dev0",
                       prediction_type="epsilon"),
        safety_checker=[None, None]),
    "sd21": dict(
        repo="stabilityai/stable-diffusion-2-1", pad_token="!",
        unet=dict(_SD2_UNET, sample_size=96, upcast_attention=True, class_embed_type=None,
                  resnet_time_scale_shift="default"),
        vae=dict(_VAE, _diffusers_version="0.10.0.dev0", sample_size=768),
        text_encoder=_SD2_TEXT,
        scheduler=dict(_SCHEDULER, _class_name="DDIMScheduler", _diffusers_version="0.10.0.dev0",
                       prediction_type="v_prediction"),
        safety_checker=[None, None]),
}
# Parameters of the released checkpoints (float tensors; the position_ids buffer is not one).
_SD2_COUNTS = {"unet": 865_910_724, "text_encoder": 340_387_840, "vae": 83_653_863}
PUBLISHED_PARAMS = {"sd15": {"unet": 859_520_964, "text_encoder": 123_060_480, "vae": 83_653_863},
                    "sd21base": _SD2_COUNTS, "sd21": _SD2_COUNTS}
# CLIP's image preprocessing, as every SD repo's feature_extractor/ ships it (for the safety checker).
_PREPROCESSOR = dict(crop_size=224, do_center_crop=True, do_normalize=True, do_resize=True,
                     feature_extractor_type="CLIPFeatureExtractor",
                     image_mean=[0.48145466, 0.4578275, 0.40821073],
                     image_std=[0.26862954, 0.26130258, 0.27577711], resample=3, size=224)
WEIGHT_FILES = {"text_encoder": "model.safetensors", "unet": "diffusion_pytorch_model.safetensors",
                "vae": "diffusion_pytorch_model.safetensors"}


def arch_configs(arch: str, tiny: bool = False) -> dict:
  """The published configs of `arch`; `tiny` keeps every structural choice (block types, head
  layout, linear projection, upcast, prediction type, vocabulary) at a few channels and layers."""
  if arch not in ARCHS:
    raise SystemExit(f"unknown --arch {arch!r}: choose one of {', '.join(ARCHS)}")
  spec = json.loads(json.dumps(ARCHS[arch]))  # a deep copy
  if tiny:
    heads = spec["unet"]["attention_head_dim"]
    # 32 norm groups, as published: diffusers' Flax UNet ignores norm_num_groups (always 32).
    spec["unet"].update(block_out_channels=[32, 32, 64, 64], layers_per_block=1, sample_size=8,
                        cross_attention_dim=32,
                        attention_head_dim=[1, 2, 4, 4] if isinstance(heads, list) else 2)
    spec["vae"].update(block_out_channels=[32, 32, 32, 32], layers_per_block=1, sample_size=64)
    spec["text_encoder"].update(hidden_size=32, intermediate_size=64, num_attention_heads=4,
                                num_hidden_layers=2, projection_dim=32)
  return spec


def build(arch: str, out: str, *, tiny: bool = False, seed: int = 0, dtype: str = "float32",
          tokenizer_folder: str | None = None) -> dict:
  """Writes `arch` to `out` (if not already complete) and returns {part: parameter count}.

  The tokenizer is CLIP's real one (needs the open_clip_torch wheel's BPE file) unless
  `tokenizer_folder` names vocab.json/merges.txt to copy instead.
  """
  spec = arch_configs(arch, tiny)
  recipe = {"arch": arch, "tiny": tiny, "seed": seed, "dtype": dtype,
            "tokenizer": "copied" if tokenizer_folder else "clip"}
  built = _read_json(os.path.join(out, "jaxsets_build.json"))
  if built and {k: built.get(k) for k in recipe} == recipe:
    return built["params"]
  if dtype not in ("float32", "float16"):
    raise SystemExit(f"--dtype {dtype!r}: the hub's files are float32 (main) or float16 (fp16 variant)")
  tmp = out.rstrip("/") + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  shapes = state_shapes(spec)
  counts = {}
  for part in ("text_encoder", "unet", "vae"):
    os.makedirs(os.path.join(tmp, part))
    config = dict(spec[part])
    if part == "text_encoder":
      config["torch_dtype"] = dtype
    _write_json(os.path.join(tmp, part, "config.json"), config)
    counts[part] = write_random_safetensors(os.path.join(tmp, part, WEIGHT_FILES[part]),
                                            shapes[part], seed=zlib.crc32(part.encode()) + seed,
                                            dtype=dtype)
  tok = os.path.join(tmp, "tokenizer")
  if tokenizer_folder:
    os.makedirs(tok)
    for name in ("vocab.json", "merges.txt"):
      shutil.copy(os.path.join(tokenizer_folder, name), tok)
    clip_bpe.write_tokenizer_configs(tok, pad_token=spec["pad_token"], name_or_path=spec["repo"])
  else:
    clip_bpe.write_clip_tokenizer(tok, pad_token=spec["pad_token"], name_or_path=spec["repo"])
  _write_json(os.path.join(tmp, "scheduler", "scheduler_config.json"), spec["scheduler"])
  _write_json(os.path.join(tmp, "feature_extractor", "preprocessor_config.json"), _PREPROCESSOR)
  _write_json(os.path.join(tmp, "model_index.json"), {
      "_class_name": "StableDiffusionPipeline", "_diffusers_version": spec["unet"]["_diffusers_version"],
      "feature_extractor": ["transformers", "CLIPImageProcessor"],
      "requires_safety_checker": spec["safety_checker"][0] is not None,
      "safety_checker": spec["safety_checker"],
      "scheduler": ["diffusers", spec["scheduler"]["_class_name"]],
      "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
      "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]})
  # Not part of a hub repo: how this copy was made (the counts, for a rebuilt-folder check).
  _write_json(os.path.join(tmp, "jaxsets_build.json"), {**recipe, "params": counts})
  shutil.rmtree(out, ignore_errors=True)
  os.replace(tmp, out)
  return counts


def random_tensor(name: str, shape: tuple, seed: int) -> np.ndarray:
  """float32 values for one tensor (see the module docstring); the same name and seed give the
  same numbers whatever else the folder holds."""
  rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
  x = rng.standard_normal(shape, dtype=np.float32)
  if name.endswith("bias"):
    return x * np.float32(0.02)
  if len(shape) == 1:  # every 1-D weight in these models is a norm's scale
    return x * np.float32(0.05) + np.float32(1.0)
  return x * np.float32(1.0 / np.sqrt(np.prod(shape[1:])))


def write_random_safetensors(path: str, shapes: dict, *, seed: int, dtype: str) -> int:
  """Streams one tensor at a time into a safetensors file; returns the float parameter count."""
  codes = {"F": ("F16", np.float16) if dtype == "float16" else ("F32", np.float32),
           "I64": ("I64", np.int64)}
  header, offset, count = {"__metadata__": {"format": "pt"}}, 0, 0
  names = sorted(shapes)
  for name in names:
    shape, kind = shapes[name]
    code, np_dtype = codes[kind]
    size = int(np.prod(shape)) * np.dtype(np_dtype).itemsize
    header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + size]}
    offset += size
    count += int(np.prod(shape)) if kind == "F" else 0
  encoded = json.dumps(header, separators=(",", ":")).encode()
  encoded += b" " * (-len(encoded) % 8)  # the format pads the header to 8-byte alignment
  with open(path, "wb") as f:
    f.write(len(encoded).to_bytes(8, "little") + encoded)
    for name in names:
      shape, kind = shapes[name]
      if kind == "I64":  # position_ids: 0..L-1
        f.write(np.arange(shape[-1], dtype=np.int64).reshape(shape).tobytes())
      else:
        f.write(random_tensor(name, shape, seed).astype(codes["F"][1]).tobytes())
  return count


def _read_json(path: str):
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)


def _write_json(path: str, obj) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True)
    f.write("\n")


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--arch", required=True, choices=sorted(ARCHS))
  parser.add_argument("--out", required=True)
  parser.add_argument("--tiny", action="store_true", help="same structure, a few channels and layers")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--dtype", default="float32", choices=["float32", "float16"])
  parser.add_argument("--tokenizer-folder", default=None,
                      help="copy vocab.json/merges.txt from here instead of building CLIP's")
  args = parser.parse_args(argv)
  os.environ.setdefault("USE_TORCH", "0")  # the Flax modules' shapes are all it needs
  counts = build(args.arch, args.out, tiny=args.tiny, seed=args.seed, dtype=args.dtype,
                 tokenizer_folder=args.tokenizer_folder)
  print(json.dumps({"folder": args.out, "params": counts,
                    "published": None if args.tiny else PUBLISHED_PARAMS[args.arch]}))


if __name__ == "__main__":
  main()
