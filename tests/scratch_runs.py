"""What the from-scratch benchmark tests share: run a benchmark script as a user does, in a child
process (the benchmarks decide at import whether transformers may use PyTorch) with one CPU
device, and tell a peer that is missing from a real failure.

CI does not install the bench extra (PyTorch, stable-baselines3, gymnasium): there the peers'
sections must fail only for want of those packages, or be recorded as skipped.
"""
import importlib.util
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
PEER_PACKAGES = ("torch", "stable_baselines3", "gymnasium")
HAVE_PEERS = all(importlib.util.find_spec(p) for p in PEER_PACKAGES)


def child_env() -> dict:
  env = dict(os.environ, USE_TF="0", PYTHONUNBUFFERED="1")
  env.pop("XLA_FLAGS", None)   # one CPU device, not the suite's four fake ones
  env.pop("USE_TORCH", None)   # the benchmarks set it themselves
  return env


def run_script(args, timeout):
  proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=child_env(), capture_output=True,
                        text=True, timeout=timeout)
  return proc, (proc.stdout + proc.stderr)[-4000:]


def missing_peer_only(traceback_text: str) -> bool:
  return any(f"No module named '{p}'" in traceback_text for p in PEER_PACKAGES)


