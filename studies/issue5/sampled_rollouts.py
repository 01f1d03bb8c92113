"""The trained agent of a finished run, rolled out by sampling (3 draws of 40 prompts) instead of
greedily, scored like the run's rl arm (the same eval keys on the test split).

  python studies/issue5/sampled_rollouts.py runs/compare5/seed_0
"""
import sys, json
import jax, numpy as np
from common import restore_run
from jaxsets.loop import state as st, env as env_ops
from jaxsets.loop.state import generate_images
from jaxsets.agent import act
from jaxsets.classifier import SupportBatch, finetune, evaluate
from jaxsets.data.device import put_on_devices
wd = sys.argv[1]
s, key, state = restore_run(wd)
config = s.config
test = put_on_devices(s.splits.test, s.mesh)
def test_acc(sup):
  accs = []
  for r in range(int(config.loop.eval_repeats)):
    clf, _ = finetune(state.baseline, s.real, sup, st.stream(state.key, st.EVAL, r), cfg=s.clf_cfg)
    accs.append(float(evaluate(clf, test.images, test.labels, test.mask, chunk=s.clf_cfg.eval_chunk).accuracy))
  return float(np.mean(accs))
res = json.load(open(f"{wd}/results.json"))["test_accuracy"]
out = []
for trial in range(3):
  env = st.reset_envs(s, state.baseline, st.stream(key, st.ROLLOUT), 1)
  acts = []
  for t in range(s.steps_per_episode):
    obs = env_ops.observe(env, spec=s.spec)
    a, _, _ = act(state.agent.params, obs, jax.random.fold_in(jax.random.key(999 + trial), t), network=state.agent.network)
    images = generate_images(s, a, jax.random.fold_in(jax.random.key(555 + trial), t))
    env, r, fin, _ = env_ops.step(env, a, images, state.baseline, s.real, s.val, s.clf_cfg, spec=s.spec)
    acts.append(np.asarray(a[0]))
  sup = SupportBatch(env.support.images[0], env.support.labels[0], env.support.mask[0])
  acc = test_acc(sup); out.append(acc)
  acts = np.array(acts)
  print(f"trial {trial}: sample-rollout test {acc:.4f}; domains {np.bincount(acts[:,0], minlength=4)}, c1 {np.bincount(acts[:,1], minlength=10)}, pure {(acts[:,1]==acts[:,2]).mean():.2f}", flush=True)
print(f"RESULT {wd}: baseline {res['baseline']:.4f} random {res['random']:.4f} greedy {res['rl']:.4f} sample {np.mean(out):.4f}")
