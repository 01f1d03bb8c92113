"""A tiny Stable Diffusion saved by PyTorch diffusers / transformers themselves (the hub's naming,
not ours) loads through `hf.load_parts`, and its three parts compute what PyTorch computes on the
same inputs. Skipped where torch is not installed (it is never a runtime dependency)."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsets.generator import hf
from jaxsets.generator.embedded import architecture, vocab
from tiny_sd import WORDS

pytest.importorskip("torch")

# Runs with torch visible to transformers (the test process hides it: USE_TORCH=0).
_BUILD = r"""
import json, os, sys
import numpy as np, torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel
folder, configs = sys.argv[1], json.loads(sys.argv[2])
torch.manual_seed(0)
text = CLIPTextModel(CLIPTextConfig(**configs["text_encoder"])).eval()
unet = UNet2DConditionModel(**configs["unet"]).eval()
vae = AutoencoderKL(**configs["vae"]).eval()
for name, model in (("text_encoder", text), ("unet", unet), ("vae", vae)):
  model.save_pretrained(os.path.join(folder, name), safe_serialization=True)
DDIMScheduler(**configs["scheduler"]).save_pretrained(os.path.join(folder, "scheduler"))
with open(os.path.join(folder, "model_index.json"), "w") as f:
  json.dump({"_class_name": "StableDiffusionPipeline"}, f)
g = torch.Generator().manual_seed(1)
bos, eos = configs["text_encoder"]["bos_token_id"], configs["text_encoder"]["eos_token_id"]
ids = torch.tensor([[bos, 3, 5, 7] + [eos] * 12])
latents = torch.randn(2, 4, 8, 8, generator=g)
with torch.no_grad():
  hidden = text(ids).last_hidden_state
  context = torch.randn(2, 16, 32, generator=g)
  noise = unet(latents, torch.tensor([10, 500]), context).sample
  image = vae.decode(latents).sample
np.savez(os.path.join(folder, "reference.npz"), ids=ids.numpy(), hidden=hidden.numpy(),
         latents=latents.numpy(), context=context.numpy(), noise=noise.numpy(), image=image.numpy())
"""


@pytest.fixture(scope="module")
def torch_folder(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp("torch_sd"))
  vocab.write_vocab(os.path.join(folder, "tokenizer"), WORDS)
  v = hf.make_tokenizer(os.path.join(folder, "tokenizer"), architecture.MAX_PROMPT_TOKENS).get_vocab()
  configs = {"text_encoder": architecture.text_config(len(v), v[vocab.BOS], v[vocab.EOS]),
             "unet": architecture.unet_config(), "vae": architecture.vae_config(3, 0.5),
             "scheduler": architecture.scheduler_config()}
  env = dict(os.environ, USE_TORCH="1", USE_TF="0")
  out = subprocess.run([sys.executable, "-c", _BUILD, folder, json.dumps(configs)], env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  return folder


def test_pytorch_saved_model_computes_what_pytorch_computes(torch_folder):
  names = {kind: sorted(os.listdir(os.path.join(torch_folder, kind)))
           for kind in ("text_encoder", "unet", "vae")}
  assert names["text_encoder"] == ["config.json", "model.safetensors"]
  assert names["unet"] == names["vae"] == ["config.json", "diffusion_pytorch_model.safetensors"]
  parts = hf.load_parts(torch_folder)
  ref = np.load(os.path.join(torch_folder, "reference.npz"))
  ids = jnp.asarray(ref["ids"], jnp.int32)
  hidden = jax.jit(parts.text_encoder.module.apply)(
      {"params": parts.params["text_encoder"]}, ids, jnp.ones_like(ids),
      jnp.arange(ids.shape[1])[None])[0]
  noise = jax.jit(parts.unet.apply)({"params": parts.params["unet"]}, jnp.asarray(ref["latents"]),
                                    jnp.array([10, 500]), jnp.asarray(ref["context"])).sample
  image = jax.jit(lambda p, z: parts.vae.apply(p, z, method=parts.vae.decode).sample)(
      {"params": parts.params["vae"]}, jnp.asarray(ref["latents"]))
  for name, flax_value in (("hidden", hidden), ("noise", noise), ("image", image)):
    expected = ref[name]
    assert flax_value.shape == expected.shape, name
    scale = np.abs(expected).max()
    # float32 rounding differs by ~1e-5 of the scale; a misplaced tensor differs by O(scale)
    assert scale > 0.1 and np.abs(np.asarray(flax_value) - expected).max() < 5e-4 * scale, name
