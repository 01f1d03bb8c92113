"""Bad input: each is refused with a message naming it and what to do, exit 2 at the CLI, and
nothing written or changed. (Covered elsewhere: a missing config file and a key typo in
test_cli.py; unreadable images in test_data_folders.py; missing or mismatched model weights in
test_generator_loading.py; a NaN reward in test_agent_reward_observation.py; a workdir of
another config in test_run.py; damaged checkpoints in test_checkpointing.py.)"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from jaxsets import config_loading
from jaxsets.errors import UserError
from jaxsets.generator import hf
from jaxsets.generator.embedded import vocab
from jaxsets.prompts import make_prompt_book
from jaxsets.loop.checks import check_config
from jaxsets.loop.setup import check_dataset, check_dictionary


def jaxsets(*args):
  return subprocess.run([sys.executable, "-m", "jaxsets.cli", *args], capture_output=True,
                        text=True, timeout=300)


def config_file(tmp_path, body: str, type_safe: bool = True) -> str:
  """A user config built on configs/digits.py with `body` applied to `c`. type_safe=False: a
  plain ConfigDict without ml_collections' own type checks, as a config written from scratch."""
  path = tmp_path / f"my_config_{len(list(tmp_path.glob('my_config_*.py')))}.py"
  make = ("c = d.get_config()" if type_safe else
          "c = ml_collections.ConfigDict(d.get_config().to_dict(), type_safe=False)")
  path.write_text("import importlib.util, os, ml_collections\n"
                  f"spec = importlib.util.spec_from_file_location('d', {os.path.abspath('configs/digits.py')!r})\n"
                  "d = importlib.util.module_from_spec(spec); spec.loader.exec_module(d)\n"
                  f"def get_config():\n  {make}\n"
                  + "".join(f"  {line}\n" for line in body.splitlines()) + "  return c\n")
  return str(path)


@pytest.mark.parametrize("body, message", [
    ("c.loop.budget = '400'", "loop.budget='400' must be a whole number"),
    ("c.loop.images_per_step = 2.5", "loop.images_per_step=2.5 must be a whole number"),
    ("c.agent.autoregressive = 'False'", "agent.autoregressive='False' must be True or False"),
    ("c.classifier.learning_rate = float('nan')", "classifier.learning_rate=nan must be finite"),
    ("c.reward.w_ent = float('inf')", "reward.w_ent=inf must be finite"),
    ("c.seed = True", "seed=True must be a whole number"),
    ("c.loop.keep_checkpoints = 0", "keep at least 1 checkpoint"),
    ("c.reward.entropy = 'shannon'", "config.reward.entropy='shannon' is not known"),
    ("c.loop.rollout = 'grredy'", "loop.rollout is 'grredy': use one of 'herding', 'greedy'"),
    ("del c.loop['rollout']", "loop.rollout is missing: use one of"),
    ("c.agent.episode_decisions = ('domain', 'colour')", "episode_decisions=('domain', 'colour') must list each of domain, blend"),
    ("c.agent.episode_decisions = 'domain'", "episode_decisions='domain' must be a tuple"),
    ("c.agent.episode_decisions = ('blend',); c.agent.domain_in_turn = True",
     "domain_in_turn=True adds a plan to the episode-level domain head: it needs 'domain'"),
    ("c.generator.dtype = 'int8'", "generator.dtype='int8': use one of auto, float32"),
    ("c.generator.attention = 'flash'", "generator.attention='flash': use one of auto"),
    ("c.generator.scheduler = 'dpm'", "generator.scheduler='dpm': unknown scheduler; use one of ddim"),
    ("c.generator.num_inference_steps = 0", "generator.num_inference_steps=0 must be at least 1"),
    ("c.generator.guidance_scale = -1.0", "generator.guidance_scale=-1.0 must be 0 or above"),
    ("c.classifier.model = 'resnet21'", "classifier.model='resnet21' is unknown. Did you mean resnet20"),
    ("c.classifier.learning_rate = -0.1", "classifier.learning_rate=-0.1 must be above 0"),
    ("c.classifier.label_smoothing = 1.5", "classifier.label_smoothing=1.5 in [0, 1)"),
    ("c.classifier.crop_padding = -1", "classifier.crop_padding=-1 must be 0 or more pixels"),
    ("c.data.image_size = 0", "data.image_size=0 must be at least 1"),
    ("c.data.channels = 2", "data.channels=2 must be 1 (greyscale) or 3 (RGB)"),
    # The embedded generator's pretraining and the prompt dictionary: refused before any data
    # loads or pretraining starts (they were read only after minutes of pretraining).
    ("c.pretrain.steps = -5", "pretrain.steps=-5 must be at least 1"),
    ("c.pretrain.steps = 1500.0", "pretrain.steps=1500.0 must be a whole number"),
    ("c.pretrain.p_triple = 1.5", "pretrain.p_triple=1.5 must be in [0, 1]"),
    ("c.pretrain.ema_decay = 1.0", "pretrain.ema_decay=1.0 must be in [0, 1)"),
    ("c.prompts.template = 'A {foo} of a {c1}'",
     "prompts.template 'A {foo} of a {c1}' must use each of {domain}, {c1}, {c2}, {c3} exactly once"),
    ("c.prompts.template = 'A {domain of a {c1}, {c2}, and {c3}'", "(unexpected '{' in field name)"),
    ("c.prompts.template = 'A {domain!r} of a {c1}, {c2}, and {c3}'", "plainly, with no other braces"),
    ("c.prompts.template = 'A {{domain}} {domain} of a {c1}, {c2}, and {c3}'", "found a literal brace"),
    ("c.prompts.domains = ()", "prompts.domains is empty"),
    ("c.prompts.domains = ('photo', 'sketch', 'photo')", "prompts.domains name ['photo'] more than once"),
    ("c.prompts.class_names = 'zero'", "prompts.class_names='zero' must be a tuple of str"),
    ("c.prompts.class_names = ('zero', ' ')", "the class names ('zero', ' ') hold an empty name"),
])
def test_wrong_kinds_in_a_config_file_are_refused(tmp_path, body, message):
  config = config_loading.load_config_file(config_file(tmp_path, body, type_safe=False))
  with pytest.raises(UserError, match=re.escape(message)):
    check_config(config)


