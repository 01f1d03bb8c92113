"""`jaxsets` on configs/digits.py:smoke in subprocesses, shrunk to a few seconds per step.

The session fixture `smoke` (conftest.py) pretrains the tiny generator once and shares it, the
TFDS copy and an XLA compilation cache with every test that starts such runs: a restarted run
then loads its compiled programs instead of compiling them again (same programs, same bits).
"""
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

# 2 steps of 10 images per episode, 2 episodes + the roll-out = 6 steps; a tiny generator,
# pretrained on batches of 16 (the default 64 made its 30 steps 30 s of the suite's critical path).
TINY = ["--config.pretrain.steps=20", "--config.pretrain.vae_steps=10",
        "--config.pretrain.batch_size=16",
        "--config.generator.num_inference_steps=3", "--config.classifier.baseline_steps=20",
        "--config.classifier.finetune_steps=4", "--config.loop.budget=20",
        "--config.agent.episodes=2", "--config.agent.num_envs=2"]
TOTAL_STEPS = 6
CONFIG = "configs/digits.py:smoke"


@dataclasses.dataclass(frozen=True)
class Smoke:
  root: str
  env: dict       # environment for subprocesses (caches)
  args: list      # TINY + the shared TFDS data_dir

  def cli(self, command, *args, timeout=900, **kw):
    cmd = [sys.executable, "-m", "jaxsets.cli", command, "--config", CONFIG, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=timeout, **kw)

  def start_run(self, workdir, logs, *extra, launcher=None, env=None):
    """A `jaxsets run` in the background, its output in files under `logs`; `launcher`
    (python source) may patch things first."""
    head = [sys.executable, "-c", launcher, "run"] if launcher else [sys.executable, "-m", "jaxsets.cli", "run"]
    cmd = head + ["--config", CONFIG, "--workdir", str(workdir), "--no-progress", *self.args, *extra]
    return Background(cmd, {**self.env, **(env or {})}, logs)


class Background:
  """A subprocess whose stdout and stderr go to files, never to pipes: a child that writes more
  than a pipe holds (64 KiB) while the test is busy polling blocks forever (a resumed run's
  warnings once did, and the test waited 600 s for a stall that could not come)."""

  def __init__(self, cmd, env, logs):
    os.makedirs(logs, exist_ok=True)
    fd, self.log = tempfile.mkstemp(prefix="stderr-", suffix=".txt", dir=str(logs))
    with open(fd, "w") as err, open(self.log + ".stdout", "w") as out:
      self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)

  def stderr(self) -> str:
    with open(self.log) as f:
      return f.read()

  def poll(self):
    return self.proc.poll()

  def send_signal(self, sig) -> None:
    self.proc.send_signal(sig)

  def wait(self, timeout=None) -> int:
    return self.proc.wait(timeout)

  @property
  def returncode(self):
    return self.proc.returncode


def prepared(root) -> Smoke:
  """The Smoke of a `root` that `prepare` has filled."""
  root = str(root)
  # The session's compilation cache (conftest.py), unless the folders are kept across sessions.
  xla = None if os.environ.get("JAXSETS_TEST_SMOKE_ROOT") else os.environ.get("JAX_COMPILATION_CACHE_DIR")
  env = {**os.environ, "JAXSETS_CACHE": os.path.join(root, "cache"), "PYTHONUNBUFFERED": "1",
         "JAX_COMPILATION_CACHE_DIR": xla or os.path.join(root, "xla"),
         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
         "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
  return Smoke(root, env, TINY + [f"--config.data.data_dir={os.path.join(root, 'tfds')}"])


def prepare(root) -> Smoke:
  smoke = prepared(root)
  out = smoke.cli("pretrain-generator", *smoke.args, "--no-progress")
  assert out.returncode == 0, out.stderr[-3000:]
  assert "recognition rate" in out.stdout  # the generator's quality check ran
  return smoke


def saved_steps(workdir):
  folder = os.path.join(str(workdir), "checkpoints")
  if not os.path.isdir(folder):
    return []
  return sorted(int(d) for d in os.listdir(folder) if d.isdigit())


def wait_for(proc, predicate, what, timeout=600):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return
    if proc.poll() is not None:
      raise AssertionError(f"the run ended (code {proc.returncode}) before {what}: "
                           + proc.stderr()[-3000:])
    time.sleep(0.1)
  raise AssertionError(f"no {what} in {timeout} s; its stderr ends: " + proc.stderr()[-3000:])


def outputs_of(workdir):
  """(results.json without its timing, manifest rows, PNG bytes by file): what must be identical
  between an interrupted-and-resumed run and an uninterrupted one."""
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  results.pop("seconds")
  with open(os.path.join(workdir, "support_set", "manifest.jsonl")) as f:
    manifest = [json.loads(line) for line in f]
  pngs = {}
  for row in manifest:
    with open(os.path.join(workdir, "support_set", row["file"]), "rb") as f:
      pngs[row["file"]] = f.read()
  return results, manifest, pngs
