"""Test session setup: 4 fake CPU devices, so every test also exercises sharding.

Must run before jax is imported anywhere.
"""
import os

# XLA's backend optimisation off: the suite's programs are tiny and run a few times each, so
# compiling them is most of its time (the cifar10_sd smoke run: 117 s of compiling at the default
# level, 62 s at 0; the test 155 s -> 109 s). Every process a test compares with another gets
# the same flags (test_multihost.py's two processes too), so bit-for-bit checks still compare
# like with like. XLA's defaults where a test compares two programs within a tolerance that
# level 0's summation order exceeds (test_classifier.py's 4 devices against 1, in a subprocess)
# and in the benchmarks' from-scratch runs (scratch_runs.py).
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4 "
                                   "--xla_backend_optimization_level=0")
os.environ.setdefault("USE_TF", "0")   # transformers must not import TensorFlow
os.environ.setdefault("USE_TORCH", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jaxsets  # noqa: E402,F401  (adds its XLA:CPU flags before any test starts JAX)


import contextlib  # noqa: E402
import fcntl  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402  (after the environment above, as jax must see it first)

# Files that take minutes, longest first: with `-n 2 --dist loadfile` (the README's command)
# each file runs whole on one of two workers, and the short ones then fill in around these.
SLOW_FIRST = ("test_run_sd_config.py", "test_run.py", "test_benchmarks_from_scratch.py",
              "test_multihost.py", "test_accelerator_from_scratch.py", "test_faults.py",
              "test_generator_sampler.py", "test_env_mesh.py", "test_real_size_tiny.py",
              "test_generator_loading.py")


def pytest_configure(config):
  # xdist hands out files with the most tests first unless told to keep the collection order:
  # the one-test, four-minute files then started last, with the other worker idle.
  if hasattr(config.option, "loadscopereorder"):
    config.option.loadscopereorder = False
  # One XLA compilation cache for the session: the workers, and the `jaxsets` and benchmark
  # processes the tests start, inherit it, so a program compiled anywhere is compiled once.
  # Made by the controller before it starts the workers (they see the variable at jax's import).
  if not hasattr(config, "workerinput") and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    config.jaxsets_xla_cache = tempfile.mkdtemp(prefix="jaxsets-tests-xla-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = config.jaxsets_xla_cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")


def pytest_unconfigure(config):
  folder = getattr(config, "jaxsets_xla_cache", None)
  if folder:
    shutil.rmtree(folder, ignore_errors=True)
    os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)


def pytest_collection_modifyitems(items):
  rank = {name: i for i, name in enumerate(SLOW_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))  # stable: order within


def shared_root(tmp_path_factory):
  """A folder every pytest-xdist worker of this session sees (each has its own basetemp)."""
  base = tmp_path_factory.getbasetemp()
  return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def made_once(folder):
  """Yields whether `folder` still has to be made, holding a lock that other workers wait on;
  the folder counts as made once the block exits without an error."""
  folder.mkdir(parents=True, exist_ok=True)
  with open(folder / ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    done = folder / ".done"
    yield not done.exists()
    done.touch()


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
  """The tiny generator pretrained once, a TFDS copy and an XLA compilation cache, shared by
  every test (and worker) that runs `jaxsets` on the smoke config in a subprocess (see
  smoke_runs.py). JAXSETS_TEST_SMOKE_ROOT=DIR keeps them in DIR across sessions."""
  import smoke_runs
  root = os.environ.get("JAXSETS_TEST_SMOKE_ROOT")
  if root:
    return smoke_runs.prepare(root)
  root = shared_root(tmp_path_factory) / "smoke"
  with made_once(root) as todo:
    return smoke_runs.prepare(root) if todo else smoke_runs.prepared(root)


@pytest.fixture(scope="session")
def smoke_uninterrupted(tmp_path_factory, smoke):
  """The workdir of one uninterrupted smoke run: the reference that resumed runs must equal."""
  folder = shared_root(tmp_path_factory) / "straight"
  with made_once(folder) as todo:
    if todo:
      workdir = folder / "run"
      out = smoke.cli("run", "--workdir", str(workdir), "--no-progress", *smoke.args)
      assert out.returncode == 0, out.stderr[-3000:]
  return folder / "run"
