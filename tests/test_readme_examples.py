"""README.md's Python examples, run as written (in order, sharing one namespace, like a notebook)
on a tiny random Stable Diffusion instead of the Hugging Face id they name, so they never rot.

The only edits are the substitutions below (the model, and fewer classifier steps so the file
runs in about a minute), and each must match: an example rewritten so that a substitution no
longer applies fails here instead of silently downloading real weights or running for minutes.
"""
import os
import re

import numpy as np
import pytest

import jaxsets
from fast_tiny_sd import save_fast_tiny_sd

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HF_ID = '"stabilityai/stable-diffusion-2-1-base"'
CONFIG_CALL = 'jaxsets.load_config("configs/digits.py", ['
STEPS = "baseline_steps=300, finetune_steps=40"


def readme_blocks() -> list[str]:
  with open(os.path.join(REPO, "README.md")) as f:
    return re.findall(r"^```python\n(.*?)^```", f.read(), flags=re.S | re.M)


def test_readme_has_python_examples():
  blocks = readme_blocks()
  assert len(blocks) >= 4
  assert all("import jaxsets" in blocks[0] or "jaxsets." in b for b in blocks)


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
  """Runs every README block; returns the globals they leave behind."""
  tiny = save_fast_tiny_sd(str(tmp_path_factory.mktemp("tiny_sd")), channels=1)
  substitutions = {
      HF_ID: repr(tiny),
      # The embedded generator takes minutes to pretrain: the config points at the tiny one.
      CONFIG_CALL: CONFIG_CALL + repr(f"--config.generator.model={tiny}") + ", ",
      STEPS: "baseline_steps=30, finetune_steps=10",
  }
  source = readme_blocks()
  for old in substitutions:
    assert any(old in block for block in source), f"no README example contains {old}"
  cwd = tmp_path_factory.mktemp("cwd")   # examples write runs/...; configs/ is read from the repo
  os.symlink(os.path.join(REPO, "configs"), cwd / "configs")
  ns = {"__name__": "readme"}
  old_cwd = os.getcwd()
  os.chdir(cwd)
  try:
    for i, block in enumerate(source):
      for old, new in substitutions.items():
        block = block.replace(old, new)
      exec(compile(block, f"README.md python block {i}", "exec"), ns)
  finally:
    os.chdir(old_cwd)
  ns["cwd"] = cwd
  return ns


def test_generation(namespace):
  images = namespace["images"]
  assert images.shape == (10, 8, 8, 1) and images.dtype == np.uint8
  assert isinstance(namespace["embedded"], jaxsets.Generator)
  assert namespace["config"].seed == 1


def test_classifier_and_reward(namespace):
  assert namespace["losses"].shape == (10,) and np.isfinite(namespace["losses"]).all()
  assert bool(namespace["finite"])
  for m in (namespace["before"], namespace["after"]):
    assert 0.0 <= float(m.accuracy) <= 1.0 and m.per_class_accuracy.shape == (10,)


def test_agent_step(namespace):
  assert int(namespace["agent"].step) == 4        # 4 epochs x 1 minibatch
  assert np.isfinite(float(namespace["metrics"]["loss"]))
  action = np.asarray(namespace["action"])
  assert action.shape == (4,) and namespace["book"].text(action).startswith("A ")


def test_support_set_built_saved_and_loaded(namespace):
  built, loaded = namespace["support_set"], namespace["loaded"]
  assert len(built) == 40 and built.images.shape == (40, 8, 8, 1)
  assert built.steps.tolist() == [s for s in range(4) for _ in range(10)]
  names = namespace["splits"].class_names
  for prompt, label in zip(built.prompts, built.labels):   # each image is labelled with its c1
    assert prompt.split(" of a ")[1].startswith(names[label] + ",")
  np.testing.assert_array_equal(loaded.images, built.images)
  np.testing.assert_array_equal(loaded.labels, built.labels)
  np.testing.assert_array_equal(loaded.steps, built.steps)
  np.testing.assert_allclose(loaded.rewards, built.rewards)
  assert loaded.prompts == built.prompts and loaded.class_names == names
  # A workdir and its support_set/ folder both load; anything else is a clear error.
  again = jaxsets.load_support_set(str(namespace["cwd"] / "runs" / "my_set" / "support_set"))
  np.testing.assert_array_equal(again.images, built.images)
  with pytest.raises(jaxsets.UserError, match="no support set"):
    jaxsets.load_support_set(str(namespace["cwd"] / "runs" / "nothing"))
