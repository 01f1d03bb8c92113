"""Two processes on this machine (2 fake CPU devices each, gloo collectives over localhost) run
the stages of a run on one 4-device global mesh; the results must equal one process with 4
devices, and their checkpoint must restore in a single process.

Equal means bit for bit where no float is summed across devices (data placement, generation,
the checkpoint), and to float tolerance where a gradient is all-reduced across devices: gloo's
ring all-reduce adds the 4 partial sums in another order than the in-process one.
"""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import multihost_stages
from jaxsets import config_loading
from jaxsets.checkpointing import Checkpointer

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, smoke):
  workdir = str(tmp_path_factory.mktemp("two"))
  env = {**smoke.env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  address = f"127.0.0.1:{free_port()}"
  procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "multihost_stages.py"), workdir,
                             address, "2", str(i), "--", *smoke.args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  try:
    outs = [p.communicate(timeout=600) for p in procs]
  finally:
    for p in procs:
      p.kill()
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-4000:]
  return workdir, dict(np.load(os.path.join(workdir, "stages.npz")))


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, smoke):
  assert jax.device_count() == 4 and jax.process_count() == 1
  config = config_loading.load_config_file("configs/digits.py:smoke")
  config_loading.apply_overrides(config, smoke.args)
  old = os.environ.get("JAXSETS_CACHE")
  os.environ["JAXSETS_CACHE"] = smoke.env["JAXSETS_CACHE"]  # the pretrained generator
  try:
    return config, multihost_stages.run_stages(config, str(tmp_path_factory.mktemp("one")))
  finally:
    os.environ.pop("JAXSETS_CACHE") if old is None else os.environ.update(JAXSETS_CACHE=old)


@pytest.mark.timeout(900)
def test_two_processes_equal_one(two_processes, one_process):
  _, two = two_processes
  _, (one, _) = one_process
  assert sorted(two) == sorted(one)
  for name in ("real_images", "real_mask", "generated"):  # no cross-device arithmetic
    np.testing.assert_array_equal(two[name], one[name], err_msg=name)
  assert two["generated"].shape[:2] == (2, 10) and two["generated"].std() > 0
  for name in sorted(one):
    if name.startswith(("clf/", "agent/", "finetune_losses", "ppo_loss")):
      np.testing.assert_allclose(two[name], one[name], rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.timeout(300)
def test_checkpoint_of_two_processes_restores_in_one(two_processes, one_process):
  workdir, two = two_processes
  with open(os.path.join(workdir, "results.json")) as f:
    assert json.load(f)["process_count"] == 2  # written once, by process 0
  assert not [n for n in os.listdir(workdir) if n.endswith(".tmp")]
  config, (_, state_one) = one_process
  template = jax.eval_shape(lambda: state_one)  # same code, so the same tree and leaf names
  with Checkpointer(workdir, config.to_dict()) as ckpt:
    step, state, meta = ckpt.restore_latest(template)
  assert step == 1 and meta == {"note": "multihost"} and ckpt.skipped == []
  np.testing.assert_array_equal(np.asarray(state["generated"]), two["generated"])
  for i, leaf in enumerate(jax.tree.leaves(state["clf"])):
    np.testing.assert_array_equal(np.asarray(leaf), two[f"clf/{i}"])
  np.testing.assert_array_equal(jax.random.key_data(state["key"]),
                                jax.random.key_data(jax.random.key(0)))

