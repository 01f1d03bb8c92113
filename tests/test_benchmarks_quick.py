"""The benchmark harness (benchmarks/): timing, speedup and JSON schema logic on the jaxsets side.

Fast and peer-free: CI does not install the `bench` extra (PyTorch, stable-baselines3), so the
one test that touches a peer skips without them.
"""
import importlib.util
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

_had_use_torch = "USE_TORCH" in os.environ
import common  # noqa: E402  (sets USE_TORCH=1 for the peers: undo it for the rest of the suite)
import report  # noqa: E402

if not _had_use_torch:
  os.environ.pop("USE_TORCH", None)


def _result(entries):
  return {"machine": {"date": "2026-11-25", "cpu": "test cpu", "cpu_count": 2, "backend": "cpu",
                      "jax": "0", "torch": None, "load_average_1_5_15min": [0.0, 0.0, 0.0]},
          "command": "python benchmarks/run.py --out x.json", "benchmarks": entries}


def test_speedup_is_peer_time_over_jaxsets_time():
  e = common.entry("x", {"steady_s": 0.5}, {"name": "peer", "steady_s": 2.0})
  assert e["speedup"] == 4.0  # jaxsets 4x faster
  slow = common.entry("y", {"steady_s": 2.0}, {"name": "peer", "steady_s": 1.0})
  assert slow["speedup"] == 0.5


def test_measure_sides_interleaves_and_excludes_warmup():
  calls = []
  sides = {"a": (lambda i: calls.append(("a", i)), common.no_sync),
           "b": (lambda i: calls.append(("b", i)), common.no_sync, lambda i: calls.append(("setup", i)))}
  out = common.measure_sides(sides, repeats=3, warmup=1)
  # Call i of every side before call i + 1; setup runs before its side's call.
  assert calls[:3] == [("a", 0), ("setup", 0), ("b", 0)]
  assert len(calls) == 3 * 4
  for stats in out.values():
    assert len(stats["all_s"]) == 3 and stats["steady_s"] >= 0 and stats["compile_s"] >= 0


def test_measure_waits_for_jax_and_reports_compile_apart():
  import jax
  import jax.numpy as jnp
  f = jax.jit(lambda x: (x @ x).sum())
  x = jnp.ones((64, 64))
  stats = common.measure(lambda i: f(x + i), repeats=3)
  assert stats["first_s"] >= stats["steady_s"] > 0
  assert stats["compile_s"] == pytest.approx(stats["first_s"] - stats["steady_s"])


def test_schema_and_markdown():
  entries = [common.entry("generation/same_prompt/vs_flax",
                          {"steady_s": 0.2, "compile_s": 3.0, "images_per_s": 50.0},
                          {"name": "flax", "steady_s": 0.3, "images_per_s": 33.0}),
             {"name": "action_space_scaling/n=1000", "jaxsets": {"steady_s": 0.01, "params": 10},
              "peer": {"name": "flat", "fits": False, "estimated_bytes": 2 ** 40}, "speedup": None}]
  result = _result(entries)
  report.check_schema(result)
  table = report.markdown_table(result)
  assert "**1.50x**" in table and "does not fit" in table and result["command"] in table
  bad = _result([dict(entries[0], speedup=9.0)])  # speedup inconsistent with the times
  with pytest.raises(AssertionError):
    report.check_schema(bad)


def test_flat_policy_log_prob_matches_its_index():
  import jax
  import jax.numpy as jnp

  from flat_policy import FlatCategorical, num_params
  d, n = 2, 3
  logits = jax.random.normal(jax.random.key(0), (d * n ** 3,))
  dist = FlatCategorical(logits, n)
  action = jnp.asarray([1, 2, 0, 1])
  index = ((1 * n + 2) * n + 0) * n + 1
  assert dist.log_prob(action) == pytest.approx(float(jax.nn.log_softmax(logits)[index]))
  # 64-64 torsos for obs 5: actor and critic 2 * (5*64+64 + 64*64+64), head 64*A+A, value 65.
  assert num_params(5, 7, (64, 64)) == 2 * (5 * 64 + 64 + 64 * 64 + 64) + 64 * 7 + 7 + 65


@pytest.mark.skipif(importlib.util.find_spec("torch") is None
                    or importlib.util.find_spec("stable_baselines3") is None,
                    reason="peers need the bench extra (pip install -e '.[bench]')")
def test_sb3_peer_runs_one_update_at_jaxsets_sizes():
  from jaxsets.agent import PPOConfig
  from peers.sb3_ppo import SB3PPOUpdate
  cfg = PPOConfig(hidden_sizes=(8, 8), epochs=1, minibatches=2)
  peer = SB3PPOUpdate(6, 2, 3, cfg, n_steps=4, n_envs=2)
  peer.fill(0)
  peer.update()
  assert peer.model.batch_size == 4
  assert list(peer.model.action_space.nvec) == [2, 3, 3, 3]
