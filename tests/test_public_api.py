"""The public API (`jaxsets.__all__`) on its own: names, docstrings, lazy import, the docstring
examples, and one RL step (generate -> fine-tune -> reward ->
agent update) under a single jax.jit that does not recompile on its second call.

Only `import jaxsets` is used for the library (plus test helpers that build tiny weights).
Building, saving and loading a support set run in tests/test_readme_examples.py."""
import doctest
import importlib
import logging
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsets
from fast_tiny_sd import save_fast_tiny_sd

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HF_ID = '"stabilityai/stable-diffusion-2-1-base"'   # docstring examples name real SD; tests swap it
CLASSES = ["zero", "one", "two"]
IPS, BUDGET = 4, 8                                   # images per step, support-set size


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
  return save_fast_tiny_sd(str(tmp_path_factory.mktemp("tiny_sd")), channels=1)


@pytest.fixture(scope="module")
def generator(tiny_folder):
  return jaxsets.load_generator(tiny_folder, image_size=8, channels=1, num_inference_steps=3,
                                guidance_scale=3.0)


def test_every_public_name_resolves_and_is_documented():
  for name in jaxsets.__all__:
    obj = getattr(jaxsets, name)
    assert obj.__doc__ and obj.__doc__.strip(), name
    if callable(obj) and not isinstance(obj, type):
      assert "Example" in obj.__doc__, f"jaxsets.{name} has no example"
  assert sorted(jaxsets.__all__) == jaxsets.__all__ == sorted(jaxsets._EXPORTS)
  assert set(jaxsets.__all__) <= set(dir(jaxsets))
  with pytest.raises(AttributeError, match="public API"):
    jaxsets.run_steps  # internal names are not reachable from the package


def test_import_is_light():
  """`import jaxsets` (what the CLI's --help pays) loads neither JAX's heavy friends nor SD."""
  code = ("import sys, jaxsets; heavy = [m for m in ('jax', 'diffusers', 'transformers', "
          "'tensorflow', 'flax') if m in sys.modules]; print(heavy)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       timeout=120)
  assert out.returncode == 0, out.stderr
  assert out.stdout.strip() == "[]"


def _run_doctests(module_name: str, substitute: dict | None = None, skip=()):
  """Runs a module's docstring examples from the repository root (they name configs/...)."""
  module = importlib.import_module(module_name)
  finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    for test in finder.find(module):
      if test.name.rsplit(".", 1)[-1] in skip:
        continue
      for example in test.examples:
        for old, new in (substitute or {}).items():
          example.source = example.source.replace(old, new)
      runner.run(test)
  finally:
    os.chdir(cwd)
  result = runner.summarize(verbose=False)
  assert result.failed == 0 and result.attempted > 0, f"{module_name}: {result}"


# Not run here, to keep this file near a minute on 2 cores: each compiles its own classifier
# program, and the README examples (tests/test_readme_examples.py) make the same calls.
COMPILE_HEAVY = ("train_classifier", "finetune", "evaluate")


@pytest.mark.parametrize("module", ["jaxsets.api.configs", "jaxsets.api.devices", "jaxsets.api.agents",
                                    "jaxsets.api.classification"])
def test_docstring_examples(module):
  _run_doctests(module, skip=COMPILE_HEAVY)


def test_generation_docstring_examples(tiny_folder):
  # The tiny model's VAE draws 16x16 images; resizing to 32 is the same code path as SD's 512.
  _run_doctests("jaxsets.api.generation", {HF_ID: repr(tiny_folder)})


def _random_data(seed, n, classes=3):
  rng = np.random.default_rng(seed)  # test data on the host
  return rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8), np.arange(n, dtype=np.int32) % classes


