"""The jitted sampler: same images as diffusers' own pipeline, no recompiles, 4 devices = 1."""
import numpy as np
import pytest

import jax
import jax.numpy as jnp

from jaxsets import sharding
from jaxsets.generator import hf, sampler
from jaxsets.generator.embedded import architecture
from jaxsets.generator.generator import Generator
from jaxsets.generator.tokens import tokenize
from tiny_sd import save_tiny_sd

PROMPTS = ["A photo of a zero, one, and two", "A drawing of a four"]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
  return save_tiny_sd(str(tmp_path_factory.mktemp("tiny_sd")))


@pytest.fixture(scope="module")
def parts(tiny_folder):
  return hf.load_parts(tiny_folder)


def _cfg(scheduler="ddim", steps=4, out_size=16, out_channels=3, attention="auto"):
  return sampler.SamplerConfig(scheduler=scheduler, num_inference_steps=steps, image_size=16,
                               out_size=out_size, out_channels=out_channels, attention=attention)


# "auto" is diffusers' own attention on this CPU in float32; "dot_product" is jaxsets' route
# through jax.nn.dot_product_attention (the accelerators' default), against diffusers' own.
@pytest.mark.parametrize("scheduler, attention", [("ddim", "auto"), ("dpm_solver", "auto"),
                                                  ("euler", "auto"), ("dpm_solver", "dot_product")])
def test_matches_diffusers_pipeline(tiny_folder, parts, scheduler, attention):
  from diffusers import FlaxStableDiffusionPipeline
  pipe, pipe_params = FlaxStableDiffusionPipeline.from_pretrained(
      tiny_folder, safety_checker=None, feature_extractor=None)
  sched, sched_state = hf.make_scheduler(scheduler, parts.scheduler_config)
  pipe.scheduler = sched
  pipe_params = dict(pipe_params, scheduler=sched_state)
  ids = tokenize(parts.tokenizer, PROMPTS)
  neg = tokenize(parts.tokenizer, [""] * len(PROMPTS))
  latents = jax.random.normal(jax.random.key(3), sampler.latent_shape(parts, _cfg(), len(PROMPTS)))
  one_device = sharding.make_mesh(jax.devices()[:1])
  ours = sampler.make_latent_sampler(parts, _cfg(scheduler, attention=attention), one_device)(
      parts.params, ids, neg, latents, 2.5)
  ours = np.clip(np.asarray(ours).transpose(0, 2, 3, 1) / 2 + 0.5, 0, 1)
  # diffusers' Flax pipeline scales the first latents by the *unset* state's init_noise_sigma;
  # its PyTorch pipelines (and jaxsets) use the value after set_timesteps. They differ for Euler
  # with "leading" spacing, so give the pipeline latents that start it from the same point.
  set_state = sched.set_timesteps(sched_state, 4, latents.shape)
  ref_latents = latents * (set_state.init_noise_sigma / sched_state.init_noise_sigma)
  for i in range(len(PROMPTS)):  # diffusers' _generate breaks on batch > 1 with a float scale
    ref = pipe._generate(ids[i:i + 1], pipe_params, None, 4, 16, 16, 2.5, ref_latents[i:i + 1],
                         neg[i:i + 1])
    # Float tolerance: batch 2 (ours) vs batch 1 (theirs) reorders sums; 1e-4 << one uint8 step.
    np.testing.assert_allclose(ours[i], np.asarray(ref)[0], atol=1e-4)


def test_new_prompt_seed_or_guidance_does_not_recompile(parts, monkeypatch):
  traces = []
  real = sampler.denoise_and_decode
  monkeypatch.setattr(sampler, "denoise_and_decode", lambda *a: traces.append(1) or real(*a))
  sample = sampler.make_sampler(parts, _cfg(out_size=8, out_channels=1))
  neg = tokenize(parts.tokenizer, [""] * 4)
  outs = []
  for prompt, seed, g in [(PROMPTS[0], 0, 3.0), (PROMPTS[1], 0, 3.0), (PROMPTS[1], 1, 3.0),
                          (PROMPTS[1], 1, 7.5)]:
    ids = tokenize(parts.tokenizer, [prompt] * 4)
    outs.append(np.asarray(sample(parts.params, ids, neg, jax.random.key(seed), jnp.float32(g))))
  assert len(traces) == 1
  assert outs[0].dtype == np.uint8 and outs[0].shape == (4, 8, 8, 1)
  for a, b in zip(outs, outs[1:]):  # each change really changes the images
    assert np.any(a != b)


