"""The `jaxsets` command: help lists the subcommands; bad input is one clear line and exit 2."""
import os
import subprocess
import sys

import pytest

from jaxsets import config_loading
from jaxsets.config_loading import ConfigError


def jaxsets(*args, env=None):
  return subprocess.run([sys.executable, "-m", "jaxsets.cli", *args], capture_output=True,
                        text=True, env={**os.environ, **(env or {})}, timeout=300)


def test_help_lists_every_subcommand():
  out = jaxsets("--help")
  assert out.returncode == 0
  for name in ("pretrain-generator", "generate", "baseline", "run", "compare"):
    assert name in out.stdout


def test_a_subcommand_help_shows_its_description_as_written():
  out = jaxsets("compare", "--help")
  assert out.returncode == 0, out.stderr[-2000:]
  assert "over several seeds with 95% intervals" in out.stdout, out.stdout


def test_generate_refuses_zero_images(tmp_path):
  out = jaxsets("generate", "--config", "configs/digits.py", "--prompt", "A photo of a one",
                "--num-images", "0", "--out", str(tmp_path / "o"))
  assert out.returncode == 2
  assert "--num-images must be at least 1" in out.stderr
  assert not (tmp_path / "o").exists()


def test_generate_without_a_built_generator_says_how(tmp_path):
  out = jaxsets("generate", "--config", "configs/digits.py", "--prompt", "A photo of a one",
                "--out", str(tmp_path / "o"), env={"JAXSETS_CACHE": str(tmp_path / "cache")})
  assert out.returncode == 2
  assert "jaxsets pretrain-generator --config" in out.stderr
  assert not any((tmp_path / "o").iterdir())


def test_missing_config_file_and_typo_key():
  out = jaxsets("baseline", "--config", "configs/digitz.py", "--workdir", "/tmp/x")
  assert out.returncode == 2 and "does not exist" in out.stderr and "configs/digits.py" in out.stderr
  out = jaxsets("baseline", "--config", "configs/digits.py", "--workdir", "/tmp/x",
                "--config.loop.budjet=10")
  assert out.returncode == 2 and "unknown config key" in out.stderr and "config.loop.budget" in out.stderr


def test_override_types_are_checked():
  config = config_loading.load_config_file("configs/digits.py")
  config_loading.apply_overrides(config, ["--config.loop.budget", "200", "--config.seed=3",
                                          "--config.prompts.domains=photo,sketch"])
  assert config.loop.budget == 200 and config.seed == 3
  assert config.prompts.domains == ("photo", "sketch")
  with pytest.raises(ConfigError, match="expected int"):
    config_loading.apply_overrides(config, ["--config.loop.budget=lots"])


@pytest.mark.parametrize("override, message", [
    ("--config.loop.budget=45", "not a multiple"),
    ("--config.loop.images_per_step=0", "at least 1"),
    ("--config.loop.budget=-10", "at least 1"),
])
def test_bad_loop_values_are_refused_before_work(override, message):
  from jaxsets.errors import UserError
  from jaxsets.loop.checks import check_loop_config
  config = config_loading.load_config_file("configs/digits.py")
  config_loading.apply_overrides(config, [override])
  with pytest.raises(UserError, match=message):
    check_loop_config(config)


def test_agent_imports_after_tensorflow():
  """distrax -> tensorflow_probability needs tf_keras once TensorFlow is loaded (TFDS loads it)."""
  out = subprocess.run([sys.executable, "-c",
                        "import tensorflow_datasets, tensorflow; import jaxsets.agent.policy"],
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]


HEAVY = ("diffusers", "transformers", "distrax", "tensorflow", "tensorflow_datasets")


@pytest.mark.parametrize("command", ["run", "compare"])
def test_a_bad_config_is_refused_before_the_models_are_imported(tmp_path, command):
  # The check runs in about a second because the command imports none of these before it.
  code = f"""
import sys
from jaxsets import cli
rc = cli.main(["{command}", "--config", "configs/digits.py", "--workdir", {str(tmp_path / "w")!r},
               "--config.generator.scheduler=ddpm"])
print(rc, sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
  assert out.stdout.split("\n")[-2] == "2 []", (out.stdout, out.stderr[-2000:])
  assert "generator.scheduler='ddpm': unknown scheduler; use one of ddim," in out.stderr
  assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("spec", ["configs/cifar10_sd.py", "configs/cifar10_sd.py:smoke",
                                  "configs/tiny_imagenet_sd.py", "configs/tiny_imagenet_sd.py:smoke",
                                  "configs/digits.py:smoke"])
def test_every_shipped_config_loads_and_passes_the_loop_checks(spec):
  from jaxsets.agent import PPOConfig
  from jaxsets.classifier import ClassifierConfig
  from jaxsets.loop.checks import check_loop_config
  config = config_loading.load_config_file(spec)
  check_loop_config(config)
  PPOConfig.from_config(config.agent)
  ClassifierConfig.from_config(config.classifier)
