"""Every way a user's Stable Diffusion weights reach `hf.load_parts`, at tiny size: Flax msgpack,
the hub's PyTorch safetensors (text encoder included), sharded safetensors, pickled .bin, fp16
files and `variant`s, a Hugging Face id from an offline cache (with a revision); and the errors
for what is missing or mismatched. The converter must equal diffusers' and transformers' own
PyTorch->Flax conversion bit for bit and never initialise a model."""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy

import tiny_sd
from jaxsets.errors import UserError
from jaxsets.generator import hf, hf_weights
from weight_folders import assert_same, copy_folder, flax_folder, flax_params, pt_folder  # noqa: F401  (fixtures)


def test_hub_layout_loads_all_three_components(pt_folder, flax_params):
  """The layout of stabilityai/stable-diffusion-2-1-base: PyTorch safetensors only (this failed
  in transformers' converter for the text encoder with _do_init=False)."""
  assert not any(f.endswith(".msgpack") for _, _, fs in os.walk(pt_folder) for f in fs)
  assert_same(flax_params, hf.load_parts(pt_folder).params)


def test_conversion_equals_diffusers_and_transformers_converters(pt_folder, flax_params):
  """Their converters fed the same shape tree they would get from a random init (stubbed, as a
  real init takes minutes): the renaming and transposes must agree with ours bit for bit."""
  from diffusers.models.modeling_flax_pytorch_utils import \
      convert_pytorch_state_dict_to_flax as diffusers_convert
  from transformers.modeling_flax_pytorch_utils import \
      convert_pytorch_state_dict_to_flax as transformers_convert

  class Shapes:  # what the converters read from a model: init_weights / params, base_model_prefix
    base_model_prefix = "text_model"

    def __init__(self, tree):
      self.params = tree

    def init_weights(self, key):
      return self.params

  class AsTensor(np.ndarray):  # diffusers' converter calls torch's .numpy()
    def numpy(self):
      return np.asarray(self)

  shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), flax_params)
  for kind, stem in (("unet", "diffusion_pytorch_model"), ("vae", "diffusion_pytorch_model"),
                     ("text_encoder", "model")):
    state = safetensors.numpy.load_file(os.path.join(pt_folder, kind, f"{stem}.safetensors"))
    if kind == "text_encoder":
      theirs = transformers_convert(state, Shapes(shapes[kind]))
    else:
      theirs = diffusers_convert({k: v.view(AsTensor) for k, v in state.items()}, Shapes(shapes[kind]))
    path = os.path.join(pt_folder, kind, f"{stem}.safetensors")
    assert_same(theirs, hf_weights.load_params(path, kind, shapes[kind], jnp.float32))


def test_no_model_is_initialised(pt_folder, flax_folder, monkeypatch):
  """Shapes come from jax.eval_shape (a traced key); a concrete key means real random weights."""
  from diffusers import FlaxAutoencoderKL, FlaxUNet2DConditionModel
  from transformers import FlaxCLIPTextModel
  from transformers.models.clip.modeling_flax_clip import FlaxCLIPTextPreTrainedModel
  for cls in (FlaxUNet2DConditionModel, FlaxAutoencoderKL, FlaxCLIPTextPreTrainedModel):
    original = cls.init_weights

    def traced_only(self, rng, *args, _original=original, **kwargs):
      if not isinstance(rng, jax.core.Tracer):
        raise AssertionError(f"{type(self).__name__} was randomly initialised")
      return _original(self, rng, *args, **kwargs)
    monkeypatch.setattr(cls, "init_weights", traced_only)
  assert FlaxCLIPTextModel.init_weights is traced_only  # the text model inherits the patch
  hf.load_parts(pt_folder)
  hf.load_parts(flax_folder)
  with pytest.raises(AssertionError, match="randomly initialised"):  # the patch does bite
    FlaxAutoencoderKL.from_config(FlaxAutoencoderKL.load_config(os.path.join(pt_folder, "vae"))) \
        .init_weights(jax.random.PRNGKey(0))