def test_one_rl_step_under_jit_does_not_recompile(generator):
  book = jaxsets.make_prompt_book(generator, CLASSES, domains=["photo", "drawing"])
  clf_cfg = jaxsets.ClassifierConfig(batch_size=16, baseline_steps=4, finetune_steps=3)
  ppo_cfg = jaxsets.PPOConfig(hidden_sizes=(16,), epochs=2, minibatches=1)
  real = jaxsets.device_set(*_random_data(0, 24))
  val = jaxsets.device_set(*_random_data(1, 12))
  baseline, _ = jaxsets.train_classifier(*_random_data(0, 24), 3, jax.random.key(0), cfg=clf_cfg)
  agent = jaxsets.init_agent(jax.random.key(1), jaxsets.observation_size(3), book.num_domains,
                             book.num_classes, ppo_cfg)
  support = jaxsets.empty_support((8, 8, 1), BUDGET)
  before = jaxsets.evaluate(baseline, val.images, val.labels, val.mask)
  # The step's outputs come back replicated over the mesh: start from the same placement.
  agent, support, before = jaxsets.replicate((agent, support, before))
  traces = []

  @jax.jit
  def rl_step(agent, support, before, t, key):
    traces.append(t)  # runs only while tracing
    k_act, k_gen, k_fit, k_ppo = jax.random.split(key, 4)
    counts = jnp.zeros((3,), jnp.int32).at[support.labels].add(support.mask.astype(jnp.int32))
    obs = jaxsets.make_observation(before, support.mask.sum(), counts, budget=BUDGET)[None]  # [1, obs]
    action, log_prob, value = jaxsets.act(agent, obs, k_act)                                 # [1, 4]
    images = generator.generate_ids(book.ids(jnp.repeat(action, IPS, axis=0)), k_gen)       # [IPS, 8, 8, 1]
    rows = t * IPS + jnp.arange(IPS)
    support = jaxsets.SupportBatch(support.images.at[rows].set(images),
                                   support.labels.at[rows].set(action[0, 1]),
                                   support.mask.at[rows].set(True))
    clf, _ = jaxsets.finetune(baseline, real, support, k_fit, cfg=clf_cfg)
    after = jaxsets.evaluate(clf, val.images, val.labels, val.mask)
    r, finite = jaxsets.reward(before, after)
    traj = jaxsets.Transition(obs[None], action[None], r[None, None], jnp.zeros((1, 1), bool),
                              value[None], log_prob[None])
    agent, metrics = jaxsets.ppo_update(agent, traj, jnp.zeros((1,)), k_ppo, cfg=ppo_cfg)
    return agent, support, after, r, finite, metrics

  k0, k1 = jax.random.split(jax.random.key(2))
  t0, t1 = jnp.int32(0), jnp.int32(1)
  agent, support, before, r, finite, _ = rl_step(agent, support, before, t0, k0)
  jax.block_until_ready(agent)
  assert bool(finite) and int(support.mask.sum()) == IPS and int(agent.step) == 2

  compiled = _CompileLog()
  with compiled, jax.log_compiles(True):
    agent, support, before, r, finite, metrics = rl_step(agent, support, before, t1, k1)
    jax.block_until_ready((agent, support, r))
  assert len(traces) == 1, "rl_step was traced again"
  assert compiled.messages == [], compiled.messages
  assert int(support.mask.sum()) == BUDGET and int(agent.step) == 4
  assert set(np.asarray(support.labels).tolist()) <= {0, 1, 2}
  assert np.isfinite(float(metrics["loss"]))


class _CompileLog(logging.Handler):
  """Collects the messages `jax.log_compiles` writes while it is installed on the jax logger."""

  def __init__(self):
    super().__init__(logging.DEBUG)
    self.messages = []

  def emit(self, record):
    if "ompil" in record.getMessage():
      self.messages.append(record.getMessage())

  def __enter__(self):
    logging.getLogger("jax").addHandler(self)
    return self

  def __exit__(self, *exc):
    logging.getLogger("jax").removeHandler(self)


def test_compile_log_sees_a_compile():
  """The check above would pass vacuously if log_compiles wrote nowhere we listen."""
  log = _CompileLog()
  with log, jax.log_compiles(True):
    jax.jit(lambda x: x * 3 + 1)(jnp.arange(7.0)).block_until_ready()
  assert log.messages
