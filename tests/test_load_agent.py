"""`jaxsets.load_agent`: a run's trained agent back from its workdir, and a clear UserError for
what is not a run with a checkpoint (tests/test_run.py rebuilds the run's support set from it)."""
import json
import os
import shutil
import warnings

import jax
import numpy as np
import pytest

import jaxsets
from smoke_runs import TOTAL_STEPS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _saved_agent(workdir, step):
  """The agent's arrays of checkpoint `step`, read with Orbax alone (no jaxsets template): a
  nested dict as stored, {"params": {...}, "opt_state": {...}, "step": ...}."""
  import orbax.checkpoint as ocp
  # Without a template Orbax takes each array's sharding from the file and warns that this is
  # unsafe on another topology: this reader only compares bytes, on the topology that saved them.
  with warnings.catch_warnings(), ocp.PyTreeCheckpointer() as reader:
    warnings.filterwarnings("ignore", "Sharding info not provided", UserWarning)
    return reader.restore(os.path.join(workdir, "checkpoints", str(step), "state"))["agent"]


def test_load_agent_gives_the_runs_final_agent(smoke_uninterrupted):
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
  # build_support_set takes it: tests/test_run.py rebuilds the run's set from it, bit for bit.


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


def test_a_run_saved_before_domain_in_turn_existed_loads_without_it(smoke_uninterrupted,
                                                                    tmp_path):
  workdir = str(tmp_path / "older")
  shutil.copytree(str(smoke_uninterrupted), workdir)
  with open(os.path.join(workdir, "config.json")) as f:
    config = json.load(f)
  del config["agent"]["domain_in_turn"]
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump(config, f)
  older, current = jaxsets.load_agent(workdir), jaxsets.load_agent(str(smoke_uninterrupted))
  assert older.ppo_cfg == current.ppo_cfg and not older.ppo_cfg.domain_in_turn
  pairs = zip(jax.tree.leaves(older.agent.params), jax.tree.leaves(current.agent.params),
              strict=True)
  assert all(np.array_equal(a, b) for a, b in pairs)