def test_negative_prompt_is_encoded_once_and_gives_the_same_bits(parts, monkeypatch):
  from jaxsets.generator import generator as generator_module
  encodes = []  # the ids shape of each text encoding traced
  real = sampler.encode_text
  counting = lambda *a: encodes.append(a[-1].shape) or real(*a)
  monkeypatch.setattr(sampler, "encode_text", counting)
  monkeypatch.setattr(generator_module, "encode_text", counting)
  gen = Generator(parts, _cfg(out_size=8, out_channels=1), guidance_scale=3.0,
                  negative_prompt="drawing sketch")
  assert encodes == [(1, architecture.MAX_PROMPT_TOKENS)]       # once, at construction
  ids = gen.tokenize(PROMPTS * 2)                                # [4, L]
  key = jax.random.key(5)
  once = [np.asarray(gen.generate_ids(ids, k)) for k in (key, jax.random.fold_in(key, 1))]
  assert encodes[1:] == [ids.shape]          # the traced sampler encodes the prompts only
  # The ids path (the negative encoded with the prompts, as every call did before) gives the
  # same bits: a row's CLIP encoding does not depend on the rows beside it.
  per_call = np.asarray(gen.generate_ids(ids, key, negative_ids=gen.tokenize(["drawing sketch"] * 4)))
  np.testing.assert_array_equal(once[0], per_call)
  assert np.any(once[0] != once[1])
  latents = jax.random.normal(key, sampler.latent_shape(parts, gen.cfg, 4))
  fn = sampler.make_latent_sampler(parts, gen.cfg)
  neg_ids = gen.tokenize(["drawing sketch"] * 4)
  np.testing.assert_array_equal(np.asarray(fn(parts.params, ids, gen._negative_context, latents, 3.0)),
                                np.asarray(fn(parts.params, ids, neg_ids, latents, 3.0)))
  gen.negative_prompt = ""                                       # re-encoded when it changes
  new_negative = np.asarray(gen.generate_ids(ids, key))
  assert np.any(new_negative != once[0])
  np.testing.assert_array_equal(new_negative, np.asarray(
      gen.generate_ids(ids, key, negative_ids=gen.tokenize([""] * 4))))
  assert gen._sample._cache_size() == 2   # hidden-state and ids paths; a new negative reuses one


def test_four_devices_equal_one(parts):
  assert jax.device_count() == 4
  ids = tokenize(parts.tokenizer, PROMPTS * 2)
  neg = tokenize(parts.tokenizer, [""] * 4)
  key = jax.random.key(7)
  one = sampler.make_sampler(parts, _cfg(), sharding.make_mesh(jax.devices()[:1]))
  four = sampler.make_sampler(parts, _cfg(), sharding.make_mesh())
  a = np.asarray(one(parts.params, ids, neg, key, jnp.float32(3.0))).astype(int)
  out4 = four(parts.params, ids, neg, key, jnp.float32(3.0))
  assert len(out4.sharding.device_set) == 4
  b = np.asarray(out4).astype(int)
  assert np.abs(a - b).max() <= 1  # uint8 rounding of float-tolerance differences


def test_image_does_not_depend_on_batch_size_or_padding(parts):
  gen = Generator(parts, _cfg(out_size=8, out_channels=1), guidance_scale=3.0)
  key = jax.random.key(11)
  three = gen.generate(PROMPTS + PROMPTS[:1], key)      # padded to 4 rows on 4 devices
  five = gen.generate(PROMPTS + PROMPTS + PROMPTS[:1], key)
  assert three.shape == (3, 8, 8, 1) and five.shape == (5, 8, 8, 1)
  np.testing.assert_array_equal(three[:2], five[:2])


def test_uint8_conversion_resizes_and_converts_channels():
  from jaxsets.generator.images import to_uint8_images
  # A [-1, 1] image, 3 channels 4x4: left half white, right half black (NCHW).
  x = -np.ones((1, 3, 4, 4), np.float32)
  x[..., :2] = 1.0
  gray = np.asarray(to_uint8_images(jnp.asarray(x), 2, 1))
  assert gray.shape == (1, 2, 2, 1)
  np.testing.assert_array_equal(gray[0, :, :, 0], [[255, 0], [255, 0]])  # area-like, no crop
  rgb = np.asarray(to_uint8_images(jnp.asarray(x[:, :1]), 4, 3))
  assert rgb.shape == (1, 4, 4, 3) and np.all(rgb[..., 0] == rgb[..., 2])


@pytest.mark.parametrize("scheduler", ["ddim", "dpm_solver", "euler", "pndm"])
def test_scheduler_uses_the_models_noise_schedule(scheduler):
  from jaxsets.generator.embedded import architecture
  config = architecture.scheduler_config()  # SD's scaled-linear betas 0.00085 .. 0.012
  _, state = hf.make_scheduler(scheduler, config)
  betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2
  np.testing.assert_allclose(np.asarray(state.common.alphas_cumprod), np.cumprod(1 - betas), rtol=1e-4)


@pytest.mark.parametrize("side", [4, 8])
def test_decode_takes_channels_first_latents_of_any_width(parts, side):
  # A latent as wide as it has channels (4: a 32-pixel SD image) is where diffusers' Flax decode,
  # which guesses the layout from the last axis, would misread a channels-first latent.
  c = parts.unet.config.in_channels
  latents = jax.random.normal(jax.random.key(side), (2, c, side, side))          # [B, C, h, w]
  got = jax.jit(lambda p, x: sampler.decode_latents(parts, p, x))(parts.params["vae"], latents)
  want = parts.vae.apply({"params": parts.params["vae"]}, jnp.transpose(latents, (0, 2, 3, 1)),
                         method=parts.vae.decode).sample                        # channels-last in
  # Equal up to float rounding (jit fuses differently); a misread layout differs everywhere.
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)
