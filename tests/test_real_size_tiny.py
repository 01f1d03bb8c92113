"""The real-size verification path (benchmarks/sd_hub_layout.py, clip_bpe.py, real_size.py) at a
tiny size, so that CI catches a break in what only runs at real size by hand.

What needs PyTorch (the reference names, the side-by-side forwards) or open_clip_torch (CLIP's BPE
file) skips where they are absent; the rest runs on the test extra alone.
"""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")
sys.path.insert(0, BENCH)

import clip_bpe  # noqa: E402
import sd_hub_layout  # noqa: E402

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="the PyTorch reference needs torch (pip install -e '.[bench]')")
needs_bpe = pytest.mark.skipif(clip_bpe.bpe_path() is None,
                               reason="CLIP's BPE file comes with open_clip_torch: "
                                      "pip install --no-deps open_clip_torch==3.3.0")
HUB_FILES = {"model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
             "text_encoder/model.safetensors", "tokenizer/vocab.json", "tokenizer/merges.txt",
             "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
             "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
             "vae/diffusion_pytorch_model.safetensors", "feature_extractor/preprocessor_config.json"}


def _tokenizer_source(tmp_path):
  """None (CLIP's real tokenizer) where the BPE file is installed, else a small vocabulary."""
  if clip_bpe.bpe_path() is not None:
    return None
  from jaxsets.generator.embedded import vocab
  folder = str(tmp_path / "small_vocab")
  vocab.write_vocab(folder, ["A photo of a cat, dog, and bird"])
  return folder


