"""Two processes on this machine (2 fake CPU devices each, gloo collectives over localhost) run
the stages of a run, then a whole `jaxsets run`, on one 4-device global mesh; the results must
equal one process with 4 devices bit for bit, and their checkpoint must restore in a single
process.

Bit for bit holds because no float is summed across devices by an all-reduce, whose order
differs between gloo's ring and the in-process one: gradients and metric sums of split batches
are added in device order (jaxsets.sharding.fixed_order_sum), and `jaxsets run` holds the
PPO batch whole on every device (ppo_update gathers a trajectory split over the environments,
as a user may pass one in the stage "ppo", before it sums anything).
One thing outside the program must match too: XLA:CPU splits a large matmul's sum over the
threads of its process's pool, which has max(cores, local devices) threads unless PJRT_NPROC
says otherwise, so the 2-process side is given the pool size of the 1-process side.
"""
import json
import os
import signal
import socket
import sys

import jax
import numpy as np
import pytest

import multihost_stages
from jaxsets import config_loading
from jaxsets.checkpoint.manager import Checkpointer
from jaxsets.sharding import DATA_AXIS
from smoke_runs import Background, outputs_of

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def cpu_pool_threads(local_devices: int) -> int:
  """Threads of XLA:CPU's intra-op pool in a process with `local_devices` CPU devices (what
  the 1-process side has here, and smoke_uninterrupted's process too)."""
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  nproc = os.environ.get("PJRT_NPROC") or os.environ.get("NPROC") or cores
  return max(int(nproc), local_devices)


def eigen_threads_here() -> int:
  """XLA:CPU's pool threads in this process as Linux names them (0 where that cannot be seen)."""
  jax.devices()  # the pool exists once the CPU client does
  tasks = "/proc/self/task"
  if not os.path.isdir(tasks):
    return 0
  names = []
  for t in os.listdir(tasks):
    try:
      with open(os.path.join(tasks, t, "comm")) as f:
        names.append(f.read())
    except OSError:  # a thread that just ended
      pass
  return sum("XLAEigen" in n for n in names)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, smoke):
  """(stage workdir, stage values, workdir of the whole run) of 2 processes x 2 devices."""
  threads = eigen_threads_here()
  assert threads in (0, cpu_pool_threads(4)), (
      f"this process's XLA:CPU pool has {threads} threads, not the {cpu_pool_threads(4)} given "
      "to the 2 processes: they would split matmul sums differently (see the docstring)")
  workdir = str(tmp_path_factory.mktemp("two"))
  run_dir = str(tmp_path_factory.mktemp("two_run"))
  # The suite's XLA flags (conftest.py) with 2 devices instead of 4.
  flags = os.environ["XLA_FLAGS"].replace("device_count=4", "device_count=2")
  assert "device_count=2" in flags, flags
  env = {**smoke.env, "XLA_FLAGS": flags,
         "PJRT_NPROC": str(cpu_pool_threads(4))}
  address = f"127.0.0.1:{free_port()}"
  logs = tmp_path_factory.mktemp("logs")
  procs = [Background([sys.executable, os.path.join(HERE, "multihost_stages.py"), workdir, address,
                       "2", str(i), "--run", run_dir, "--", *smoke.args], env, logs)
           for i in range(2)]
  try:
    for p in procs:
      p.wait(timeout=900)
  finally:
    for p in procs:
      if p.poll() is None:
        p.send_signal(signal.SIGKILL)
  for p in procs:
    assert p.returncode == 0, p.stderr()[-4000:]
  return workdir, dict(np.load(os.path.join(workdir, "stages.npz"))), run_dir


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, smoke):
  assert jax.device_count() == 4 and jax.process_count() == 1
  config = config_loading.load_config_file(multihost_stages.CONFIG)
  config_loading.apply_overrides(config, smoke.args)
  old = os.environ.get("JAXSETS_CACHE")
  os.environ["JAXSETS_CACHE"] = smoke.env["JAXSETS_CACHE"]  # the pretrained generator
  try:
    return config, multihost_stages.run_stages(config, str(tmp_path_factory.mktemp("one")))
  finally:
    os.environ.pop("JAXSETS_CACHE") if old is None else os.environ.update(JAXSETS_CACHE=old)


@pytest.mark.timeout(1200)
def test_two_processes_equal_one(two_processes, one_process):
  _, two, _ = two_processes
  _, (one, _) = one_process
  assert sorted(two) == sorted(one)
  assert two["generated"].shape[:2] == (2, 10) and two["generated"].std() > 0
  assert float(one["eval/accuracy"]) > 0 and int(one["eval/confusion"].sum()) > 0
  for name in sorted(one):  # data, generation, fine-tune, evaluation, PPO: every bit
    np.testing.assert_array_equal(two[name], one[name], err_msg=name)


@pytest.mark.timeout(1200)
def test_two_process_run_equals_one_process_run(two_processes, smoke_uninterrupted):
  # The whole `jaxsets run` of the smoke config: the test accuracies of the three arms, the
  # support set's manifest (prompts, rewards) and its PNGs are those of 1 process x 4 devices.
  _, _, run_dir = two_processes
  results, manifest, pngs = outputs_of(run_dir)
  expected = outputs_of(smoke_uninterrupted)
  assert results["test_accuracy"] == expected[0]["test_accuracy"]
  assert (results, manifest, pngs) == expected
  assert len(pngs) == 20


@pytest.mark.timeout(300)
def test_checkpoint_of_two_processes_restores_in_one(two_processes, one_process):
  workdir, two, _ = two_processes
  with open(os.path.join(workdir, "results.json")) as f:
    assert json.load(f)["process_count"] == 2  # written once, by process 0
  assert not [n for n in os.listdir(workdir) if n.endswith(".tmp")]
  config, (_, state_one) = one_process
  template = jax.eval_shape(lambda: state_one)  # same code, so the same tree and leaf names
  # The environments come back split over the 4 devices, as run.py's template asks.
  template["env"] = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state_one["env"])
  with Checkpointer(workdir, config.to_dict()) as ckpt:
    step, state, meta = ckpt.restore_latest(template)
  assert step == 1 and meta == {"note": "multihost"} and ckpt.skipped == []
  np.testing.assert_array_equal(np.asarray(state["generated"]), two["generated"])
  for i, leaf in enumerate(jax.tree.leaves(state["clf"])):
    np.testing.assert_array_equal(np.asarray(leaf), two[f"clf/{i}"])
  np.testing.assert_array_equal(jax.random.key_data(state["key"]),
                                jax.random.key_data(jax.random.key(0)))
  env = state["env"]._replace(finetune_key=jax.random.key_data(state["env"].finetune_key))
  for i, leaf in enumerate(jax.tree.leaves(env)):
    assert leaf.ndim == 0 or leaf.sharding.spec[0] == DATA_AXIS
    np.testing.assert_array_equal(np.asarray(leaf), two[f"env/{i}"])
