"""`benchmarks/run.py --quick --tiny`: every benchmark runs from an empty scratch folder at tiny
size, peers included where installed (issue 16: `benchmarks/run.py --quick` once stopped measuring the RL step from scratch because a
folder-building helper ended in a NameError that a run with the folder already built never hit).
"""
import json
import os
import sys

import pytest

from scratch_runs import HAVE_PEERS, ROOT, missing_peer_only, run_script

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


@pytest.mark.timeout(1800)
def test_run_py_quick_from_an_empty_scratch_folder(tmp_path):
  out = tmp_path / "results.json"
  proc, tail = run_script(["benchmarks/run.py", "--quick", "--tiny", "--random-weights",
                           "--scratch", str(tmp_path / "scratch"), "--out", str(out)], timeout=1750)
  import report
  import run as bench_run
  result = json.loads(out.read_text())
  report.check_schema(result)
  for name, text in result["failed"].items():
    assert not HAVE_PEERS and missing_peer_only(text), (name, text[-2000:])
  measured = {e["name"].split("/")[0] for e in result["benchmarks"]}
  if HAVE_PEERS:
    assert measured == set(bench_run.BENCHMARKS), tail
    assert proc.returncode == 0, tail
  # With or without the peers, every comparison's jaxsets side ran.
  jaxsets_sides = {e["name"].split("/")[0] for e in result["benchmarks"]
                   if e["jaxsets"].get("steady_s") or e["jaxsets"].get("per_step_load_s") == 0.0}
  assert jaxsets_sides >= set(bench_run.BENCHMARKS) - {"utilisation"}, (jaxsets_sides, tail)
