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


def test_png_support_set_reads_back_what_was_written(tmp_path):
  import numpy as np

  from peers.png_support import PngSupportSet, to_classifier_images
  pngs = PngSupportSet(str(tmp_path / "support"))
  rng = np.random.default_rng(0)
  sevens, twos = rng.random((3, 16, 16, 1)), rng.random((2, 16, 16, 1))
  pngs.add(sevens, 7)
  pngs.add(twos, 2)
  images, labels = pngs.read(out_size=8, channels=1)
  assert images.shape == (5, 8, 8, 1) and images.dtype == np.uint8
  # Folders are class indices (sorted numerically), not names: labels stay dataset indices.
  assert list(labels) == [2, 2, 7, 7, 7]
  # PNG keeps uint8 exactly: what comes back is the 8-bit image, then resized.
  quantised = lambda x: np.round(x * 255).astype(np.uint8).astype(np.float32) / 255.0
  expected = {int(k): set() for k in (2, 7)}
  for label, batch in ((7, sevens), (2, twos)):
    for image in to_classifier_images(quantised(batch), 8):
      expected[label].add(image.tobytes())
  assert {image.tobytes() for image in images[:2]} == expected[2]
  assert {image.tobytes() for image in images[2:]} == expected[7]
  pngs.clear()  # what the authors' reset does
  images, labels = pngs.read(out_size=8, channels=1)
  assert images.shape == (0, 8, 8, 1) and labels.shape == (0,)


def test_reload_entry_has_no_speedup_and_renders():
  entries = [{"name": "rl_step/pipeline_reload_at_sd2.1_size",
              "jaxsets": {"per_step_load_s": 0.0, "note": "loaded once"},
              "peer": {"name": "from_pretrained", "steady_s": 0.2, "with_tensor_copy_s": 0.4,
                       "params": 1_289_952_427}, "speedup": None}]
  result = _result(entries)
  report.check_schema(result)
  table = report.markdown_table(result)
  assert "per step (loaded once per run)" in table and "400.0 ms with one copy" in table
  assert "1,289,952,427 params" in table and "| n/a |" in table


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="the SD 2.1 rebuild needs PyTorch (pip install -e '.[bench]')")
def test_sd21_architecture_has_the_published_parameter_counts():
  # In a child process: diffusers decides at import whether PyTorch may be used, and the rest of
  # the suite imports it with USE_TORCH=0.
  import subprocess
  code = """
import json, types, torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel
import sd21_reload as r
with torch.device("meta"):  # shapes only: no 1.3 G parameters allocated
  parts = types.SimpleNamespace(unet=UNet2DConditionModel(**r.UNET),
                                text_encoder=CLIPTextModel(CLIPTextConfig(**r.TEXT)),
                                vae=AutoencoderKL(**r.VAE))
print(json.dumps(r.param_counts(parts)))  # the counter the benchmark records
"""
  bench = os.path.join(os.path.dirname(__file__), "..", "benchmarks")
  out = subprocess.run([sys.executable, "-c", code], cwd=bench, capture_output=True, text=True,
                       env={**os.environ, "USE_TORCH": "1"}, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  import json

  import sd21_reload
  assert json.loads(out.stdout.strip().splitlines()[-1]) == sd21_reload.PUBLISHED_PARAMS


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


def test_flat_policy_trains_through_jaxsets_ppo_update():
  """The action-space comparison feeds the flat policy to jaxsets' own ppo_update: it must
  keep running as the loss evolves (it once broke when the loss moved to per-head terms)."""
  import jax
  import jax.numpy as jnp

  from bench_ppo import random_traj
  from flat_policy import init_flat_agent
  from jaxsets.agent import PPOConfig, ppo_update
  d, n, obs_dim = 2, 3, 5
  cfg = PPOConfig(hidden_sizes=(8, 8), epochs=2, minibatches=2)
  state = init_flat_agent(jax.random.key(0), obs_dim, d, n, cfg)
  traj = random_traj(jax.random.key(1), 4, 2, obs_dim, d, n)
  new, metrics = ppo_update(state, traj, jnp.zeros((2,)), jax.random.key(2), cfg=cfg)
  assert all(bool(jnp.isfinite(v)) for v in metrics.values())
  # The flat head's entropy starts near log(D n^3): its logits are initialised near zero.
  assert float(metrics["entropy"]) == pytest.approx(float(jnp.log(d * n ** 3)), rel=0.05)
  moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.params, new.params)
  assert any(jax.tree.leaves(moved))


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


