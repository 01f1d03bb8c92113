"""The results JSON as a markdown table (what README/RESULTS.md show), and its schema check."""
from __future__ import annotations


def _time(seconds) -> str:
  if seconds is None:
    return "-"
  return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _side(d: dict) -> str:
  """The one figure that matters for a row, plus compile time where there is one."""
  if "skipped" in d:
    return d["skipped"]
  if "flop_per_s" in d:
    return f"{d['flop_per_s'] / 1e9:.1f} GFLOP/s ({100 * d['fraction_of_peak']:.1f}% of peak)"
  if "per_step_load_s" in d:
    return f"{_time(d['per_step_load_s'])} per step (loaded once per run)"
  if d.get("fits") is False:
    return f"does not fit ({d['estimated_bytes'] / 2**30:,.1f} GiB est.)"
  text = _time(d.get("steady_s"))
  if "images_per_s" in d:
    text += f" ({d['images_per_s']:.0f} img/s)"
  if "param_bytes" in d:
    text += f", {d['params']:,} params"
  elif "params" in d:
    text += f", {d['params']:,} params"
  if "with_tensor_copy_s" in d:
    text += f", {_time(d['with_tensor_copy_s'])} with one copy of every tensor"
  if d.get("compile_s", 0) > 0.5:
    text += f"; compile {d['compile_s']:.1f} s"
  return text


def markdown_table(result: dict) -> str:
  m = result["machine"]
  lines = [
      f"Measured {m['date']} on {m['cpu']} ({m['cpu_count']} cores, {m['backend']}), "
      f"jax {m['jax']}, torch {m.get('torch')}; load average at start "
      f"{', '.join(f'{x:.1f}' for x in m['load_average_1_5_15min'])}"
      + (f", at end {', '.join(f'{x:.1f}' for x in m['load_average_at_end'])}"
         if "load_average_at_end" in m else "") + " (the cores are shared with other work).",
      "",
      f"Command: `{result['command']}`",
      "",
      "| benchmark | jaxsets | peer | peer time | speedup |",
      "|---|---|---|---|---|",
  ]
  for e in result["benchmarks"]:
    s = e["speedup"]
    lines.append(f"| {e['name']} | {_side(e['jaxsets'])} | {e['peer']['name']} | "
                 f"{_side(e['peer'])} | {'n/a' if s is None else f'**{s:.2f}x**'} |")
  for name in result.get("failed", {}):
    lines.append(f"| {name} | failed (see the JSON) | | | |")
  return "\n".join(lines) + "\n"


def check_schema(result: dict) -> None:
  """Raises AssertionError unless `result` has the documented shape."""
  assert isinstance(result["machine"], dict)
  assert isinstance(result["benchmarks"], list)
  for e in result["benchmarks"]:
    assert isinstance(e["name"], str) and e["name"], e
    assert isinstance(e["jaxsets"], dict), e["name"]
    assert isinstance(e["peer"], dict) and isinstance(e["peer"]["name"], str), e["name"]
    s = e["speedup"]
    assert s is None or (isinstance(s, float) and s > 0), (e["name"], s)
    if s is not None and "steady_s" in e["jaxsets"] and "steady_s" in e["peer"]:
      expected = e["peer"]["steady_s"] / e["jaxsets"]["steady_s"]
      assert abs(s - expected) <= 1e-9 * max(1.0, expected), (e["name"], s, expected)
