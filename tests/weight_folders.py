"""The tiny Stable Diffusion folders the weight-loading tests read (module-scoped fixtures, imported
by each test file): Flax msgpack with every leaf drawn N(0, 1), and the same weights in the hub's
PyTorch layout."""
import os
import shutil

import jax
import numpy as np
import pytest
from flax.traverse_util import flatten_dict

import tiny_sd
from jaxsets.generator import hf

FLAX_INIT_PARAMS = hf.init_params


def _random_params(key, text, unet, vae):
  """Every leaf drawn N(0, 1) from its shape (no Flax init: fast, and a swapped or mis-transposed
  tensor cannot hide behind a constant bias or scale)."""
  del key
  shapes = jax.eval_shape(lambda k: FLAX_INIT_PARAMS(k, text, unet, vae), jax.random.key(0))
  rng = np.random.default_rng(0)  # test weights, not a learner
  return jax.tree.map(lambda s: rng.standard_normal(s.shape).astype(s.dtype), shapes)


@pytest.fixture(scope="module")
def flax_folder(tmp_path_factory):
  hf.init_params = _random_params
  try:
    return tiny_sd.save_tiny_sd(str(tmp_path_factory.mktemp("weights") / "flax"))
  finally:
    hf.init_params = FLAX_INIT_PARAMS


@pytest.fixture(scope="module")
def pt_folder(flax_folder):
  return tiny_sd.write_pytorch_layout(flax_folder, os.path.join(os.path.dirname(flax_folder), "pt"))


@pytest.fixture(scope="module")
def flax_params(flax_folder):
  return hf.load_parts(flax_folder).params


def assert_same(a, b, dtype=None):
  fa, fb = flatten_dict(a), flatten_dict(b)
  assert fa.keys() == fb.keys()
  for k in fa:
    expected = np.asarray(fa[k]) if dtype is None else np.asarray(fa[k]).astype(dtype)
    assert fb[k].dtype == expected.dtype and np.array_equal(np.asarray(fb[k]), expected), k


def copy_folder(folder, tmp_path, name="copy"):
  return shutil.copytree(folder, str(tmp_path / name))
