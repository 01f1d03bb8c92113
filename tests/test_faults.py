"""Faults in a real `jaxsets run` (smoke config, subprocesses): SIGKILL in the middle of a
checkpoint write and in the middle of writing the outputs, a corrupted newest checkpoint in
between, then a resume that must end exactly as an uninterrupted run. Plus a full disk during
a checkpoint write, and readers of atomically written files never seeing half of one.

(tests/test_run.py covers SIGTERM -> save and exit 143 -> resume, and a SIGKILL at a step
boundary; tests/test_checkpointing.py the fallback logic on every kind of damage.)
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from smoke_runs import TOTAL_STEPS, outputs_of, saved_steps, wait_for

# Runs the CLI after patching one thing, so that the test can SIGKILL it at a chosen moment:
# STALL=rename:N  Orbax's final rename of checkpoint step N never happens (the step is fully
#                 written in its temporary folder): a kill during a checkpoint write.
# STALL=report    write_report never returns (support_set/ and results.json are written).
LAUNCHER = textwrap.dedent("""
  import asyncio, os, sys, time
  what, marker = os.environ["STALL"], os.environ["MARKER"]
  def stop_here():
    open(marker, "w").close()
    time.sleep(600)
  if what.startswith("rename:"):
    from orbax.checkpoint._src.path import async_path
    rename, step = async_path.rename, what.split(":")[1]
    async def stalled(src, dst):
      if os.path.basename(str(dst)) == step:
        open(marker, "w").close()
        await asyncio.sleep(600)
      return await rename(src, dst)
    async_path.rename = stalled
  elif what == "report":
    import jaxsets.outputs
    jaxsets.outputs.write_report = lambda *a, **k: stop_here()
  from jaxsets.cli import main
  sys.exit(main(sys.argv[1:]))
""")


def killed_at(smoke, workdir, stall, tmp_path):
  """Starts a run that stalls at `stall`, SIGKILLs it there, returns its stderr."""
  marker = tmp_path / f"stalled-{stall.replace(':', '-')}"
  proc = smoke.start_run(workdir, tmp_path / "logs", launcher=LAUNCHER,
                         env={"STALL": stall, "MARKER": str(marker)})
  try:
    wait_for(proc, marker.exists, f"the stall at {stall}")
  finally:
    proc.send_signal(signal.SIGKILL)  # no handler, no cleanup
    proc.wait()
  return proc.stderr()


@pytest.mark.timeout(900)
def test_kills_mid_checkpoint_and_mid_outputs_and_a_corrupt_checkpoint_resume_exactly(
    tmp_path, smoke, smoke_uninterrupted):
  workdir = tmp_path / "run"
  # 1. Killed while checkpoint step 3 is being written (keep_checkpoints=2: steps 1, 2 remain).
  killed_at(smoke, workdir, "rename:3", tmp_path)
  assert saved_steps(workdir) == [1, 2]
  assert any(n.startswith("3.") for n in os.listdir(workdir / "checkpoints"))  # the torso
  # 2. The newest good checkpoint is then damaged: the resume must fall back to step 1, say so,
  #    and keep the damaged step aside. This run is killed while it writes the outputs.
  state_files = sorted((workdir / "checkpoints" / "2" / "state" / "d").iterdir())
  for f in state_files:
    os.truncate(f, f.stat().st_size // 2)
  err = killed_at(smoke, workdir, "report", tmp_path)
  assert "from checkpoint step 1 of 6" in err and "skipped step 2" in err, err[-3000:]
  # TensorStore's late callbacks for the failed step's other reads are not printed (~500
  # tracebacks that buried the line above, and once filled the stderr pipe of this test).
  assert "Event loop is closed" not in err, err[-3000:]
  assert (workdir / "corrupt_checkpoints" / "2").is_dir()
  assert saved_steps(workdir)[-1] == TOTAL_STEPS
  assert not (workdir / "report.md").exists()
  # 3. The last start only writes the outputs again: identical to the uninterrupted run.
  out = smoke.cli("run", "--workdir", str(workdir), "--no-progress", *smoke.args)
  assert out.returncode == 0, out.stderr[-3000:]
  assert f"from checkpoint step {TOTAL_STEPS} of {TOTAL_STEPS}" in out.stderr
  assert outputs_of(workdir) == outputs_of(smoke_uninterrupted)
  assert (workdir / "report.md").is_file()
  leftovers = [n for n in os.listdir(workdir) if n.startswith(".")]
  assert leftovers == [], leftovers  # no temporary files or folders stay behind


FULL_DISK = textwrap.dedent("""
  import resource, signal, sys
  import numpy as np
  from jaxsets.checkpoint.manager import Checkpointer
  from jaxsets.errors import UserError
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails with EFBIG
  ckpt = Checkpointer(sys.argv[1], {"seed": 0})
  for step in (1, 2):
    ckpt.save(step, {"x": np.full(10, step, np.float32)})
  ckpt.wait()
  # Files may no longer grow past 4 kB: as good as a full disk for the next, larger step.
  resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
  try:
    big = {"x": np.random.default_rng(0).normal(size=100_000).astype(np.float32)}
    ckpt.save(3, big)
    ckpt.wait()
  except UserError as e:
    print("USERERROR", e)
  ckpt.close()
""")


@pytest.mark.timeout(120)
def test_full_disk_during_a_checkpoint_is_one_clear_error_and_keeps_the_last_good_one(tmp_path):
  out = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=120)
  assert "USERERROR" in out.stdout, out.stdout + out.stderr[-3000:]
  message = out.stdout.split("USERERROR", 1)[1]
  assert "File too large" in message and "could not write step 3" in message
  assert "step 2, is intact" in message and "run the same command again" in message
  import numpy as np
  from jaxsets.checkpoint.manager import Checkpointer
  with Checkpointer(str(tmp_path / "run"), {"seed": 0}) as ckpt:
    step, state, _ = ckpt.restore_latest({"x": np.zeros(10, np.float32)})
  assert step == 2 and ckpt.skipped == [] and state["x"][0] == 2


def test_readers_never_see_half_a_file(tmp_path):
  """A reader polling results.json while it is rewritten (growing and shrinking) always parses
  a whole version: atomic_path writes a temporary sibling and renames it over the target."""
  from jaxsets import atomic
  path = str(tmp_path / "results.json")
  atomic.write_json(path, {"n": 0, "pad": ""})
  stop, seen, bad = threading.Event(), set(), []

  def read():
    while not stop.is_set():
      with open(path) as f:
        text = f.read()
      try:
        seen.add(json.loads(text)["n"])
      except ValueError:
        bad.append(text[:80])

  reader = threading.Thread(target=read)
  reader.start()
  try:
    for n in range(1, 300):
      atomic.write_json(path, {"n": n, "pad": "x" * (n * 997 % 50_000)})
  finally:
    stop.set()
    reader.join()
  assert bad == [] and len(seen) > 1
  assert sorted(os.listdir(tmp_path)) == ["results.json"]
