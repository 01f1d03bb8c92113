"""The write path of a checkpoint: a process killed in the middle of a save leaves nothing that a
restore would take, and an async save holds what it was given, not what the caller changes next."""
import os
import subprocess
import sys
import textwrap
import time

import jax.numpy as jnp
import numpy as np

from jaxsets.checkpoint.manager import Checkpointer

CONFIG = {"seed": 0, "loop": {"budget": 400, "checkpoint_every": 1}, "data": {"name": "digits"}}

CHILD = textwrap.dedent("""
  import asyncio, os, sys, time
  import jax.numpy as jnp
  from orbax.checkpoint._src.path import async_path
  from jaxsets.checkpoint.manager import Checkpointer
  workdir, marker = sys.argv[1], sys.argv[2]
  config = {"seed": 0}
  ckpt = Checkpointer(workdir, config)
  ckpt.save(1, {"x": jnp.full((64, 64), 1.0)})
  ckpt.wait()
  async def stall(*args, **kwargs):  # step 2 is fully written but never renamed into place
    open(marker, "w").close()
    await asyncio.sleep(600)
  async_path.rename = stall
  ckpt.save(2, {"x": jnp.full((64, 64), 2.0)})
  time.sleep(600)
""")


def test_process_killed_mid_save_leaves_no_checkpoint_to_restore(tmp_path):
  marker = tmp_path / "writing"
  child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "run"), str(marker)])
  try:
    deadline = time.time() + 50
    while not marker.exists() and child.poll() is None and time.time() < deadline:
      time.sleep(0.05)
    assert marker.exists(), "the child never reached the rename of step 2"
  finally:
    child.kill()  # SIGKILL: no handler, no cleanup
    child.wait()
  leftovers = os.listdir(tmp_path / "run" / "checkpoints")
  assert "1" in leftovers and "2" not in leftovers and any("tmp" in n for n in leftovers)
  with Checkpointer(str(tmp_path / "run"), {"seed": 0}) as ckpt:
    step, state, _ = ckpt.restore_latest({"x": jnp.zeros((64, 64))})
    assert step == 1 and ckpt.skipped == []
    assert float(state["x"][0, 0]) == 1.0
    ckpt.save(2, {"x": jnp.full((64, 64), 3.0)})  # the half-written step 2 is no obstacle


def test_save_snapshots_what_the_caller_mutates_next(tmp_path):
  # The loop appends to its history and may reuse numpy buffers right after an async save.
  history, buf = {"reward": [1.0]}, np.zeros(1000, np.float32)
  with Checkpointer(str(tmp_path), CONFIG) as ckpt:
    ckpt.save(1, {"buf": buf}, history)
    history["reward"].append(2.0)
    buf[:] = 7
    ckpt.wait()
    _, state, meta = ckpt.restore_latest({"buf": np.zeros(1000, np.float32)})
  assert meta == {"reward": [1.0]} and not state["buf"].any()
