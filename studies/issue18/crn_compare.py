"""Two `jaxsets compare` workdirs of the same seeds, design A and design B, judged on validation.

  python studies/issue18/crn_compare.py WORKDIR_A WORKDIR_B

Per seed: the roll-out's return (the sum of its 40 rewards, which telescopes to the change of the
validation objective, accuracy minus w_ent times entropy, from the roll-out's start), read from
the last checkpoint's history; then B − A as mean ± 95% CI (t) over seeds. The rl arm's test
accuracy and B's gains over its random and balanced arms are printed for information only.
"""
import json, os, sys, glob
import numpy as np
from scipy import stats
def rollout_return(seed_dir):
  steps = [p for p in glob.glob(os.path.join(seed_dir, "checkpoints", "*"))
           if os.path.basename(p).isdigit()]
  last = max(steps, key=lambda p: int(os.path.basename(p)))
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
