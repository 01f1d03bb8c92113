"""How much of one step's reward is fine-tune noise: r = acc(S + a; k) - acc(S; k) on the validation
split for a fixed set S (k steps of random prompts), fixed new images a, and 12 fine-tune keys k.

  python studies/issue5/reward_noise.py current   # minibatches drawn as jaxsets draws them
  python studies/issue5/reward_noise.py stable    # support rows chosen by a min-hash that is
                                                  # stable as the set grows (common random numbers)
"""
import jax, jax.numpy as jnp, numpy as np
from common import arg, setup
from jaxsets.loop.state import generate_images
from jaxsets.classifier import SupportBatch, finetune, evaluate
import jaxsets.data.device as dev
import jaxsets.classifier.train as tr

mode = arg(1, "current")
if mode == "stable":
  def sample_union(key, a, b, batch):
    k1, k2, k3 = jax.random.split(key, 3)
    n_a = jnp.sum(a.mask, dtype=jnp.int32); n_b = jnp.sum(b.mask, dtype=jnp.int32)
    n = jnp.maximum(n_a + n_b, 1)
    from_a = jax.random.uniform(k1, (batch,)) * n < n_a
    ia = dev.valid_first(a.mask)[jnp.minimum((jax.random.uniform(k2, (batch,)) * n_a).astype(jnp.int32), jnp.maximum(n_a - 1, 0))]
    prio = jnp.where(b.mask[None, :], jax.random.uniform(k3, (batch, b.mask.shape[0])), -1.0)
    ib = jnp.argmax(prio, axis=1)
    images = jnp.where(from_a[:, None, None, None], a.images[ia], b.images[ib])
    labels = jnp.where(from_a, a.labels[ia], b.labels[ib])
    return images, labels
  tr.sample_union = sample_union
s, key, baseline = setup(0)
rng = np.random.default_rng(0)
T = 40
acts = np.stack([rng.integers(0, 4, T), rng.integers(0, 10, T), rng.integers(0, 10, T), rng.integers(0, 10, T)], 1)
images = generate_images(s, jnp.asarray(acts, jnp.int32), jax.random.key(5))   # [T, 10, ...]
flat = images.reshape((-1,) + images.shape[2:]); labels = jnp.repeat(jnp.asarray(acts[:, 1], jnp.int32), 10)
def sup(k):  # first k steps
  mask = jnp.arange(T * 10) < k * 10
  return SupportBatch(flat, labels, mask)
@jax.jit
def val_acc(sb, fk):
  clf, _ = finetune(baseline, s.real, sb, fk, cfg=s.clf_cfg)
  mv = evaluate(clf, s.val.images, s.val.labels, s.val.mask, chunk=s.clf_cfg.eval_chunk)
  return mv.accuracy, mv.mean_entropy
K = 12
for k in (5, 20, 35):
  rs, accs = [], []
  for j in range(K):
    fk = jax.random.key(100 + j)
    a0, _ = val_acc(sup(k), fk); a1, _ = val_acc(sup(k + 1), fk)
    rs.append(float(a1 - a0)); accs.append(float(a1))
  rs = np.array(rs)
  print(f"{mode} k={k}: r mean {rs.mean():+.4f} sd {rs.std():.4f}; acc sd {np.std(accs):.4f}", flush=True)
