"""Stable Diffusion in its Hugging Face hub layout, random weights, for the accelerator benchmark.

The real size is SD 2.1-base (512 px), built by `benchmarks/sd_hub_layout.py --arch sd21base`
(CLIP's real tokenizer from the open_clip_torch wheel's BPE file, which benchmarks/device/
prepare.sh carries). `--tiny` uses the builder here: the same layout (model_index.json with
PyTorch class names, scheduler/, tokenizer/, text_encoder/model.safetensors, unet/ and vae/
diffusion_pytorch_model.safetensors, PyTorch tensor names and layouts) with a 2-level UNet and
a vocabulary of a few hundred words, written without PyTorch or open_clip: it compiles in a
fraction of sd_hub_layout's tiny 4-level model's time, and CI, which has no PyTorch, runs it.
The SD 2.1-base configs below build the real size where sd_hub_layout.py is absent.

Shapes come from `jax.eval_shape` of the Flax models' init (no computation); values are drawn on
the host: kernels and embeddings N(0, 0.02^2), norm scales 1, biases 0. Speed does not depend on
the values. Run in a process whose jax uses the CPU (the accelerator's memory stays untouched).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HUB_LAYOUT_COMMAND = os.path.join(HERE, "sd_hub_layout.py")

# A Stable-Diffusion-shaped model small enough to sample on a CPU in a second: two UNet levels
# (cross-attention at the lower one), a 2-level VAE (16 px images from 8x8 latents), a 2-layer
# CLIP text encoder with SD's 77-token context.
TINY = {
    "unet": dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), block_out_channels=(32, 64),
                 attention_head_dim=4, cross_attention_dim=32),
    "vae": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                down_block_types=("DownEncoderBlock2D",) * 2,
                up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(16, 32),
                norm_num_groups=8, sample_size=16, scaling_factor=0.18215),
    "text": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 max_position_embeddings=77, projection_dim=32, hidden_act="gelu"),
}
# stabilityai/stable-diffusion-2-1-base, architecture fields (the fallback when sd_hub_layout.py
# is absent): SD 2.1's UNet and OpenCLIP-H text encoder at 512 px, epsilon prediction.
SD21_BASE = {
    "unet": dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
                 cross_attention_dim=1024, use_linear_projection=True,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3),
    "vae": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                block_out_channels=(128, 256, 512, 512), sample_size=512,
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.18215),
    "text": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                 num_attention_heads=16, max_position_embeddings=77, projection_dim=512,
                 hidden_act="gelu"),
}
SCHEDULER = dict(_class_name="DDIMScheduler", num_train_timesteps=1000, beta_start=0.00085,
                 beta_end=0.012, beta_schedule="scaled_linear", prediction_type="epsilon",
                 clip_sample=False, set_alpha_to_one=False, steps_offset=1)
VOCAB_SIZE = 49408  # CLIP's; the tiny model's vocabulary is only the words below
WORDS = ["A photo of a cat, dog, and ship", "drawing painting sketch airplane automobile bird "
         "deer frog horse truck zero one two three four five six seven eight nine blurry low "
         "quality text watermark"]


def build_folder(out: str, *, tiny: bool, seed: int = 0) -> dict:
  """Writes the model to `out` once (atomically: out.tmp, then a rename); returns what it built."""
  if os.path.isfile(os.path.join(out, "model_index.json")):
    return {"folder": out, "built_by": "already there"}
  if not tiny and os.path.isfile(HUB_LAYOUT_COMMAND):
    subprocess.run([sys.executable, HUB_LAYOUT_COMMAND, "--arch", "sd21base", "--out", out],
                   check=True)
    return {"folder": out, "built_by": "benchmarks/sd_hub_layout.py --arch sd21base"}
  arch = TINY if tiny else SD21_BASE
  tmp = out + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  counts = _write(tmp, arch, seed)
  os.replace(tmp, out)
  return {"folder": out, "built_by": "benchmarks/accel_sd_folder.py (" + (
      "tiny" if tiny else "SD 2.1-base") + ")", "params": counts}


def _random_like(shapes, rng):
  import jax
  import numpy as np

  def draw(path, leaf):
    name = jax.tree_util.keystr(path[-1:])
    if "scale" in name:
      return np.ones(leaf.shape, np.float32)
    if "bias" in name:
      return np.zeros(leaf.shape, np.float32)
    return 0.02 * rng.standard_normal(leaf.shape, dtype=np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _write(folder: str, arch: dict, seed: int) -> dict:
  import jax
  import numpy as np
  import safetensors.numpy
  from diffusers import FlaxAutoencoderKL, FlaxUNet2DConditionModel
  from transformers import CLIPTextConfig, FlaxCLIPTextModel

  from jaxsets.generator.embedded import vocab
  from sd_weights import flax_to_torch_state

  rng = np.random.default_rng(seed)  # test weights, not a learner: host randomness is fine
  key = jax.random.PRNGKey(0)
  tok_dir = os.path.join(folder, "tokenizer")
  vocab.write_vocab(tok_dir, WORDS)
  with open(os.path.join(tok_dir, "vocab.json")) as f:
    ids = json.load(f)
  if arch is SD21_BASE:  # the text encoder's 49,408 rows need as many tokens (fillers, never hit)
    ids.update({f"<|filler{i}|>": i for i in range(len(ids), VOCAB_SIZE)})
    _dump(os.path.join(tok_dir, "vocab.json"), ids)
  length = arch["text"]["max_position_embeddings"]
  _dump(os.path.join(tok_dir, "tokenizer_config.json"), {
      "model_max_length": length, "bos_token": vocab.BOS, "eos_token": vocab.EOS,
      "unk_token": vocab.EOS, "pad_token": "!", "tokenizer_class": "CLIPTokenizer"})
  text_cfg = CLIPTextConfig(vocab_size=len(ids), bos_token_id=ids[vocab.BOS],
                            eos_token_id=ids[vocab.EOS], pad_token_id=ids["!"], **arch["text"])
  text = FlaxCLIPTextModel(text_cfg, _do_init=False)
  modules = {"unet": FlaxUNet2DConditionModel(**arch["unet"]),
             "vae": FlaxAutoencoderKL(**arch["vae"])}
  shapes = {"text_encoder": jax.eval_shape(lambda k: text.init_weights(k, (1, length)), key),
            **{k: jax.eval_shape(m.init_weights, key) for k, m in modules.items()}}
  counts = {}
  for kind, tree in shapes.items():
    sub = os.path.join(folder, kind)
    os.makedirs(sub, exist_ok=True)
    state = flax_to_torch_state(_random_like(tree, rng))
    counts[kind] = int(sum(v.size for v in state.values()))
    name = "model.safetensors" if kind == "text_encoder" else "diffusion_pytorch_model.safetensors"
    safetensors.numpy.save_file(state, os.path.join(sub, name), metadata={"format": "pt"})
    del state
  text_dict = text_cfg.to_dict()
  text_dict.update(architectures=["CLIPTextModel"], torch_dtype="float32")
  _dump(os.path.join(folder, "text_encoder", "config.json"), text_dict)
  for kind, cls in (("unet", "UNet2DConditionModel"), ("vae", "AutoencoderKL")):
    _dump(os.path.join(folder, kind, "config.json"), {"_class_name": cls, **arch[kind]})
  _dump(os.path.join(folder, "scheduler", "scheduler_config.json"), SCHEDULER)
  _dump(os.path.join(folder, "model_index.json"), {
      "_class_name": "StableDiffusionPipeline", "feature_extractor": [None, None],
      "requires_safety_checker": False, "safety_checker": [None, None],
      "scheduler": ["diffusers", "DDIMScheduler"],
      "text_encoder": ["transformers", "CLIPTextModel"],
      "tokenizer": ["transformers", "CLIPTokenizer"],
      "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]})
  return counts


def _dump(path: str, obj) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(obj, f, indent=2)
