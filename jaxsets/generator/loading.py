"""Finding the generator a config asks for: the cached embedded model or real SD weights."""
from __future__ import annotations

import hashlib
import json
import os

import jax
import jax.numpy as jnp

from jaxsets.errors import UserError
from jaxsets.generator import hf, hf_attention
from jaxsets.generator.embedded.build import DESCRIPTION_FILE
from jaxsets.generator.generator import Generator, sampler_config

# Bump when the embedded model's architecture or training recipe changes: old caches are ignored.
EMBEDDED_FORMAT = 1
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def compute_dtype(config):
  """generator.dtype as a jnp dtype. "auto": bfloat16 for real Stable Diffusion on a GPU or TPU;
  float32 on CPU (bf16 sampled slower there, STACK.md) and for the embedded model (its results)."""
  name = config.generator.dtype
  if name == "auto":
    accelerated = jax.default_backend() in ("gpu", "tpu")
    name = "bfloat16" if accelerated and config.generator.model != "embedded" else "float32"
  if name not in _DTYPES:
    raise UserError(f"generator.dtype={name!r}: use one of auto, {', '.join(_DTYPES)}.")
  return _DTYPES[name]


def cache_dir(config) -> str:
  return (config.generator.cache_dir or os.environ.get("JAXSETS_CACHE")
          or os.path.join(os.path.expanduser("~"), ".cache", "jaxsets"))


def embedded_folder(config) -> str:
  """Where the embedded generator for this config lives: keyed by everything that shapes it."""
  recipe = {"format": EMBEDDED_FORMAT, "pretrain": config.pretrain.to_dict(),
            "data": config.data.name, "template": config.prompts.template}
  digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
  return os.path.join(cache_dir(config), "generators", f"embedded-{digest}")


def describe_embedded(folder: str) -> dict:
  """The metadata the pretraining wrote (recognition rate etc.), or {}."""
  path = os.path.join(folder, DESCRIPTION_FILE)
  if not os.path.isfile(path):
    return {}
  with open(path) as f:
    return json.load(f)


def model_folder(config) -> str:
  """A diffusers-format folder or a Hugging Face id, with a clear error when it is missing."""
  model = config.generator.model
  if model != "embedded":
    return model
  folder = embedded_folder(config)
  if not os.path.isfile(os.path.join(folder, "model_index.json")):
    raise UserError(f"the embedded generator for this config is not built yet (looked in {folder}). "
                    f"Build it once (a few minutes on a CPU) with: "
                    f"jaxsets pretrain-generator --config CONFIG (the same --config and overrides).")
  return folder


def check_generator_config(config):
  """Refuses a bad generator.dtype, generator.attention or generator.scheduler name (UserError)
  before anything is loaded; returns the compute dtype."""
  dtype = compute_dtype(config)
  hf_attention.resolve_mode(config.generator.get("attention", "auto"), dtype)
  hf.check_scheduler(config.generator.scheduler)
  return dtype


def load_generator(config, mesh=None) -> Generator:
  """The generator `config.generator` names, compiled for the data's resolution and channels."""
  dtype = check_generator_config(config)
  parts = hf.load_parts(model_folder(config), dtype=dtype,
                        max_prompt_length=int(config.generator.max_prompt_length),
                        revision=config.generator.get("revision", ""),
                        variant=config.generator.get("variant", ""))
  return Generator(parts, sampler_config(config, parts),
                   guidance_scale=float(config.generator.guidance_scale),
                   negative_prompt=config.generator.negative_prompt, mesh=mesh)


def ensure_embedded(config, *, quiet: bool = False, rebuild: bool = False) -> str:
  """Builds (pretrains) the embedded generator for `config` unless it is cached; returns its folder.

  The folder's jaxsets_embedded.json records how recognisable its images are: the share of
  "A photo of a {class}" images that a logistic regression trained on real digits reads as the
  prompted class (and the same for three-class prompts, read as c1).
  """
  import shutil
  import time

  import jax
  import numpy as np

  from jaxsets import data
  from jaxsets.generator.embedded import quality
  from jaxsets.generator.embedded.build import build_embedded
  from jaxsets.generator.embedded.pretrain import PretrainConfig

  folder = embedded_folder(config)
  if os.path.isfile(os.path.join(folder, "model_index.json")) and not rebuild:
    return folder
  if rebuild and os.path.isdir(folder):
    shutil.rmtree(folder)
  pool = data.load_generator_pool(config.data)
  reader_data = data.load_dataset(_all_real_train(config.data), int(config.seed))
  reader = quality.fit_reader(np.concatenate([reader_data.train.images, reader_data.validation.images]),
                              np.concatenate([reader_data.train.labels, reader_data.validation.labels]))
  names = pool.class_names
  start = time.time()

  def describe(parts):
    gen = Generator(parts, sampler_config(config, parts),
                    guidance_scale=float(config.generator.guidance_scale))
    key = jax.random.key(12345)
    prompts, labels = quality.single_class_prompts(names, per_class=20)
    single, per_class = quality.recognition_rate(reader, gen.generate(prompts, key), labels, len(names))
    rng = np.random.default_rng(0)  # host-side choice of evaluation prompts, not a learner
    triples = rng.integers(0, len(names), size=(200, 3))
    t_prompts = [config.prompts.template.format(domain="photo", c1=names[a], c2=names[b], c3=names[c])
                 for a, b, c in triples]
    triple, _ = quality.recognition_rate(reader, gen.generate(t_prompts, jax.random.fold_in(key, 1)),
                                         triples[:, 0], len(names))
    return {"recognition_rate": single, "recognition_rate_per_class": per_class,
            "recognition_rate_three_class_prompts": triple,
            "guidance_scale": float(config.generator.guidance_scale),
            "scheduler": config.generator.scheduler,
            "num_inference_steps": int(config.generator.num_inference_steps),
            "pretrain": config.pretrain.to_dict(), "pool_size": len(pool),
            "train_seconds": round(time.time() - start, 1)}

  build_embedded(pool.images, pool.labels, names, config.prompts.template,
                 PretrainConfig.from_config(config.pretrain), folder, quiet=quiet, describe=describe)
  return folder


def _all_real_train(data_cfg):
  """The data section with every real training image kept (the quality reader's training set)."""
  cfg = data_cfg.copy_and_resolve_references()
  cfg.unlock()
  cfg.train_per_class = 0
  cfg.imbalance_ratio = 1.0
  return cfg