def test_jaxpr_flops_multiply_loops_out_and_count_convolutions():
  import jax
  import jax.numpy as jnp

  from accel_flops import program_flops
  a, w = jnp.ones((8, 16)), jnp.ones((16, 16))
  # 5 trips of an [8, 16] x [16, 16] product: 5 * 2 * 8 * 16 * 16 FLOPs (XLA counts one trip).
  assert program_flops(lambda a, w: jax.lax.fori_loop(0, 5, lambda i, x: jnp.tanh(x @ w), a),
                       a, w) == 5 * 2 * 8 * 16 * 16
  # A 3x3 convolution 3 -> 4 channels over [2, 3, 10, 10], SAME: 2 * (2*4*10*10) outputs * 27.
  x, k = jnp.ones((2, 3, 10, 10)), jnp.ones((4, 3, 3, 3))
  assert program_flops(lambda x, k: jax.lax.conv(x, k, (1, 1), "SAME"), x, k) == 2 * 800 * 27
  # A cond counts its costlier branch.
  both = lambda a, w: jax.lax.cond(a.sum() > 0, lambda: a @ w @ w, lambda: a @ w)
  assert program_flops(both, a, w) == 2 * 2 * 8 * 16 * 16


def test_bf16_peak_is_looked_up_by_device_kind():
  from accel_flops import bf16_peak
  assert bf16_peak("NVIDIA H100 80GB HBM3")["flop_per_s"] == 989.4e12
  assert bf16_peak("NVIDIA H100 PCIe")["flop_per_s"] == 756e12  # not the SXM figure
  assert bf16_peak("cpu") is None


def test_accelerator_summary_speedups_and_run_estimate():
  from accel_report import finish, markdown
  config = os.path.join(os.path.dirname(__file__), "..", "configs", "cifar10_sd.py")
  side = lambda ips, batch: {"steady_s": batch / ips, "images_per_s": ips, "compile_s": 30.0}
  result = {
      "tiny": False, "command": "python benchmarks/accelerator.py --out x.json",
      "machine": {"date": "d", "cpu_count": 16, "versions": {"jax": "0"},
                  "gpus": [{"name": "NVIDIA H100 80GB HBM3", "driver": "1", "memory": "80 GB"}]},
      "plan": {"batches": [40], "config": config},
      "sections": {
          "sampler_jaxsets": {"status": "ok", "device": "NVIDIA H100 80GB HBM3",
                              "batches": {"40": {**side(20.0, 40), "flops": {"jaxpr": 4e14}}}},
          "sampler_torch_pipeline": {"status": "ok", "batches": {"40": side(10.0, 40)}},
          "sampler_flax_pipeline": {"status": "timed_out", "error": "stopped"},
          "rl_step_jaxsets": {"status": "ok", "steady_s": 4.0, "transitions_per_step": 4,
                              "baseline": {"per_step_s": 0.01}},
          "rl_step_authors": {"status": "ok", "steady_s": 6.0, "transitions_per_step": 1}}}
  finish(result)
  row = result["summary"]["sampler"][0]
  assert row["speedup_vs_torch_pipeline"] == 2.0 and "flax_pipeline" not in row
  # 4e14 FLOPs in 2 s = 2e14 FLOP/s: 20% of the H100's 989.4 TFLOP/s data-sheet peak.
  assert row["jaxsets"]["fraction_of_bf16_peak"] == pytest.approx(2e14 / 989.4e12)
  assert result["summary"]["rl_step"]["speedup_per_transition"] == 6.0  # 6 s vs 4 s / 4 envs
  est = result["summary"]["run_estimate"]
  # 16 episodes x 40 steps + a 40-step roll-out at 4 s, + 20,000 baseline steps at 10 ms.
  assert est["total_s"] == pytest.approx((16 * 40 + 40) * 4.0 + 20000 * 0.01)
  text = markdown(result)
  assert "**2.00x**" in text and "sampler_flax_pipeline: timed_out" in text


@pytest.mark.skipif(importlib.util.find_spec("gymnasium") is None,
                    reason="peers/authors_loop.py needs the bench extra (pip install -e '.[bench]')")
def test_rl_step_names_every_authors_structure():
  # bench_rl_step names the structures itself (so that it imports without gymnasium): the
  # same ones, in the same order, as the peer defines.
  import bench_rl_step
  from peers.authors_loop import STRUCTURES
  assert tuple(bench_rl_step.NAMES) == STRUCTURES
