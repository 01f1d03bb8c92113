"""Test session setup: 4 fake CPU devices, so every test also exercises sharding.

Must run before jax is imported anywhere.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("USE_TF", "0")   # transformers must not import TensorFlow
os.environ.setdefault("USE_TORCH", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import pytest  # noqa: E402  (after the environment above, as jax must see it first)


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
  """The tiny generator pretrained once, a TFDS copy and an XLA compilation cache, shared by
  every test that runs `jaxsets` on the smoke config in a subprocess (see smoke_runs.py).
  JAXSETS_TEST_SMOKE_ROOT=DIR keeps them in DIR across sessions (for working on these tests)."""
  import smoke_runs
  return smoke_runs.prepare(os.environ.get("JAXSETS_TEST_SMOKE_ROOT")
                            or tmp_path_factory.mktemp("smoke"))


@pytest.fixture(scope="session")
def smoke_uninterrupted(tmp_path_factory, smoke):
  """The workdir of one uninterrupted smoke run: the reference that resumed runs must equal."""
  workdir = tmp_path_factory.mktemp("straight")
  out = smoke.cli("run", "--workdir", str(workdir), "--no-progress", *smoke.args)
  assert out.returncode == 0, out.stderr[-3000:]
  return workdir
