"""Which whole support sets beat random prompts? Hand-built sets of 400 images (3 draws, each
scored by 6 fine-tunes on the test split) against random sets made with the same generation keys:
the first class balanced (40 per class) or allotted by the baseline's per-class validation error,
c2 = c3 = c1 ("pure"), one domain for all 40 prompts (bal_pure_dom0..3), each domain once per
class (bal_pure_alldom), or one domain with mixed c2, c3 (bal_mixed_dom0). Prints the validation
and test accuracy of each.

  PYTHONPATH=studies/issue5 python studies/issue5/set_composition.py 0     # the seed
"""
import jax, jax.numpy as jnp, numpy as np
from common import arg, setup
from jaxsets.loop.state import generate_images
from jaxsets.classifier import SupportBatch, finetune, evaluate
from jaxsets.data.device import put_on_devices
seed = int(arg(1, "0"))
s, key, baseline = setup(seed)
test = put_on_devices(s.splits.test, s.mesh)
T, n, D = 40, 10, 4
@jax.jit
def score_all(sup, keys):
  def one(k):
    clf, _ = finetune(baseline, s.real, sup, k, cfg=s.clf_cfg)
    mv = evaluate(clf, s.val.images, s.val.labels, s.val.mask, chunk=s.clf_cfg.eval_chunk)
    mt = evaluate(clf, test.images, test.labels, test.mask, chunk=s.clf_cfg.eval_chunk)
    return mv.accuracy, mt.accuracy, mv.per_class_accuracy
  return jax.lax.map(one, keys)
keys = jax.random.split(jax.random.fold_in(key, 1000), 6)
def support_of(actions, gkey):
  actions = jnp.asarray(actions, jnp.int32)
  images = generate_images(s, actions, gkey)
  return SupportBatch(images.reshape((-1,) + images.shape[2:]), jnp.repeat(actions[:, 1], 10), jnp.ones((T * 10,), bool))
empty = SupportBatch(jnp.zeros((T*10,)+s.real.images.shape[1:], jnp.uint8), jnp.zeros((T*10,), jnp.int32), jnp.zeros((T*10,), bool))
bv, bt, bpc = score_all(empty, keys)
err = 1 - np.asarray(bpc).mean(0)
print("baseline val", float(bv.mean()), "test", float(bt.mean()), "per-class err", np.round(err, 2), flush=True)
w = err + 0.02; w = w / w.sum()
alloc = np.floor(w * T).astype(int)
while alloc.sum() < T: alloc[np.argmax(w * T - alloc)] += 1
errw_c1 = np.repeat(np.arange(n), alloc)
rng = np.random.default_rng(seed)
res = {}
for trial in range(3):
  gk = jax.random.fold_in(key, 77 + trial)
  rand = np.stack([rng.integers(0, D, T), rng.integers(0, n, T), rng.integers(0, n, T), rng.integers(0, n, T)], 1)
  sets = {"random": rand}
  b = rand.copy(); b[:, 1] = np.repeat(np.arange(n), T // n); sets["balanced"] = b
  p = b.copy(); p[:, 2] = p[:, 1]; p[:, 3] = p[:, 1]; sets["balanced_pure"] = p
  for d in range(D):
    q = p.copy(); q[:, 0] = d; sets[f"bal_pure_dom{d}"] = q
  q = p.copy(); q[:, 0] = np.tile(np.arange(D), T // D); sets["bal_pure_alldom"] = q
  m = b.copy(); m[:, 0] = 0; sets["bal_mixed_dom0"] = m
  e = rand.copy(); e[:, 1] = errw_c1; sets["errw"] = e
  ep = e.copy(); ep[:, 2] = ep[:, 1]; ep[:, 3] = ep[:, 1]; sets["errw_pure"] = ep
  rp = rand.copy(); rp[:, 2] = rp[:, 1]; rp[:, 3] = rp[:, 1]; sets["random_pure"] = rp
  for name, a in sets.items():
    v, t, _ = score_all(support_of(a, gk), keys)
    res.setdefault(name, []).append((float(v.mean()), float(t.mean())))
  print("trial", trial, "done", flush=True)
r0 = np.array(res["random"])
for name, v in res.items():
  v = np.array(v); d = v[:, 1] - r0[:, 1]
  print(f"seed {seed} {name:16s} val {v[:,0].mean():.4f} test {v[:,1].mean():.4f}  test-random {d.mean()*100:+.2f} pts (trials {np.round(d*100,1)})")
