"""Can one step's reward tell prompt choices apart? 96 steps on seed 0: at 3 set sizes (5, 20, 35
steps of random prompts) x 2 generation keys, every domain x (c2 = c3 = c1 or random) x 2 first
classes; the reward is then regressed on domain, purity and set size.

  python studies/issue5/step_reward_signal.py mb    # jaxsets' fine-tune (minibatches, crops)
  python studies/issue5/step_reward_signal.py fb    # deterministic full-batch fine-tune, no crops
  python studies/issue5/step_reward_signal.py mb4   # jaxsets' fine-tune, mean of 4 keys
"""
import time
import jax, jax.numpy as jnp, numpy as np, optax
from common import arg, setup
from jaxsets.loop.state import generate_images
from jaxsets.classifier import SupportBatch, finetune, evaluate
from jaxsets.classifier.state import make_optimizer

recipe = arg(1, "mb")
s, key, baseline = setup(0)
c = s.clf_cfg
def full_batch_finetune(state, real, sb):
  imgs = jnp.concatenate([real.images, sb.images]); labs = jnp.concatenate([real.labels, sb.labels])
  w = jnp.concatenate([real.mask, sb.mask]).astype(jnp.float32)
  tx = make_optimizer(c.finetune_learning_rate, c.weight_decay, c.finetune_steps, c)
  def loss(p):
    from jaxsets.classifier.models import make_model
    from jaxsets.classifier.state import preprocess
    logits = make_model(state.model, state.num_classes).apply({"params": p}, preprocess(imgs))
    t = optax.smooth_labels(jax.nn.one_hot(labs, state.num_classes), c.label_smoothing)
    return jnp.sum(optax.softmax_cross_entropy(logits, t) * w) / jnp.sum(w)
  def stp(carry, _):
    p, o = carry
    g = jax.grad(loss)(p); u, o = tx.update(g, o, p); return (optax.apply_updates(p, u), o), None
  (p, _), _ = jax.lax.scan(stp, (state.params, tx.init(state.params)), None, length=c.finetune_steps)
  return state.replace(params=p)
@jax.jit
def val_acc(sb, fk):
  if recipe == "fb":
    clf = full_batch_finetune(baseline, s.real, sb)
    mv = evaluate(clf, s.val.images, s.val.labels, s.val.mask, chunk=c.eval_chunk)
    return mv.accuracy
  reps = 4 if recipe == "mb4" else 1
  def one(k):
    clf, _ = finetune(baseline, s.real, sb, k, cfg=c)
    return evaluate(clf, s.val.images, s.val.labels, s.val.mask, chunk=c.eval_chunk).accuracy
  return jnp.mean(jax.vmap(one)(jax.random.split(fk, reps)))
rng = np.random.default_rng(0)
T = 40
prefix = np.stack([rng.integers(0, 4, T), rng.integers(0, 10, T), rng.integers(0, 10, T), rng.integers(0, 10, T)], 1)
pimg = generate_images(s, jnp.asarray(prefix, jnp.int32), jax.random.key(5)).reshape((-1,) + s.real.images.shape[1:])
plab = jnp.repeat(jnp.asarray(prefix[:, 1], jnp.int32), 10)
rows = []
t0 = time.time()
for k in (5, 20, 35):
  for gk in range(2):
    fk = jax.random.key(1000 + 10 * k + gk)
    base_mask = jnp.arange(T * 10) < k * 10
    a0 = float(val_acc(SupportBatch(pimg, plab, base_mask), fk))
    for d in range(4):
      for pure in (0, 1):
        for ci in range(2):
          c1 = int(rng.integers(10)); c2, c3 = (c1, c1) if pure else (int(rng.integers(10)), int(rng.integers(10)))
          img = generate_images(s, jnp.asarray([[d, c1, c2, c3]], jnp.int32), jax.random.key(7000 + gk * 100 + k)).reshape((-1,) + s.real.images.shape[1:])
          im2 = pimg.at[k * 10:(k + 1) * 10].set(img); lb2 = plab.at[k * 10:(k + 1) * 10].set(c1)
          a1 = float(val_acc(SupportBatch(im2, lb2, jnp.arange(T * 10) < (k + 1) * 10), fk))
          rows.append((k, gk, d, pure, a1 - a0))
rows = np.array(rows)
r = rows[:, 4]
print(recipe, "time", round(time.time() - t0), "s; n", len(r), "r mean", r.mean().round(4), "sd", r.std().round(4))
for d in range(4):
  x = r[rows[:, 2] == d]; print(f"  domain {d}: {x.mean():+.4f} ± {x.std()/np.sqrt(len(x)):.4f}")
for p in (0, 1):
  x = r[rows[:, 3] == p]; print(f"  pure {p}: {x.mean():+.4f} ± {x.std()/np.sqrt(len(x)):.4f}")
X = np.column_stack([np.ones(len(r))] + [rows[:, 2] == d for d in (1, 2, 3)] + [rows[:, 3]] + [rows[:, 0] == k for k in (20, 35)]).astype(float)
beta, res, *_ = np.linalg.lstsq(X, r, rcond=None)
sig = np.sqrt(np.sum((r - X @ beta) ** 2) / (len(r) - X.shape[1]))
se = sig * np.sqrt(np.diag(np.linalg.inv(X.T @ X)))
print("  coef (draw, paint/sketch/... vs photo, pure, k20, k35):", np.round(beta, 4), "t:", np.round(beta / se, 1), "resid sd", round(sig, 4))
