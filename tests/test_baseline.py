"""`jaxsets baseline`: writes baseline.json atomically; bad input exits with a message."""
import argparse
import json

import pytest

from jaxsets import config_loading
from jaxsets.commands import baseline
from jaxsets.errors import UserError


def run(tmp_path, *overrides):
  parser = argparse.ArgumentParser()
  baseline.add_arguments(parser)
  args = parser.parse_args(["--workdir", str(tmp_path / "wd"), "--no-progress"])
  config = config_loading.load_config_file("configs/digits.py:smoke")
  config_loading.apply_overrides(config, [f"--config.data.data_dir={tmp_path / 'tfds'}",
                                          "--config.classifier.baseline_steps=10",
                                          *overrides])
  return baseline.run(args, config)


def test_baseline_writes_json(tmp_path):
  assert baseline.__doc__.splitlines()[0].startswith("Train the baseline")
  assert run(tmp_path) == 0
  result = json.loads((tmp_path / "wd" / "baseline.json").read_text())
  for key in ("test_accuracy", "per_class_accuracy", "mean_entropy", "model", "num_train"):
    assert key in result
  assert result["model"] == "small_cnn" and result["num_train"] == 50   # 5 per class
  assert len(result["per_class_accuracy"]) == 10 and result["num_test"] == 450
  assert sum(map(sum, result["test_confusion"])) == 450
  assert 0.0 <= result["test_accuracy"] <= 1.0 and result["mean_entropy"] > 0
  assert [p.name for p in (tmp_path / "wd").iterdir()] == ["baseline.json"]   # no temp left


def test_bad_input_writes_nothing(tmp_path):
  with pytest.raises(UserError, match="train_per_class=500"):
    run(tmp_path, "--config.data.train_per_class=500")
  assert not (tmp_path / "wd" / "baseline.json").exists()