def test_fp16_files_load_as_float32_and_bfloat16(flax_folder, flax_params, tmp_path):
  """Hub variants: `diffusion_pytorch_model.fp16.safetensors`, `model.fp16.safetensors`."""
  folder = tiny_sd.write_pytorch_layout(flax_folder, str(tmp_path / "fp16"), np.float16, "fp16")
  half = jax.tree.map(lambda x: np.asarray(x).astype(np.float16), flax_params)
  assert_same(half, hf.load_parts(folder, variant="fp16").params, np.float32)
  bf16 = hf.load_parts(folder, jnp.bfloat16, variant="fp16").params
  assert_same(half, bf16, ml_dtypes.bfloat16)
  with pytest.raises(UserError, match=r"text_encoder: expected one of model\.fp16\.safetensors"):
    hf.load_parts(tiny_sd.write_pytorch_layout(flax_folder, str(tmp_path / "plain")), variant="fp16")
  with pytest.raises(UserError, match=r"no weights in .*text_encoder: expected one of flax_model"
                                      r"\.msgpack, model\.safetensors.* It has model\.fp16\.safetensors"):
    hf.load_parts(folder)  # only variant files: the plain names are listed, and what is there


def test_float16_and_bad_dtypes(pt_folder, flax_params):
  half = hf.load_parts(pt_folder, jnp.float16).params
  assert_same(flax_params, half, np.float16)
  with pytest.raises(UserError, match="int8 cannot hold"):
    hf.load_parts(pt_folder, jnp.int8)


