"""`jaxsets.load_agent`: a run's trained agent back from its workdir, usable by
`build_support_set`, and a clear UserError for what is not a run with a checkpoint."""
import json
import os

import jax
import numpy as np
import pytest

import jaxsets
from fast_tiny_sd import save_fast_tiny_sd
from smoke_runs import TOTAL_STEPS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _saved_agent(workdir, step):
  """The agent's arrays of checkpoint `step`, read with Orbax alone (no jaxsets template): a
  nested dict as stored, {"params": {...}, "opt_state": {...}, "step": ...}."""
  import orbax.checkpoint as ocp
  with ocp.PyTreeCheckpointer() as reader:
    return reader.restore(os.path.join(workdir, "checkpoints", str(step), "state"))["agent"]


def test_load_agent_gives_the_runs_final_agent_and_build_support_set_takes_it(
    tmp_path, smoke_uninterrupted):
  workdir = str(smoke_uninterrupted)
  trained = jaxsets.load_agent(workdir)
  with open(os.path.join(workdir, "config.json")) as f:
    config = json.load(f)
  assert trained.step == TOTAL_STEPS and trained.config == config
  assert trained.domains == tuple(config["prompts"]["domains"])
  assert trained.template == config["prompts"]["template"]
  assert trained.ppo_cfg.hidden_sizes == tuple(config["agent"]["hidden_sizes"])
  assert trained.observation_cfg == jaxsets.ObservationConfig(**config["agent"]["observation"])
  # Every array of the run's final agent (params, Adam moments, update count), bit for bit.
  saved = _saved_agent(workdir, TOTAL_STEPS)
  leaves = lambda tree: [np.asarray(x) for x in jax.tree.leaves(tree)]
  for got, want in zip(leaves(trained.agent.params), leaves(saved["params"]), strict=True):
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
  assert [x.tobytes() for x in leaves(trained.agent.opt_state)] == \
         [x.tobytes() for x in leaves(saved["opt_state"])]
  assert int(trained.agent.step) == int(saved["step"]) > 0  # it was trained

  # The smoke run's digits: 10 classes of 8x8x1 images; a tiny random generator will do.
  generator = jaxsets.load_generator(save_fast_tiny_sd(str(tmp_path / "sd"), channels=1),
                                     image_size=8, channels=1, num_inference_steps=2)
  names = [str(i) for i in range(10)]
  book = jaxsets.make_prompt_book(generator, names, domains=trained.domains,
                                  template=trained.template)
  rng = np.random.default_rng(0)  # test data on the host
  images, labels = rng.integers(0, 256, (20, 8, 8, 1), dtype=np.uint8), np.arange(20) % 10
  cfg = jaxsets.ClassifierConfig(batch_size=8, finetune_steps=1)
  baseline = jaxsets.init_classifier(jax.random.key(0), (8, 8, 1), 10, cfg)  # untrained will do
  real = val = jaxsets.device_set(images, labels)
  support = jaxsets.build_support_set(trained.agent, generator, book, baseline, real, val,
                                      jax.random.key(1), budget=2, images_per_step=1, cfg=cfg,
                                      observation_cfg=trained.observation_cfg)
  assert len(support) == 2 and support.images.shape == (2, 8, 8, 1)
  assert all(p.split(" of a ")[0].split(" ", 1)[1] in trained.domains for p in support.prompts)


def test_load_agent_says_what_is_missing(tmp_path):
  with pytest.raises(jaxsets.UserError, match="no folder"):
    jaxsets.load_agent(str(tmp_path / "nothing"))
  with pytest.raises(jaxsets.UserError, match="holds no run: .*config.json is missing"):
    jaxsets.load_agent(str(tmp_path))                        # an empty folder
  config = jaxsets.load_config(os.path.join(REPO, "configs/digits.py:smoke")).to_dict()
  (tmp_path / "config.json").write_text(json.dumps(config))
  with pytest.raises(jaxsets.UserError, match="no checkpoint yet"):
    jaxsets.load_agent(str(tmp_path))                        # a run that has not saved a step
  del config["agent"]["class_head"]                          # as a config.json of another version
  (tmp_path / "config.json").write_text(json.dumps(config))
  with pytest.raises(jaxsets.UserError, match="class_head.*another version"):
    jaxsets.load_agent(str(tmp_path))
