"""The accelerator benchmark runs every section from an empty scratch folder at tiny size, peers
included where installed, without importing TensorFlow (issue 16). Split from
test_benchmarks_from_scratch.py so that the two minute-long runs start on different workers.
"""
import json

import pytest

from scratch_runs import HAVE_PEERS, run_script


@pytest.mark.timeout(1800)
def test_accelerator_benchmark_tiny_runs_every_section_without_tensorflow(tmp_path):
  out, table = tmp_path / "accelerator.json", tmp_path / "accelerator.md"
  proc, tail = run_script(["benchmarks/accelerator.py", "--tiny", "--out", str(out),
                           "--markdown", str(table), "--scratch", str(tmp_path / "scratch")],
                          timeout=1750)
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
