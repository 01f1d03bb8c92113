"""jaxsets side by side with the implementations users would pick instead, in one process.

  pip install -e ".[bench]"          # torch 2.13.0 (CPU), stable-baselines3, gymnasium
  python benchmarks/run.py --out runs/bench/results.json [--quick] [--only generation,ppo_update]
                           [--markdown benchmarks/RESULTS.md] [--config.KEY=VALUE ...]
  python benchmarks/run.py --out /tmp/r.json --quick --tiny --random-weights  # every path (CI)

Comparisons (each a module here): generation, ppo_update, classifier_finetune, rl_step,
action_space_scaling, utilisation. Output JSON:
  {"machine": {...}, "command": str, "benchmarks": [{"name", "jaxsets": {...},
   "peer": {"name", ...}, "speedup"}, ...]}
with speedup = peer time / jaxsets time for the same work (> 1: jaxsets is faster; null where the
peer cannot run). Every steady figure is a median over repeats after warm-up, with
block_until_ready; compile (first-call) time is reported apart. The generator is the cached
embedded model ($JAXSETS_CACHE) when built, otherwise random weights of the same architecture.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
import traceback

import common  # noqa: F401  (puts the repo on sys.path, lets transformers see PyTorch)
from common import machine

# --tiny: the smoke config, shrunk further; every comparison's code path in minutes (CI runs it).
TINY_OVERRIDES = ["--config.generator.num_inference_steps=2", "--config.classifier.finetune_steps=2",
                  "--config.classifier.baseline_steps=2", "--config.agent.epochs=1"]
BENCHMARKS = {  # name -> module; order matters: utilisation reuses the first two's timings
    "generation": "bench_generation",
    "classifier_finetune": "bench_classifier",
    "ppo_update": "bench_ppo",
    "rl_step": "bench_rl_step",
    "action_space_scaling": "bench_action_space",
    "utilisation": "bench_utilisation",
}


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True, help="where to write the JSON results")
  parser.add_argument("--quick", action="store_true", help="fewer repeats: a few minutes")
  parser.add_argument("--tiny", action="store_true",
                      help="tiny sizes and one repeat, to prove every code path runs (CI)")
  parser.add_argument("--only", default="", help="comma-separated subset of " + ", ".join(BENCHMARKS))
  parser.add_argument("--config", default="", help="default configs/digits.py (--tiny: :smoke)")
  parser.add_argument("--scratch", default=os.path.join(tempfile.gettempdir(), "jaxsets_bench"),
                      help="converted weights are kept here between runs")
  parser.add_argument("--random-weights", action="store_true",
                      help="random generator weights even if the embedded generator is cached")
  parser.add_argument("--markdown", default="", help="also write the table as markdown here")
  args, overrides = parser.parse_known_args(argv)
  only = [b for b in args.only.split(",") if b] or list(BENCHMARKS)
  unknown = sorted(set(only) - set(BENCHMARKS))
  if unknown:
    parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")

  from context import Context
  from jaxsets import atomic, config_loading
  from report import markdown_table
  config = config_loading.load_config_file(
      args.config or ("configs/digits.py:smoke" if args.tiny else "configs/digits.py"))
  config_loading.apply_overrides(config, (TINY_OVERRIDES if args.tiny else []) + overrides)
  os.makedirs(args.scratch, exist_ok=True)
  ctx = Context(config, quick=args.quick, scratch=args.scratch, random_weights=args.random_weights,
                tiny=args.tiny)
  command = "python benchmarks/run.py " + " ".join(argv)
  result = {"machine": machine(), "command": command, "quick": args.quick, "benchmarks": [],
            "failed": {}}
  start = time.time()
  for name in [b for b in BENCHMARKS if b in only]:
    t0 = time.time()
    print(f"[bench] {name} ...", flush=True)
    try:
      entries = importlib.import_module(BENCHMARKS[name]).run(ctx)
    except Exception:  # one broken peer must not lose the others' figures
      result["failed"][name] = traceback.format_exc()
      print(result["failed"][name], file=sys.stderr, flush=True)
      continue
    result["benchmarks"].extend(entries)
    for e in entries:
      s = e["speedup"]
      print(f"  {e['name']:<48} speedup {'n/a' if s is None else f'{s:7.2f}x'}", flush=True)
    print(f"  ({time.time() - t0:.0f} s)", flush=True)
  result["wall_s"] = time.time() - start
  result["machine"]["load_average_at_end"] = list(os.getloadavg())
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  atomic.write_json(args.out, result)
  table = markdown_table(result)
  print(table)
  if args.markdown:
    with open(args.markdown, "w") as f:
      f.write(table)
  return 1 if result["failed"] else 0


if __name__ == "__main__":
  sys.exit(main())
