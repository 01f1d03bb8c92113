"""What the shared class head of a finished run learned: the first-class logits at an empty
support set, and as one class's support count (in balanced shares) or accuracy changes.

  python studies/issue5/count_slope.py runs/compare5/seed_0
"""
import sys
import jax.numpy as jnp, numpy as np
from common import restore_run
from jaxsets.env import environment as env_ops
wd = sys.argv[1]
s, key, state = restore_run(wd)
env = state.rollout
obs0 = env_ops.observe(env, spec=s.spec)
print("step", int(state.step), "obs", np.round(np.asarray(obs0[0]), 2))
net = state.agent.network
params = state.agent.params
n = 10
def c1_logits(obs):
  def f(mdl, o):
    h, pc = mdl.features(o), mdl.class_features(o)
    dl = mdl.domain_head(h); d = jnp.argmax(dl)
    a = jnp.zeros((4,), jnp.int32).at[0].set(d)
    return dl, mdl.slot_logits(h, pc, a, 0)
  return net.apply({"params": params}, obs, method=f)
base = np.asarray(obs0[0]).copy(); base[1 + n] = 0; base[2 + n:] = 0
dl, l = c1_logits(jnp.asarray(base))
print("domain logits", np.round(np.asarray(dl), 3))
print("per-class acc", np.round(base[1:1 + n], 2))
print("c1 logits at counts 0:", np.round(np.asarray(l), 3))
for c0 in (0.25, 1, 3, 10):
  o = base.copy(); o[2 + n] = c0; o[1 + n] = c0 / n
  print(f"class0 count {c0}:", np.round(np.asarray(c1_logits(jnp.asarray(o))[1]), 3))
for k in range(n):
  o = base.copy(); o[2 + n + k] = 1.0; o[1+n] = 0.1
  lk = np.asarray(c1_logits(jnp.asarray(o))[1]); print(f"class{k} count 1: its logit - mean others {lk[k] - np.delete(lk, k).mean():+.3f}")
for k in range(3):
  o = base.copy(); o[1 + k] -= 0.3
  lk = np.asarray(c1_logits(jnp.asarray(o))[1]); print(f"class{k} acc -0.3: its logit - mean others {lk[k] - np.delete(lk, k).mean():+.3f}")