@pytest.mark.timeout(300)
def test_a_type_change_that_ml_collections_refuses_names_the_file(tmp_path):
  path = config_file(tmp_path, "c.loop.budget = '400'")
  with pytest.raises(config_loading.ConfigError, match=r"get_config\(''\) in .*my_config_0.py.* failed: TypeError.*budget"):
    config_loading.load_config_file(path)


def test_bad_values_at_the_cli_exit_2_and_leave_the_workdir_untouched(tmp_path):
  workdir = tmp_path / "run"
  for args, message in [
      (["--config", "configs/digits.py", "--config.loop.images_per_step=0"], "at least 1"),
      (["--config", config_file(tmp_path, "c.loop.budget = -10")], "loop.budget=-10"),
      (["--config", config_file(tmp_path, "c.agent.epochs = 2.0", type_safe=False)],
       "agent.epochs=2.0 must be a whole number"),
      (["--config", "configs/digits.py", "--config.prompts.template=A {foo} of a {c1}"],
       "prompts.template 'A {foo} of a {c1}' must use each of"),
      (["--config", "configs/digits.py", "--num-processes", "2", "--process-id", "0"],
       "--coordinator-address"),
  ]:
    out = jaxsets("run", "--workdir", str(workdir), *args)
    assert out.returncode == 2, (args, out.stderr[-2000:])
    assert message in out.stderr and "Traceback" not in out.stderr, (args, out.stderr[-2000:])
    # The config is checked before the workdir is made: a refused run leaves nothing behind.
    assert not workdir.exists(), os.listdir(workdir)


def test_a_dataset_with_one_class_is_refused_before_the_generator_loads():
  class OneClass:
    name, num_classes, class_names = "folder:cats", 1, ("cat",)
  with pytest.raises(UserError, match="'folder:cats' has 1 class .*at least 2.*sub-folder"):
    check_dataset(OneClass())


@pytest.mark.parametrize("word", ["\x00\x01", "\u200b"])
def test_dictionary_words_the_tokenizer_drops_are_named(tmp_path, word):
  vocab.write_vocab(str(tmp_path), ["zero one two", "A photo of a"])
  tokenizer = hf.make_tokenizer(str(tmp_path), 16)
  book = make_prompt_book(tokenizer, "A {domain} of a {c1}, {c2}, and {c3}", ("photo", word),
                          ("zero", "one"))
  with pytest.raises(UserError, match="prompts.domains .*no tokens"):
    check_dictionary(book)
  book = make_prompt_book(tokenizer, "A {domain} of a {c1}, {c2}, and {c3}", ("photo", "☃"),
                          ("zero", "one"))
  check_dictionary(book)  # unusual but encodable (byte-level BPE): accepted
  assert np.all(book.domain_len > 0)


def test_a_config_refused_by_the_setup_leaves_the_workdir_usable(tmp_path):
  """A dataset check fails after the fast config checks: no config.json may be left, or the
  corrected config would be refused as 'a run with a different config'."""
  from PIL import Image
  from jaxsets.checkpoint.workdir_config import check_workdir_config
  from jaxsets.loop.run import run
  cats = tmp_path / "cats" / "cat"
  cats.mkdir(parents=True)
  for i in range(6):
    Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(cats / f"{i}.png")
  config = config_loading.load_config_file("configs/digits.py:smoke")
  config.data.name, config.data.train_per_class = f"folder:{tmp_path / 'cats'}", 0
  workdir = tmp_path / "run"
  with pytest.raises(UserError, match="has 1 class"):
    run(config, str(workdir))
  assert not (workdir / "config.json").exists()
  # The check refuses another config's workdir without writing anything.
  workdir.mkdir(exist_ok=True)
  (workdir / "config.json").write_text('{"seed": 1}')
  with pytest.raises(UserError, match="holds a run with a different config"):
    check_workdir_config(str(workdir), {"seed": 2})
  assert (workdir / "config.json").read_text() == '{"seed": 1}'


def test_an_unwritable_workdir_is_refused_before_the_setup(tmp_path, monkeypatch):
  """Found before data, generator pretraining (minutes) or anything else slow starts."""
  from jaxsets.loop import run as run_module
  def no_setup(*args, **kwargs):
    raise AssertionError("make_setup ran before the workdir was checked")
  monkeypatch.setattr(run_module, "make_setup", no_setup)
  blocker = tmp_path / "a_file"
  blocker.write_text("not a folder")
  config = config_loading.load_config_file("configs/digits.py:smoke")
  with pytest.raises(UserError, match="cannot write to the workdir"):
    run_module.run(config, str(blocker / "run"))
