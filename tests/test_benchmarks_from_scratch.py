"""Every benchmark runs from an empty scratch folder at tiny size, peers included where installed
(issue 16: `benchmarks/run.py --quick` once stopped measuring the RL step from scratch because a
folder-building helper ended in a NameError that a run with the folder already built never hit).

Each test runs the real command in a child process (the benchmarks decide at import whether
transformers may use PyTorch) with one CPU device, as a user runs them. CI does not install the
bench extra (PyTorch, stable-baselines3, gymnasium): there the peers' sections must fail only
for want of those packages, or be recorded as skipped, and the jaxsets sides must still run.
"""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
PEER_PACKAGES = ("torch", "stable_baselines3", "gymnasium")
HAVE_PEERS = all(importlib.util.find_spec(p) for p in PEER_PACKAGES)


def _env() -> dict:
  env = dict(os.environ, USE_TF="0", PYTHONUNBUFFERED="1")
  env.pop("XLA_FLAGS", None)   # one CPU device, not the suite's four fake ones
  env.pop("USE_TORCH", None)   # the benchmarks set it themselves
  return env


def _run(args, timeout):
  proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(), capture_output=True,
                        text=True, timeout=timeout)
  return proc, (proc.stdout + proc.stderr)[-4000:]


def _missing_peer_only(traceback_text: str) -> bool:
  return any(f"No module named '{p}'" in traceback_text for p in PEER_PACKAGES)


@pytest.mark.timeout(1800)
def test_accelerator_benchmark_tiny_runs_every_section_without_tensorflow(tmp_path):
  out, table = tmp_path / "accelerator.json", tmp_path / "accelerator.md"
  proc, tail = _run(["benchmarks/accelerator.py", "--tiny", "--out", str(out), "--markdown",
                     str(table), "--scratch", str(tmp_path / "scratch")], timeout=1750)
  result = json.loads(out.read_text())
  sections = result["sections"]
  assert set(sections) == {"build", "sampler_jaxsets", "sampler_torch_pipeline",
                           "rl_step_jaxsets", "rl_step_authors", "sampler_flax_pipeline"}, tail
  for name, part in sections.items():
    if part["status"] == "skipped":  # only the peers that need the bench extra may skip
      assert name in ("sampler_torch_pipeline", "rl_step_authors") and not HAVE_PEERS, (name, part)
    else:
      assert part["status"] == "ok", (name, part.get("error"), tail)
      assert part["tensorflow_imported"] is False, name
  assert proc.returncode == 0, tail
  # Every sampler that ran has images/s, compile and steady times at every batch.
  for row in result["summary"]["sampler"]:
    for side in ("jaxsets", "flax_pipeline") + (("torch_pipeline",) if HAVE_PEERS else ()):
      assert row[side]["images_per_s"] > 0 and row[side]["steady_s"] > 0, (row, side)
    assert row["flops_per_call"] > 0 and row["jaxsets"]["flop_per_s"] > 0
  # The same order as XLA's own count (which has the loop body once, but elementwise work too).
  flops = sections["sampler_jaxsets"]["flops_at_batch_1"]
  assert flops["xla_lowered"] is None or flops["jaxpr"] > 0.5 * flops["xla_lowered"]
  rl = result["summary"]["rl_step"]
  assert "--config.agent.num_envs=2" in result["plan"]["overrides"]
  assert rl["jaxsets_step_s"] > 0  # a step of 2 environments is 2 transitions
  assert rl["jaxsets_transition_s"] == pytest.approx(rl["jaxsets_step_s"] / 2)
  if HAVE_PEERS:
    assert rl["authors_step_s"] > 0 and rl["speedup_per_transition"] > 0
  estimate = result["summary"]["run_estimate"]
  assert estimate["total_s"] > estimate["baseline_s"] > 0
  assert estimate["train_steps"] == 16 * 40  # configs/cifar10_sd.py: 16 episodes of 400 / 10 steps
  # The record a device run needs: the exact command, versions, and a table.
  assert result["command"].startswith("python benchmarks/accelerator.py --tiny")
  assert result["machine"]["versions"]["jax"]
  text = table.read_text()
  assert "| batch |" in text and "Whole configs/cifar10_sd.py run" in text


@pytest.mark.timeout(1800)
def test_run_py_quick_from_an_empty_scratch_folder(tmp_path):
  out = tmp_path / "results.json"
  proc, tail = _run(["benchmarks/run.py", "--quick", "--tiny", "--random-weights", "--scratch",
                     str(tmp_path / "scratch"), "--out", str(out)], timeout=1750)
  import report
  import run as bench_run
  result = json.loads(out.read_text())
  report.check_schema(result)
  for name, text in result["failed"].items():
    assert not HAVE_PEERS and _missing_peer_only(text), (name, text[-2000:])
  measured = {e["name"].split("/")[0] for e in result["benchmarks"]}
  if HAVE_PEERS:
    assert measured == set(bench_run.BENCHMARKS), tail
    assert proc.returncode == 0, tail
  # With or without the peers, every comparison's jaxsets side ran.
  jaxsets_sides = {e["name"].split("/")[0] for e in result["benchmarks"]
                   if e["jaxsets"].get("steady_s") or e["jaxsets"].get("per_step_load_s") == 0.0}
  assert jaxsets_sides >= set(bench_run.BENCHMARKS) - {"utilisation"}, (jaxsets_sides, tail)
