"""Attention through jax.nn.dot_product_attention (jaxsets/generator/hf_attention.py): the same
UNet and VAE outputs as diffusers' own attention in float32, float32 scores and softmax in
bfloat16, and what the "auto" settings pick."""
import numpy as np
import pytest

import jax
import jax.numpy as jnp

from jaxsets.errors import UserError
from jaxsets.generator import hf_attention
from jaxsets.generator.embedded import architecture
from diffusers import FlaxAutoencoderKL, FlaxUNet2DConditionModel
from diffusers.models.attention_flax import FlaxAttention

# Cross-attention at 8x8, 4x4 and the 2x2 mid block; diffusers' `attention_head_dim` is the number
# of heads here (its naming quirk), so head dims are 32/1 = 32 and 64/8 = 8. SD 2.x's linear
# projections and its upcast flag (which diffusers' Flax UNet ignores) as in SD 2.1's config.
UNET = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64, 64),
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            layers_per_block=1, attention_head_dim=(1, 8, 8), cross_attention_dim=32,
            use_linear_projection=True, upcast_attention=True)
# 2 transformer blocks down, 1 mid, 2 x 2 up; each has a self- and a cross-attention.
UNET_ATTENTION_CALLS = 2 * (2 + 1 + 4)


def _random_params(module, key, seed):
  """Parameters from shapes alone (no slow init): kernels N(0, 1/fan_in) so activations, and the
  attention scores, keep unit scale through the layers; norm scales 1, biases small."""
  rng = np.random.default_rng(seed)  # test weights, not a learner
  shapes = jax.eval_shape(module.init_weights, key)

  def draw(path, leaf):
    name = jax.tree_util.keystr(path[-1:])
    if "scale" in name:
      return np.ones(leaf.shape, np.float32)
    if "bias" in name:
      return 0.1 * rng.standard_normal(leaf.shape).astype(np.float32)
    fan_in = int(np.prod(leaf.shape[:-1])) or 1
    return (rng.standard_normal(leaf.shape) / np.sqrt(fan_in)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


@pytest.fixture
def counted(monkeypatch):
  calls = []
  real = hf_attention.fused_attention
  monkeypatch.setattr(hf_attention, "fused_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
  return calls


def test_unet_with_dot_product_attention_equals_diffusers_attention(counted):
  unet = FlaxUNet2DConditionModel.from_config(UNET)
  params = _random_params(unet, jax.random.PRNGKey(0), seed=0)
  keys = jax.random.split(jax.random.key(1), 2)
  sample = jax.random.normal(keys[0], (2, 4, 8, 8))
  context = jax.random.normal(keys[1], (2, 7, 32))        # [B, L, D] text hidden states
  t = jnp.array([999, 10], jnp.int32)
  run = lambda: np.asarray(jax.jit(lambda p, x: unet.apply({"params": p}, x, t,
                                                           encoder_hidden_states=context).sample)(params, sample))
  with hf_attention.attention_scope("dot_product"):
    ours = run()
  assert len(counted) == UNET_ATTENTION_CALLS          # every attention layer went our way
  theirs = run()                                       # outside the scope: diffusers' own einsums
  assert len(counted) == UNET_ATTENTION_CALLS
  assert np.std(theirs) > 0.1
  # Float tolerance: the two paths sum QK^T and PV in different orders (~1e-6 relative).
  np.testing.assert_allclose(ours, theirs, atol=2e-5 * np.abs(theirs).max())


def test_vae_decoder_attention_equals_diffusers(counted):
  vae = FlaxAutoencoderKL.from_config(architecture.vae_config(channels=3))
  params = _random_params(vae, jax.random.PRNGKey(0), seed=1)
  latents = jax.random.normal(jax.random.key(2), (2, 4, 8, 8))
  run = lambda: np.asarray(jax.jit(lambda p, z: vae.apply({"params": p}, z, method=vae.decode).sample)(
      params, latents))
  with hf_attention.attention_scope("dot_product"):
    ours = run()
  assert len(counted) == 1                             # the decoder's mid-block attention
  theirs = run()
  assert np.std(theirs) > 0.1
  np.testing.assert_allclose(ours, theirs, atol=2e-5 * np.abs(theirs).max())


def _one_layer(mode, dtype, q, k, v):
  """diffusers' FlaxAttention with projections that pick q, k, v out of its inputs exactly:
  only the attention arithmetic between them differs between paths. q [T, H]; k, v [S, H]."""
  d = q.shape[-1]
  eye = np.eye(3 * d, dtype=np.float32)
  out = np.zeros((d, 3 * d), np.float32)
  out[:, :d] = np.eye(d)
  params = {"to_q": {"kernel": eye[:, :d]}, "to_k": {"kernel": eye[:, d:2 * d]},
            "to_v": {"kernel": eye[:, 2 * d:]}, "to_out_0": {"kernel": out, "bias": np.zeros(3 * d)}}
  params = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
  x = np.concatenate([q, 0 * q, 0 * q], -1)[None]                 # [1, T, 3H]: q
  c = np.concatenate([0 * k, k, v], -1)[None]                     # [1, S, 3H]: k, v
  module = FlaxAttention(query_dim=3 * d, heads=1, dim_head=d, dtype=dtype)
  with hf_attention.attention_scope(mode):
    y = jax.jit(lambda p, a, b: module.apply({"params": p}, a, b))(
        params, jnp.asarray(x, dtype), jnp.asarray(c, dtype))
  return np.asarray(y[0, :, :d].astype(jnp.float32), np.float64)


def test_bfloat16_scores_and_softmax_run_in_float32():
  # Head dim 64 (SD 2.1's) and scores of standard deviation 10: large logits, where rounding them
  # to bfloat16 moves the softmax most. studies/issue16/attention_upcast.md has the full sweep.
  rng = np.random.default_rng(0)
  as_bf16 = lambda a: np.asarray(jnp.asarray(a, jnp.bfloat16).astype(jnp.float32), np.float64)
  q = as_bf16(np.sqrt(10) * rng.standard_normal((1024, 64)))
  k = as_bf16(np.sqrt(10) * rng.standard_normal((1024, 64)))
  v = as_bf16(rng.standard_normal((1024, 64)))
  s = q @ k.T / 8.0
  p = np.exp(s - s.max(-1, keepdims=True))
  exact = (p / p.sum(-1, keepdims=True)) @ v                      # float64 on the same inputs
  error = lambda y: np.sqrt(np.mean((y - exact) ** 2) / np.mean(exact ** 2))
  floor = error(as_bf16(exact))               # merely rounding the exact output to bfloat16
  ours = error(_one_layer("dot_product", jnp.bfloat16, q, k, v))
  theirs = error(_one_layer("diffusers", jnp.bfloat16, q, k, v))
  assert error(_one_layer("diffusers", jnp.float32, q, k, v)) < 1e-5
  # Probabilities rounded to bf16 before PV add at most ~1.4x the floor (studies); diffusers'
  # bf16 scores and softmax added ~10x.
  assert ours < 1.6 * floor, (ours, floor)
  assert ours < theirs / 3, (ours, theirs)


def test_auto_settings(monkeypatch):
  from jaxsets.config_loading import load_config_file
  from jaxsets.generator.loading import compute_dtype
  assert hf_attention.resolve_mode("auto", jnp.float32) == "diffusers"       # CPU: published bits
  assert hf_attention.resolve_mode("auto", jnp.bfloat16) == "dot_product"    # fp32 softmax
  assert hf_attention.resolve_mode("dot_product", jnp.float32) == "dot_product"
  with pytest.raises(UserError, match="generator.attention='flash': use one of auto"):
    hf_attention.resolve_mode("flash", jnp.float32)
  sd, digits = load_config_file("configs/cifar10_sd.py"), load_config_file("configs/digits.py")
  assert sd.generator.dtype == "auto" and load_config_file("configs/tiny_imagenet_sd.py").generator.dtype == "auto"
  assert load_config_file("configs/cifar10_sd.py:smoke").generator.dtype == "float32"
  assert digits.generator.dtype == "float32" and digits.generator.attention == "auto"
  assert compute_dtype(sd) == jnp.float32                                   # on this CPU
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert compute_dtype(sd) == jnp.bfloat16
  assert hf_attention.resolve_mode("auto", jnp.float32) == "dot_product"
  digits.generator.dtype = "auto"
  assert compute_dtype(digits) == jnp.float32      # the embedded model keeps its float32 results
  sd.generator.dtype = "float64"
  with pytest.raises(UserError, match="generator.dtype='float64'"):
    compute_dtype(sd)


def test_float16_runs_on_cpu_close_to_float32():
  # XLA's CPU dot takes no float16 inputs with float32 accumulation; fused_attention upcasts there.
  rng = np.random.default_rng(1)
  q, k, v = (rng.standard_normal((64, 64)) for _ in range(3))
  exact = _one_layer("diffusers", jnp.float32, q, k, v)
  half = _one_layer("dot_product", jnp.float16, q, k, v)
  assert np.isfinite(half).all()
  np.testing.assert_allclose(half, exact, atol=5e-3 * np.abs(exact).max())
