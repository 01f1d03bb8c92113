"""What is missing or mismatched in a user's Stable Diffusion folder is refused with the file's name
(the loading paths themselves: test_generator_weights.py)."""
import json
import os
import shutil

import pytest
import safetensors.numpy

from jaxsets.errors import UserError
from jaxsets.generator import hf
from weight_folders import copy_folder, flax_folder, pt_folder  # noqa: F401  (fixtures)


@pytest.mark.parametrize("missing", ["tokenizer/merges.txt", "text_encoder/config.json",
                                     "scheduler/scheduler_config.json", "unet"])
def test_missing_files_are_named(pt_folder, tmp_path, missing):
  folder = copy_folder(pt_folder, tmp_path)
  path = os.path.join(folder, missing)
  shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
  expected = "unet/config.json" if missing == "unet" else missing
  with pytest.raises(UserError, match=f"not a complete Stable Diffusion model: .*{expected}"):
    hf.load_parts(folder)


def test_missing_text_encoder_weights_name_the_files(pt_folder, tmp_path):
  folder = copy_folder(pt_folder, tmp_path)
  os.remove(os.path.join(folder, "text_encoder", "model.safetensors"))
  with pytest.raises(UserError, match=r"no weights in .*text_encoder: expected one of "
                                      r"flax_model\.msgpack, model\.safetensors"):
    hf.load_parts(folder)


def test_tokenizer_from_another_model(pt_folder, tmp_path):
  folder = copy_folder(pt_folder, tmp_path)
  path = os.path.join(folder, "text_encoder", "config.json")
  with open(path) as f:
    config = json.load(f)
  config["vocab_size"] += 5
  with open(path, "w") as f:
    json.dump(config, f)
  with pytest.raises(UserError, match=f"tokenizer has {config['vocab_size'] - 5} tokens but "
                                      f"text_encoder/config.json says vocab_size={config['vocab_size']}"):
    hf.load_parts(folder)


def test_wrong_shapes_and_corrupt_files(pt_folder, tmp_path):
  folder = copy_folder(pt_folder, tmp_path)
  path = os.path.join(folder, "vae", "diffusion_pytorch_model.safetensors")
  state = safetensors.numpy.load_file(path)
  state["decoder.conv_in.weight"] = state["decoder.conv_in.weight"][:, :2]
  safetensors.numpy.save_file(state, path)
  with pytest.raises(UserError, match=r"vae weights do not match vae/config.json \(shape of "
                                      r"decoder/conv_in/kernel"):
    hf.load_parts(folder)
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) - 100)
  with pytest.raises(UserError, match="truncated or corrupt"):
    hf.load_parts(folder)