def test_sharded_safetensors(pt_folder, flax_params, tmp_path):
  folder = copy_folder(pt_folder, tmp_path)
  unet = os.path.join(folder, "unet")
  state = safetensors.numpy.load_file(os.path.join(unet, "diffusion_pytorch_model.safetensors"))
  os.remove(os.path.join(unet, "diffusion_pytorch_model.safetensors"))
  names = sorted(state)
  shards = {"diffusion_pytorch_model-00001-of-00002.safetensors": names[::2],
            "diffusion_pytorch_model-00002-of-00002.safetensors": names[1::2]}
  for file, keys in shards.items():
    safetensors.numpy.save_file({k: state[k] for k in keys}, os.path.join(unet, file))
  with open(os.path.join(unet, "diffusion_pytorch_model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {}, "weight_map": {k: f for f, ks in shards.items() for k in ks}}, f)
  assert_same(flax_params, hf.load_parts(folder).params)
  os.remove(os.path.join(unet, "diffusion_pytorch_model-00002-of-00002.safetensors"))
  with pytest.raises(UserError, match="names shards that are not there: "
                                      "diffusion_pytorch_model-00002-of-00002.safetensors"):
    hf.load_parts(folder)


def test_progress_bar_on_request_only(pt_folder, capfd, monkeypatch):
  """`progress=True` shows a bar over the three weight files' bytes that ends full; the default
  shows nothing. (The bar waits a second before showing; here it shows at once.)"""
  monkeypatch.setattr(hf, "_PROGRESS_DELAY_S", 0.0)
  total = sum(hf_weights.file_bytes(hf_weights.find_weight_file(pt_folder, kind))
              for kind in hf_weights.COMPONENTS)
  capfd.readouterr()
  hf.load_parts(pt_folder)
  assert "load generator" not in capfd.readouterr().err
  hf.load_parts(pt_folder, progress=True)
  err = capfd.readouterr().err
  from tqdm import tqdm
  assert "load generator: 100%" in err and tqdm.format_sizeof(total) in err, err[-300:]


def _write_bins(folder):
  torch = pytest.importorskip("torch")
  for kind, stem, bin_stem in (("text_encoder", "model", "pytorch_model"),
                               ("unet", "diffusion_pytorch_model", "diffusion_pytorch_model"),
                               ("vae", "diffusion_pytorch_model", "diffusion_pytorch_model")):
    path = os.path.join(folder, kind, f"{stem}.safetensors")
    state = {k: torch.from_numpy(v) for k, v in safetensors.numpy.load_file(path).items()}
    if kind == "text_encoder":  # as older transformers saved it: a buffer, and bfloat16
      state = {k: v.to(torch.bfloat16) for k, v in state.items()}
      state["text_model.embeddings.position_ids"] = torch.arange(16)[None]
    torch.save(state, os.path.join(folder, kind, f"{bin_stem}.bin"))
    os.remove(path)


def test_pytorch_bin_files(pt_folder, flax_params, tmp_path):
  folder = copy_folder(pt_folder, tmp_path)
  _write_bins(folder)
  params = hf.load_parts(folder).params
  assert_same({k: flax_params[k] for k in ("unet", "vae")}, {k: params[k] for k in ("unet", "vae")})
  as_bf16 = jax.tree.map(lambda x: np.asarray(x).astype(ml_dtypes.bfloat16),
                         flax_params["text_encoder"])
  assert_same(as_bf16, params["text_encoder"], np.float32)


def test_bin_without_torch_says_what_to_do(pt_folder, tmp_path, monkeypatch):
  folder = copy_folder(pt_folder, tmp_path)
  os.remove(os.path.join(folder, "text_encoder", "model.safetensors"))
  open(os.path.join(folder, "text_encoder", "pytorch_model.bin"), "wb").close()  # never opened
  monkeypatch.setitem(__import__("sys").modules, "torch", None)  # `import torch` now fails
  with pytest.raises(UserError, match=r"pytorch_model\.bin is a pickled PyTorch.*pip install torch"):
    hf.load_parts(folder)


def _fake_hub_cache(cache, repo, snapshots: dict, refs: dict):
  """huggingface_hub's cache layout: models--org--name/{snapshots/<commit>/..., refs/<branch>}."""
  root = os.path.join(cache, "models--" + repo.replace("/", "--"))
  for commit, folder in snapshots.items():
    shutil.copytree(folder, os.path.join(root, "snapshots", commit))
  os.makedirs(os.path.join(root, "refs"))
  for ref, commit in refs.items():
    with open(os.path.join(root, "refs", ref), "w") as f:
      f.write(commit)


def test_hub_id_offline_from_the_cache(flax_folder, pt_folder, flax_params, tmp_path, monkeypatch):
  import huggingface_hub.constants
  fp16 = tiny_sd.write_pytorch_layout(flax_folder, str(tmp_path / "fp16"), np.float16, "fp16")
  main, other = "a" * 40, "b" * 40
  _fake_hub_cache(str(tmp_path / "hub"), "org/tiny-sd", {main: pt_folder, other: fp16},
                  {"main": main, "fp16": other})
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
  monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
  parts = hf.load_parts("org/tiny-sd")
  assert_same(flax_params, parts.params)
  half = jax.tree.map(lambda x: np.asarray(x).astype(np.float16), flax_params)
  assert_same(half, hf.load_parts("org/tiny-sd", revision="fp16", variant="fp16").params, np.float32)
  assert_same(half, hf.load_parts("org/tiny-sd", revision=other, variant="fp16").params, np.float32)
  with pytest.raises(UserError, match="at revision 'v9' are not in the local Hugging Face cache"):
    hf.load_parts("org/tiny-sd", revision="v9")


def test_hub_patterns_cover_every_weight_file():
  import fnmatch
  names = ["text_encoder/model.safetensors", "text_encoder/pytorch_model.bin",
           "text_encoder/flax_model.msgpack", "unet/diffusion_pytorch_model.fp16.safetensors",
           "unet/diffusion_pytorch_model-00002-of-00003.safetensors", "vae/diffusion_pytorch_model.bin"]
  patterns = {kind: [p for variant in ("", "fp16") for stage in hf_weights.hub_patterns(kind, variant)
                     for p in stage] for kind in hf_weights.COMPONENTS}
  for name in names:
    assert any(fnmatch.fnmatch(name, p) for p in patterns[name.split("/")[0]]), name
  assert not any(fnmatch.fnmatch("unet/diffusion_pytorch_model.fp16.safetensors", p)
                 for p in hf_weights.hub_patterns("unet")[1])  # no variant asked, none fetched


def test_public_api_takes_revision_and_variant(flax_folder, flax_params, tmp_path, monkeypatch):
  import huggingface_hub.constants

  import jaxsets
  fp16 = tiny_sd.write_pytorch_layout(flax_folder, str(tmp_path / "fp16"), np.float16, "fp16")
  _fake_hub_cache(str(tmp_path / "hub"), "org/tiny-sd", {"c" * 40: fp16}, {"half": "c" * 40})
  monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
  monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
  generator = jaxsets.load_generator("org/tiny-sd", image_size=8, dtype="bfloat16", revision="half",
                                     variant="fp16", num_inference_steps=1)
  half = jax.tree.map(lambda x: np.asarray(x).astype(np.float16), flax_params)
  assert_same(half, generator.parts.params, ml_dtypes.bfloat16)


def test_conversion_holds_one_copy_of_the_weights(pt_folder, flax_params):
  """numpy memory (tracemalloc) while the UNet loads: its parameters plus a few tensors in flight,
  never the whole state dict twice (the source is read and freed tensor by tensor)."""
  import tracemalloc
  shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), flax_params["unet"])
  param_bytes = sum(x.nbytes for x in jax.tree.leaves(flax_params["unet"]))
  path = os.path.join(pt_folder, "unet", "diffusion_pytorch_model.safetensors")
  tracemalloc.start()
  try:
    params = hf_weights.load_params(path, "unet", shapes, jnp.float32)
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert peak < 1.5 * param_bytes, (peak, param_bytes)
  assert_same(flax_params["unet"], params)


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.float16])
def test_layout_copy_matches_numpy(dtype, tmp_path, monkeypatch):
  """Both sources: numpy arrays (msgpack, .bin) and tensors read from a safetensors file, whose
  copies go in runs of rows through a scratch buffer (shrunk here so that every tensor takes
  several runs, a partial last one included)."""
  monkeypatch.setattr(hf_weights, "_CHUNK_BYTES", 96)
  rng = np.random.default_rng(0)
  cases = {"linear": ((37, 70), (1, 0)), "conv": ((19, 6, 3, 3), (2, 3, 1, 0)),
           "vector": ((33,), (0,)), "square": ((20, 20), (0, 1)), "scalar": ((), ())}
  sources = {name: rng.standard_normal(shape).astype(np.float32) for name, (shape, _) in cases.items()}
  path = str(tmp_path / "w.safetensors")
  safetensors.numpy.save_file(sources, path)
  stored = dict(hf_weights.read_tensors(path))
  for name, (shape, perm) in cases.items():
    want = sources[name].transpose(perm).astype(dtype)
    for source in (sources[name].transpose(perm), stored[name].transpose(*perm)):
      got = np.asarray(hf_weights._to_device(source, dtype))
      assert got.dtype == dtype and got.shape == want.shape and np.array_equal(got, want), name
  ids = np.arange(5, dtype=np.int32)  # integer leaves keep their dtype
  assert np.asarray(hf_weights._to_device(ids, dtype)).dtype == np.int32