@needs_bpe
def test_clip_tokenizer_is_clips(tmp_path):
  from transformers import CLIPTokenizer

  from jaxsets.generator import hf
  from jaxsets.generator.tokens import tokenize
  clip_bpe.write_clip_tokenizer(str(tmp_path / "sd2"), pad_token="!")
  clip_bpe.write_clip_tokenizer(str(tmp_path / "sd15"), pad_token="<|endoftext|>",
                                name_or_path="runwayml/stable-diffusion-v1-5")
  sd2, sd15 = (CLIPTokenizer.from_pretrained(str(tmp_path / n)) for n in ("sd2", "sd15"))
  assert len(sd2) == 49408 and sd2.model_max_length == 77
  assert sd2("A photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]
  assert (sd2.pad_token_id, sd15.pad_token_id) == (0, 49407)  # SD 2.x pads with "!", SD 1.5 with EOS
  # As jaxsets tokenizes for its sampler: BOS, the words, EOS, then the pad id to 77.
  ids = tokenize(hf.make_tokenizer(str(tmp_path / "sd2"), 77), ["A photo of a cat"])
  assert ids.shape == (1, 77) and ids[0, 6] == 49407 and set(ids[0, 7:]) == {0}
  lengths = clip_bpe.prompt_lengths(sd2, clip_bpe.CIFAR10, limit=40)
  # "A digital art image of a airplane, automobile, and bird": BOS + 12 words/commas + EOS.
  assert lengths["worst_case"] == 14 and lengths["min"] == 12


def test_tiny_hub_layout_has_the_hub_files(tmp_path):
  import safetensors.numpy
  out = str(tmp_path / "sd21")
  counts = sd_hub_layout.build("sd21", out, tiny=True, tokenizer_folder=_tokenizer_source(tmp_path))
  files = {os.path.relpath(os.path.join(r, f), out) for r, _, fs in os.walk(out) for f in fs}
  assert files - {"jaxsets_build.json"} == HUB_FILES and not os.path.exists(out + ".tmp")
  with open(os.path.join(out, "scheduler", "scheduler_config.json")) as f:
    assert json.load(f)["prediction_type"] == "v_prediction"
  with open(os.path.join(out, "unet", "config.json")) as f:
    unet = json.load(f)
  assert unet["upcast_attention"] and unet["use_linear_projection"]
  text = safetensors.numpy.load_file(os.path.join(out, "text_encoder", "model.safetensors"))
  assert text["text_model.embeddings.position_ids"].dtype.name == "int64"
  assert sum(v.size for k, v in text.items() if "position_ids" not in k) == counts["text_encoder"]
  vae = safetensors.numpy.load_file(os.path.join(out, "vae", "diffusion_pytorch_model.safetensors"))
  assert "decoder.mid_block.attentions.0.query.weight" in vae  # the hub files' old names
  assert all(v.dtype.name == "float32" for v in vae.values())
  # Norm scales near 1, biases near 0, weights ~ 1/sqrt(fan_in): a forward stays in range.
  assert abs(vae["decoder.conv_norm_out.weight"].mean() - 1) < 0.05
  with open(os.path.join(out, "model_index.json")) as f:
    assert json.load(f)["scheduler"] == ["diffusers", "DDIMScheduler"]
  before = os.path.getmtime(os.path.join(out, "unet", "diffusion_pytorch_model.safetensors"))
  assert sd_hub_layout.build("sd21", out, tiny=True,
                             tokenizer_folder=_tokenizer_source(tmp_path)) == counts  # not rewritten
  assert os.path.getmtime(os.path.join(out, "unet", "diffusion_pytorch_model.safetensors")) == before


@needs_torch
def test_hub_names_and_counts_match_pytorch():
  # Real size on the meta device: the PyTorch modules' state dicts are the reference for the names
  # and shapes the builder derives from Flax, and their float tensors give the published counts.
  code = """
import json, numpy as np, sd_hub_layout as h, sd_state_names as names
out = {}
for arch in ("sd15", "sd21"):  # sd21base has sd21's modules (only sample_size differs)
  spec = h.arch_configs(arch)
  ours, ref = names.state_shapes(spec), names.torch_state_shapes(spec)
  out[arch] = {"same": ours == ref, "counts": {p: sum(int(np.prod(s)) for s, k in v.values() if k == "F")
                                                for p, v in ours.items()}}
print(json.dumps(out))
"""
  proc = subprocess.run([sys.executable, "-c", code], cwd=BENCH, capture_output=True, text=True,
                        env={**os.environ, "USE_TORCH": "1"}, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  for arch in ("sd15", "sd21"):
    published = sd_hub_layout.PUBLISHED_PARAMS[arch]
    assert result[arch] == {"same": True, "counts": published}, arch


def test_real_size_path_at_tiny_size(tmp_path):
  scratch, out = str(tmp_path / "scratch"), str(tmp_path / "sd21_tiny.json")
  tok = _tokenizer_source(tmp_path)
  cmd = [sys.executable, os.path.join(BENCH, "real_size.py"), "--arch", "sd21", "--tiny",
         "--steps", "1", "--scratch", scratch, "--out", out] + (["--tokenizer-folder", tok] if tok else [])
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one device, as a user runs it
  proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out) as f:
    result = json.load(f)
  j = result["jaxsets"]
  assert "error" not in j, j
  assert j["param_count"] == sum(result["params_in_files"].values())
  assert j["param_bytes"] == 4 * j["param_count"]
  assert result["read"]["bytes"] == j["param_bytes"] + 77 * 8  # + the int64 position_ids buffer
  assert j["prediction_type_in_sampler"] == "v_prediction" and j["upcast_attention_in_config"]
  assert j["image_shape"] == [1, 64, 64, 3] and j["image_finite_nonconstant"]
  assert result["load_over_read"] > 0 and "sd21 (tiny) float32" in proc.stdout
  assert 0 < j["weights_s"] < j["load_s"]  # the weights' load is a part of load_generator's time
  assert result["weights_over_read"] == j["weights_s"] / result["read"]["read_s"]
  assert "of which the weights" in proc.stdout
  t = result["torch"]
  if importlib.util.find_spec("torch") is None:
    assert "torch is not installed" in t["skipped"]
    return
  assert t["loading_problems"] == {"text_encoder": {}, "unet": {}, "vae": {}}
  for name in ("text", "unet", "vae"):  # float32, same weights, same inputs
    assert t[name]["max_abs_diff"] < 2e-3 * max(1.0, t[name]["torch_output_std"]), (name, t[name])
    assert t[name]["torch_output_std"] > 0.1


@needs_torch
def test_sd21_reload_loads_a_tiny_hub_folder(tmp_path):
  # The authors' per-step call on the layout sd21_reload builds (float16 files), at tiny size.
  folder = str(tmp_path / "sd21_fp16")
  sd_hub_layout.build("sd21", folder, tiny=True, dtype="float16",
                      tokenizer_folder=_tokenizer_source(tmp_path))
  code = f"""
import json, sd21_reload
pipe = sd21_reload.load({folder!r})
print(json.dumps({{"dtype": str(pipe.unet.dtype), "counts": sd21_reload.param_counts(pipe),
                   "scheduler": type(pipe.scheduler).__name__}}))
"""
  proc = subprocess.run([sys.executable, "-c", code], cwd=BENCH, capture_output=True, text=True,
                        env={**os.environ, "USE_TORCH": "1"}, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  with open(os.path.join(folder, "jaxsets_build.json")) as f:
    assert result == {"dtype": "torch.float16", "counts": json.load(f)["params"],
                      "scheduler": "DDIMScheduler"}
