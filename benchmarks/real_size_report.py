"""benchmarks/real_size.py's results as text: a short summary of one run, and the README's table
of several."""
from __future__ import annotations


def table(out: dict) -> str:
  r, j, t = out["read"], out["jaxsets"], out["torch"]
  rows = [f"{out['arch']}{' (tiny)' if out['tiny'] else ''} {out['dtype']}"]
  if "error" in j:
    return rows[0] + f": jaxsets failed: {j['error']}"
  weights = (f" | of which the weights {j['weights_s']:.2f} s "
             f"({out.get('weights_over_read', float('nan')):.1f}x)" if "weights_s" in j else "")
  rows.append(f"  read {r.get('read_s', float('nan')):.2f} s | load {j['load_s']:.2f} s "
              f"({out.get('load_over_read', float('nan')):.1f}x){weights} | peak after load "
              f"{j['peak_rss_after_load_gb']:.2f} GB, params {j['param_bytes'] / 2**30:.2f} GB "
              f"({out.get('load_peak_over_params', float('nan')):.2f}x) | peak overall {j['peak_rss_gb']:.2f} GB")
  sample = (f"sample {j['sample_s_first_call']:.1f} s (first call, {out['steps']} steps), image "
            f"{j['image_shape']} std {j['image_std']:.1f}" if out["steps"] else "no sample (--steps 0)")
  rows.append(f"  {sample}; prediction {j['prediction_type_in_folder']}"
              f" -> sampler {j['prediction_type_in_sampler']}")
  if "skipped" in t or "error" in t:
    rows.append(f"  vs PyTorch: {t.get('skipped') or t.get('error')}")
  else:
    rows.append("  vs PyTorch float32: " + ", ".join(
        f"{k} max|diff| {t[k]['max_abs_diff']:.2g} (std {t[k]['torch_output_std']:.2g})"
        for k in ("text", "unet", "vae")))
  return "\n".join(rows)


def markdown(outs: list[dict]) -> str:
  """One row per JSON: the README's table."""
  head = ("| arch | dtype | read s | load s | load/read | weights s | weights/read "
          "| peak after load GiB | params GiB | peak/params | peak overall GiB | sample s (2 steps) "
          "| prediction | text / UNet / VAE max abs diff (std) | load avg |\n|" + "---|" * 15)
  rows = [head]
  for o in outs:
    r, j, t = o["read"], o["jaxsets"], o["torch"]
    if "error" in j:
      rows.append(f"| {o['arch']} | {o['dtype']} | {r.get('read_s', 0):.1f} | failed: {j['error']} "
                  f"{j.get('progress', '')} |" + " |" * 11)
      continue
    diffs = " / ".join(f"{t[k]['max_abs_diff']:.1e} ({t[k]['torch_output_std']:.2f})"
                       for k in ("text", "unet", "vae")) if "text" in t else t.get("skipped", "")
    rows.append(
        f"| {o['arch']} | {o['dtype']} | {r['read_s']:.1f} | {j['load_s']:.1f} | {o['load_over_read']:.1f}x "
        + (f"| {j['weights_s']:.1f} | {o['weights_over_read']:.1f}x " if "weights_s" in j else "| - | - ")
        + f"| {j['peak_rss_after_load_gb']:.2f} | {j['param_bytes'] / 2**30:.2f} "
        f"| {o['load_peak_over_params']:.2f}x | {j['peak_rss_gb']:.2f} "
        f"| {j['sample_s_first_call'] or 0:.0f}{'' if o['steps'] else ' (none)'} "
        f"| {j['prediction_type_in_sampler']} | {diffs} "
        f"| {o['load_average_at_start'][0]:.0f}-{o['load_average_at_end'][0]:.0f} |")
  return "\n".join(rows)
