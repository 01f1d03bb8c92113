"""Paired: the roll-out's return on validation (sum of its 40 rewards: Δ val accuracy − w_ent Δ entropy
from the same start) per seed, design B (CRN) minus design A; test accuracy for information only."""
import json, os, sys, glob
import numpy as np
from scipy import stats
def rollout_return(seed_dir):
  last = max(glob.glob(os.path.join(seed_dir, "checkpoints", "*")), key=lambda p: int(os.path.basename(p)) if os.path.basename(p).isdigit() else -1)
  m = json.load(open(os.path.join(last, "meta", "metadata")))["meta"]
  return float(np.sum(m["rollout_reward"])), float(np.sum(m["episode_reward"]))
def ci(x):
  x = np.asarray(x); h = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)); return x.mean(), h
a, b = sys.argv[1], sys.argv[2]
seeds = json.load(open(os.path.join(b, "compare.json")))["seeds"]
rows = []
for s in seeds:
  ra, ea = rollout_return(os.path.join(a, f"seed_{s}")); rb, eb = rollout_return(os.path.join(b, f"seed_{s}"))
  ta = json.load(open(os.path.join(a, f"seed_{s}", "results.json")))["test_accuracy"]
  tb = json.load(open(os.path.join(b, f"seed_{s}", "results.json")))["test_accuracy"]
  rows.append((s, ra, rb, ta["rl"], tb["rl"], tb["balanced"], tb["random"]))
  print(f"seed {s}: roll-out return on validation A {100*ra:+.2f} B {100*rb:+.2f} (points); test rl A {ta['rl']:.4f} B {tb['rl']:.4f}")
r = np.array(rows)
m, h = ci(100 * (r[:, 2] - r[:, 1])); print(f"validation: B − A roll-out return {m:+.2f} ± {h:.2f} points, B above on {int(np.sum(r[:,2] > r[:,1]))} of {len(r)}")
m, h = ci(100 * (r[:, 4] - r[:, 3])); print(f"test (information only): rl B − A {m:+.2f} ± {h:.2f} points")
m, h = ci(100 * (r[:, 4] - r[:, 6])); print(f"test (information only): B rl − random {m:+.2f} ± {h:.2f}")
m, h = ci(100 * (r[:, 4] - r[:, 5])); print(f"test (information only): B rl − balanced {m:+.2f} ± {h:.2f}")
