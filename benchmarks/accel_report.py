"""The accelerator benchmark's machine record, derived figures (speedups, FLOP utilisation, the
whole-run estimate) and markdown tables. Imports neither jax nor torch: the parent process must
leave the accelerator's memory to the sections."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import time

PACKAGES = ("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "libtpu", "flax", "optax",
            "diffusers", "transformers", "tokenizers", "huggingface-hub", "torch",
            "stable-baselines3", "numpy")
SAMPLERS = {"jaxsets": "sampler_jaxsets", "flax_pipeline": "sampler_flax_pipeline",
            "torch_pipeline": "sampler_torch_pipeline"}


def machine_info() -> dict:
  info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "platform": platform.platform(),
          "python": platform.python_version(), "cpu_count": os.cpu_count(), "versions": {}}
  for name in PACKAGES:
    try:
      info["versions"][name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  try:
    out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                          "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    gpus = [line.split(", ") for line in out.stdout.strip().splitlines() if line.strip()]
    info["gpus"] = [{"name": g[0], "driver": g[1], "memory": g[2]} for g in gpus if len(g) == 3]
  except (OSError, subprocess.SubprocessError):
    info["gpus"] = []
  return info


def _batches(result: dict, side: str) -> dict:
  return result["sections"].get(SAMPLERS[side], {}).get("batches", {}) or {}


def _sampler_rows(result: dict) -> list[dict]:
  """One row per batch: every side's images/s, compile, peak memory; speedups; utilisation."""
  from accel_flops import bf16_peak
  ours = result["sections"].get("sampler_jaxsets", {})
  peak = bf16_peak(ours.get("device") or "") if not result["tiny"] else None
  measured = ours.get("matmul_peak")
  rows = []
  for batch in result["plan"]["batches"]:
    row = {"batch": batch}
    for side in SAMPLERS:
      b = _batches(result, side).get(str(batch))
      if b and "steady_s" in b:
        row[side] = {k: b.get(k) for k in ("images_per_s", "steady_s", "compile_s",
                                            "peak_bytes_in_use")}
    j = _batches(result, "jaxsets").get(str(batch), {})
    flops = (j.get("flops") or {}).get("jaxpr")
    if "jaxsets" in row:
      for side in ("flax_pipeline", "torch_pipeline"):
        if side in row:
          row[f"speedup_vs_{side}"] = row["jaxsets"]["images_per_s"] / row[side]["images_per_s"]
      if flops:
        row["flops_per_call"] = flops
        for side in SAMPLERS:
          if side not in row:
            continue
          achieved = flops / row[side]["steady_s"]
          row[side]["flop_per_s"] = achieved
          if peak:
            row[side]["fraction_of_bf16_peak"] = achieved / peak["flop_per_s"]
          if measured:
            row[side]["fraction_of_measured_matmul"] = achieved / measured["flop_per_s"]
    rows.append(row)
  return rows


def _rl(result: dict) -> dict:
  ours = result["sections"].get("rl_step_jaxsets", {})
  theirs = result["sections"].get("rl_step_authors", {})
  out = {}
  if "steady_s" in ours:
    out["jaxsets_step_s"] = ours["steady_s"]
    out["jaxsets_transition_s"] = ours["steady_s"] / ours["transitions_per_step"]
  if "steady_s" in theirs:
    out["authors_step_s"] = out["authors_transition_s"] = theirs["steady_s"]
  if "jaxsets_step_s" in out and "authors_step_s" in out:
    # The unit of work both do: one environment-step (10 images, a fine-tune, an evaluation).
    out["speedup_per_transition"] = out["authors_transition_s"] / out["jaxsets_transition_s"]
    out["speedup_per_step"] = out["authors_step_s"] / out["jaxsets_step_s"]
  return out


def _run_estimate(result: dict) -> dict | None:
  """configs/cifar10_sd.py end to end: baseline + episodes x T training steps + T roll-out steps
  (counted at a training step's cost: an upper bound, it steps one environment)."""
  ours = result["sections"].get("rl_step_jaxsets", {})
  if "steady_s" not in ours or "baseline" not in ours:
    return None
  import runpy
  config = runpy.run_path(result["plan"]["config"])["get_config"]()
  steps_per_episode = int(config.loop.budget) // int(config.loop.images_per_step)
  train_steps = int(config.agent.episodes) * steps_per_episode
  baseline_s = ours["baseline"]["per_step_s"] * int(config.classifier.baseline_steps)
  loop_s = (train_steps + steps_per_episode) * ours["steady_s"]
  return {"train_steps": train_steps, "rollout_steps": steps_per_episode,
          "step_s": ours["steady_s"], "baseline_steps": int(config.classifier.baseline_steps),
          "baseline_s": baseline_s, "total_s": baseline_s + loop_s,
          "total_h": (baseline_s + loop_s) / 3600,
          "left_out": "the final arms (a random support set and the test fine-tunes) and the "
                      "one-off compile, load and checkpoint times"}


