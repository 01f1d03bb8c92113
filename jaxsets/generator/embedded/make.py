"""Making the embedded generator for a config, once: its data, its pretraining, its quality check.

`ensure_embedded(config)` returns the cached folder (generator/loading.py: embedded_folder), or
builds it there first: the dataset's generator pool trains it (build.py), and a logistic
regression fitted on every real training image reads its samples to record how recognisable
they are (quality.py) in the folder's jaxsets_embedded.json.
"""
from __future__ import annotations

import os
import shutil
import time

import jax
import numpy as np

from jaxsets.generator.config import GeneratorConfig
from jaxsets.generator.embedded import quality
from jaxsets.generator.embedded.build import build_embedded
from jaxsets.generator.embedded.pretrain import PretrainConfig
from jaxsets.generator.generator import Generator, sampler_config
from jaxsets.generator.loading import embedded_folder
from jaxsets.prompts import PromptsConfig


def ensure_embedded(config, *, quiet: bool = False, rebuild: bool = False) -> str:
  """Builds (pretrains) the embedded generator for `config` unless it is cached; returns its folder.

  The folder's jaxsets_embedded.json records how recognisable its images are: the share of
  "A photo of a {class}" images that a logistic regression trained on real digits reads as the
  prompted class (and the same for three-class prompts, read as c1).
  """
  from jaxsets import data

  pretrain = PretrainConfig.from_config(config.pretrain)  # bad values refused before any work
  template = PromptsConfig.from_config(config.prompts).template
  folder = embedded_folder(config)
  if os.path.isfile(os.path.join(folder, "model_index.json")) and not rebuild:
    return folder
  if rebuild and os.path.isdir(folder):
    shutil.rmtree(folder)
  pool = data.load_generator_pool(config.data)
  reader = _fit_reader(config)
  start = time.time()

  def describe(parts):
    return {**_recognition(config, parts, reader, pool.class_names),
            "guidance_scale": float(config.generator.guidance_scale),
            "scheduler": config.generator.scheduler,
            "num_inference_steps": int(config.generator.num_inference_steps),
            "pretrain": config.pretrain.to_dict(), "pool_size": len(pool),
            "train_seconds": round(time.time() - start, 1)}

  build_embedded(pool.images, pool.labels, pool.class_names, template, pretrain, folder,
                 quiet=quiet, describe=describe)
  return folder


def _fit_reader(config):
  """The quality reader: a logistic regression on every real training and validation image."""
  from jaxsets import data

  real = data.load_dataset(_all_real_train(config.data), int(config.seed))
  return quality.fit_reader(np.concatenate([real.train.images, real.validation.images]),
                            np.concatenate([real.train.labels, real.validation.labels]))


def _recognition(config, parts, reader, names) -> dict:
  """How often the reader reads the prompted class in the new generator's samples."""
  typed = GeneratorConfig.from_config(config.generator)
  gen = Generator(parts, sampler_config(typed, parts, out_size=config.data.image_size,
                                        out_channels=config.data.channels),
                  guidance_scale=typed.guidance_scale)
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
          "recognition_rate_three_class_prompts": triple}


def _all_real_train(data_cfg):
  """The data section with every real training image kept (the quality reader's training set)."""
  cfg = data_cfg.copy_and_resolve_references()
  cfg.unlock()
  cfg.train_per_class = 0
  cfg.imbalance_ratio = 1.0
  return cfg
