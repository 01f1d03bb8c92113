"""Loading Stable Diffusion weights: Flax or PyTorch safetensors, fp32 or bf16, clear errors."""
import json
import os
import shutil

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from jaxsets import sharding
from jaxsets.errors import UserError
from jaxsets.generator import hf, sampler
from jaxsets.generator.tokens import tokenize
from tiny_sd import flax_to_pytorch_names, save_tiny_sd

CFG = sampler.SamplerConfig(scheduler="ddim", num_inference_steps=3, image_size=16, out_size=16,
                            out_channels=3)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
  return save_tiny_sd(str(tmp_path_factory.mktemp("tiny_sd")))


def _images(parts, dtype_params=None):
  mesh = sharding.make_mesh(jax.devices()[:1])
  ids = tokenize(parts.tokenizer, ["A photo of a two"] * 2)
  neg = tokenize(parts.tokenizer, [""] * 2)
  fn = sampler.make_sampler(parts, CFG, mesh)
  return np.asarray(fn(dtype_params or parts.params, ids, neg, jax.random.key(0), jnp.float32(3.0)))


def test_pytorch_safetensors_load_like_flax_weights(tiny_folder, tmp_path):
  import safetensors.numpy
  flax_parts = hf.load_parts(tiny_folder)
  pt_folder = str(tmp_path / "pt")
  shutil.copytree(tiny_folder, pt_folder)
  for kind in ("unet", "vae"):  # replace the Flax msgpack by a PyTorch-layout safetensors file
    os.remove(os.path.join(pt_folder, kind, "diffusion_flax_model.msgpack"))
    safetensors.numpy.save_file(flax_to_pytorch_names(flax_parts.params[kind]),
                                os.path.join(pt_folder, kind, "diffusion_pytorch_model.safetensors"))
  pt_parts = hf.load_parts(pt_folder)
  for kind in ("unet", "vae"):
    a, b = jax.tree.leaves(flax_parts.params[kind]), jax.tree.leaves(pt_parts.params[kind])
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
  np.testing.assert_array_equal(_images(flax_parts), _images(pt_parts))


def test_bfloat16_weights_generate_close_images(tiny_folder):
  parts32 = hf.load_parts(tiny_folder)
  parts16 = hf.load_parts(tiny_folder, dtype=jnp.bfloat16)
  assert {x.dtype for x in jax.tree.leaves(parts16.params)} == {jnp.dtype(jnp.bfloat16)}
  a, b = _images(parts32).astype(int), _images(parts16).astype(int)
  assert b.dtype == a.dtype and np.abs(a - b).mean() < 8  # bf16 has ~3 significant digits


def test_mismatched_weights_are_named(tiny_folder, tmp_path):
  bad = str(tmp_path / "bad")
  shutil.copytree(tiny_folder, bad)
  config_path = os.path.join(bad, "unet", "config.json")
  with open(config_path) as f:
    config = json.load(f)
  config["block_out_channels"] = [64, 64]
  with open(config_path, "w") as f:
    json.dump(config, f)
  with pytest.raises(UserError, match="unet weights do not match"):
    hf.load_parts(bad)


def test_folder_without_model_index(tmp_path):
  with pytest.raises(UserError, match="model_index.json"):
    hf.load_parts(str(tmp_path))


def test_missing_component_weights(tiny_folder, tmp_path):
  bad = str(tmp_path / "noweights")
  shutil.copytree(tiny_folder, bad)
  os.remove(os.path.join(bad, "vae", "diffusion_flax_model.msgpack"))
  with pytest.raises(UserError, match="no weights in .*vae"):
    hf.load_parts(bad)


def test_unknown_model_offline_says_how_to_get_it(monkeypatch, tmp_path):
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
  import huggingface_hub.constants
  monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
  with pytest.raises(UserError, match="not in the local Hugging Face cache"):
    hf.resolve_model_folder("stabilityai/stable-diffusion-2-1-base")


def test_missing_local_path(tmp_path):
  with pytest.raises(UserError, match="no such folder"):
    hf.resolve_model_folder(str(tmp_path / "nope" / "model"))


def test_long_prompt_is_truncated_with_a_warning(tiny_folder, caplog):
  parts = hf.load_parts(tiny_folder)
  long_prompt = "A photo of a " + ", ".join(["one"] * 30)
  ids = tokenize(parts.tokenizer, [long_prompt, "A photo of a one"])
  assert ids.shape == (2, parts.tokenizer.model_max_length) and ids.dtype == np.int32
  assert "truncated" in caplog.text