def test_hub_download_fetches_one_weights_file_per_component(flax_folder, pt_folder, tmp_path,
                                                             monkeypatch):
  """Online, snapshot_download is asked only for what loading reads: the Flax files where the
  repository has them, else the PyTorch ones (a stand-in Hub serves a folder by allow_patterns)."""
  import fnmatch

  import huggingface_hub
  repo = copy_folder(pt_folder, tmp_path, "repo")  # PyTorch files for all, plus Flax for the UNet
  shutil.copy(os.path.join(flax_folder, "unet", "diffusion_flax_model.msgpack"),
              os.path.join(repo, "unet"))
  fetched, calls = str(tmp_path / "fetched"), []

  def snapshot_download(model, revision=None, allow_patterns=()):
    calls.append((model, revision))
    for root, _, files in os.walk(repo):
      for name in files:
        rel = os.path.relpath(os.path.join(root, name), repo)
        if any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
          os.makedirs(os.path.dirname(os.path.join(fetched, rel)), exist_ok=True)
          shutil.copy(os.path.join(root, name), os.path.join(fetched, rel))
    return fetched
  monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
  hf.load_parts("org/tiny-sd", revision="v1")
  got = sorted(os.path.relpath(os.path.join(r, f), fetched) for r, _, fs in os.walk(fetched)
               for f in fs if f.endswith((".msgpack", ".safetensors", ".bin")))
  assert got == ["text_encoder/model.safetensors", "unet/diffusion_flax_model.msgpack",
                 "vae/diffusion_pytorch_model.safetensors"]
  assert calls == [("org/tiny-sd", "v1")] * 2  # Flax for all three, then PyTorch for the two


def test_a_file_cut_short_while_loading_is_a_clear_error(tmp_path):
  """The header is checked against the file's size before reading; a file truncated after that
  (replaced mid-load) must not leave a parameter half-filled with whatever the buffer held."""
  path = str(tmp_path / "w.safetensors")
  safetensors.numpy.save_file({"w": np.ones((64, 32), np.float32)}, path)
  stored = dict(hf_weights.read_tensors(path))["w"]
  os.truncate(path, os.path.getsize(path) - 100)
  for source in (stored, stored.T):  # straight into the parameter, and through the runs
    with pytest.raises(UserError, match="ended at byte .* download it again"):
      hf_weights._to_device(source, np.float32)