def finish(result: dict) -> None:
  """Adds result["summary"]: the derived figures from whatever the sections measured."""
  summary = {"tensorflow_imported": any(p.get("tensorflow_imported")
                                        for p in result["sections"].values()),
             "status": {s: p.get("status") for s, p in result["sections"].items()}}
  for key, derive in (("sampler", _sampler_rows), ("rl_step", _rl), ("run_estimate", _run_estimate)):
    try:
      summary[key] = derive(result)
    except Exception as e:  # noqa: BLE001  (a derived figure must not lose the measured ones)
      summary[key], summary[f"{key}_error"] = None, f"{type(e).__name__}: {e}"
  result["summary"] = summary


def _ips(d: dict | None) -> str:
  if not d:
    return "-"
  text = f"{d['images_per_s']:.2f}"
  if d.get("compile_s", 0) > 0.5:
    text += f" (compile {d['compile_s']:.0f} s)"
  if d.get("peak_bytes_in_use"):
    text += f", {d['peak_bytes_in_use'] / 2 ** 30:.1f} GiB"
  if "fraction_of_bf16_peak" in d:
    text += f", {100 * d['fraction_of_bf16_peak']:.0f}% of bf16 peak"
  return text


def markdown(result: dict) -> str:
  m, s = result["machine"], result["summary"]
  gpus = "; ".join(f"{g['name']} (driver {g['driver']}, {g['memory']})" for g in m.get("gpus", []))
  v = m["versions"]
  lines = [f"Measured {m['date']} on {gpus or 'no GPU'}, {m['cpu_count']} cores; jax "
           f"{v.get('jax')}, torch {v.get('torch')}, diffusers {v.get('diffusers')}"
           + (" (--tiny: tiny models, not a measurement)" if result["tiny"] else "") + ".", "",
           f"Command: `{result['command']}`", "",
           "| batch | jaxsets img/s | Flax pipeline img/s | PyTorch pipeline img/s | vs Flax | vs PyTorch |",
           "|---|---|---|---|---|---|"]
  for row in s["sampler"] or []:
    sp = lambda k: f"**{row[k]:.2f}x**" if k in row else "-"
    lines.append(f"| {row['batch']} | {_ips(row.get('jaxsets'))} | {_ips(row.get('flax_pipeline'))} "
                 f"| {_ips(row.get('torch_pipeline'))} | {sp('speedup_vs_flax_pipeline')} "
                 f"| {sp('speedup_vs_torch_pipeline')} |")
  rl = s["rl_step"] or {}
  if rl:
    ours = (f"{rl['jaxsets_step_s']:.2f} s ({rl['jaxsets_transition_s']:.2f} s per transition)"
            if "jaxsets_step_s" in rl else "-")
    theirs = f"{rl['authors_step_s']:.2f} s" if "authors_step_s" in rl else "-"
    speedup = (f"**{rl['speedup_per_transition']:.2f}x**" if "speedup_per_transition" in rl
               else "-")
    lines += ["", "| RL step | jaxsets | authors' structure | speedup per transition |",
              "|---|---|---|---|", f"| per step | {ours} | {theirs} | {speedup} |"]
  est = s["run_estimate"]
  if est:
    lines += ["", f"Whole configs/cifar10_sd.py run, expected: {est['total_h']:.2f} h "
              f"(baseline {est['baseline_steps']} steps {est['baseline_s']:.0f} s + "
              f"{est['train_steps'] + est['rollout_steps']} steps x {est['step_s']:.2f} s; "
              f"without {est['left_out']})."]
  not_ok = [name for name, part in result["sections"].items() if part.get("status") != "ok"]
  lines += [""] if not_ok else []
  for name, part in result["sections"].items():
    if part.get("status") != "ok":
      reason = part.get("skipped") or (part.get("error") or "").strip().splitlines()[-1:]
      reason = reason if isinstance(reason, str) else "".join(reason)
      lines.append(f"- {name}: {part.get('status')}: {reason}")
  return "\n".join(lines) + "\n"
