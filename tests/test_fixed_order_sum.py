"""Float sums across devices in a fixed order (jaxsets.sharding), on the session's 4 fake devices:
the sum is the left fold in device order, bit for bit; and the sharded classifier stages compile
to programs in which no float crosses devices by an all-reduce (whose adding order is the
collectives library's choice; tests/test_multihost.py checks the layouts end to end)."""
import re
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from jaxsets import sharding
from jaxsets.classifier import ClassifierConfig, SupportBatch, finetune, init_state
from jaxsets.classifier.evaluate import _evaluate
from jaxsets.data import put_on_devices
from jaxsets.data.types import ImageSet


def float_all_reduces(compiled_text: str) -> list[str]:
  """The all-reduce instructions of an optimised HLO module whose result holds a float."""
  ops = re.findall(r"=\s*(.*?)\s+all-reduce(?:-start)?\(", compiled_text)
  return [op for op in ops if re.search(r"\b(f16|bf16|f32|f64)\[", op)]


def per_device_sum(mesh, x):
  """x [D, ...] with row d on device d -> fixed_order_sum of the rows, as seen on each device."""
  f = jax.shard_map(lambda b: sharding.fixed_order_sum(b[0])[None], mesh=mesh,
                    in_specs=P(sharding.DATA_AXIS), out_specs=P(sharding.DATA_AXIS),
                    check_vma=False)
  return np.asarray(jax.jit(f)(sharding.shard_batch(x, mesh)))


def test_fixed_order_sum_is_the_left_fold_in_device_order():
  mesh = sharding.make_mesh()
  rng = np.random.default_rng(0)
  # Magnitudes from 1e-3 to 1e3: most columns' sums change with the order of adding.
  x = (rng.normal(size=(4, 1001)) * 10.0 ** rng.integers(-3, 4, (4, 1001))).astype(np.float32)
  fold = ((x[0] + x[1]) + x[2]) + x[3]
  other = ((x[3] + x[2]) + x[1]) + x[0]
  assert (fold != other).sum() > 50                       # so the check below has teeth
  got = per_device_sum(mesh, x)                           # [4, 1001]: every device's result
  for d in range(4):
    np.testing.assert_array_equal(got[d], fold)


def test_fixed_order_sum_of_a_tree_with_odd_sizes():
  mesh = sharding.make_mesh()
  tree = {"a": jnp.arange(4 * 3, dtype=jnp.float32).reshape(4, 3),
          "b": jnp.ones((4, 2, 5), jnp.float32), "c": jnp.full((4,), 0.5, jnp.float32)}
  f = jax.shard_map(lambda t: jax.tree.map(lambda x: x[None], sharding.fixed_order_sum(
      jax.tree.map(lambda x: x[0], t))), mesh=mesh, in_specs=P(sharding.DATA_AXIS),
      out_specs=P(sharding.DATA_AXIS), check_vma=False)
  got = jax.jit(f)(sharding.shard_batch(tree, mesh))
  np.testing.assert_array_equal(got["a"][2], [18.0, 22.0, 26.0])   # column sums of 0..11
  np.testing.assert_array_equal(got["b"][0], np.full((2, 5), 4.0))
  np.testing.assert_array_equal(got["c"], [2.0] * 4)


def test_mesh_of():
  mesh = sharding.make_mesh()
  rows = sharding.shard_batch(np.zeros((8, 3), np.float32), mesh)
  assert dict(sharding.mesh_of(rows).shape) == {sharding.DATA_AXIS: 4}
  traced = []
  jax.jit(lambda x: traced.append(sharding.mesh_of(x)) or x)(rows)   # inside jit: the abstract mesh
  assert dict(traced[0].shape) == {sharding.DATA_AXIS: 4}
  assert sharding.mesh_of(np.zeros((8, 3))) is None                             # numpy
  assert sharding.mesh_of(jnp.zeros((8, 3))) is None                            # one device
  assert sharding.mesh_of(sharding.shard_batch(np.zeros(8), sharding.make_mesh(jax.devices()[:1]))) is None
  assert sharding.mesh_of(sharding.replicate(np.zeros(6), mesh)) is None        # 6 rows, 4 devices


def test_gather_whole_leaves_no_float_all_reduce():
  mesh = sharding.make_mesh()
  x = sharding.shard_batch(np.arange(16, dtype=np.float32), mesh)
  plain = jax.jit(lambda v: jnp.sum(v)).lower(x).compile().as_text()
  gathered = jax.jit(lambda v: jnp.sum(sharding.gather_whole(v))).lower(x).compile().as_text()
  assert float_all_reduces(plain) and not float_all_reduces(gathered)
  assert float(jax.jit(lambda v: jnp.sum(sharding.gather_whole(v)))(x)) == 120.0


def test_sharded_classifier_stages_have_no_float_all_reduce():
  mesh = sharding.make_mesh()
  cfg = ClassifierConfig(batch_size=16, finetune_steps=2)
  rng = np.random.default_rng(0)
  data = ImageSet(rng.integers(0, 256, (24, 8, 8, 1)).astype(np.uint8),
                  rng.integers(0, 3, 24).astype(np.int32))
  real = put_on_devices(data, mesh)
  state = init_state(jax.random.key(0), cfg, (8, 8, 1), 3, mesh)
  support = SupportBatch(jnp.zeros((8, 8, 8, 1), jnp.uint8), jnp.zeros(8, jnp.int32),
                         jnp.zeros(8, bool))
  fit = finetune.lower(state, real, support, jax.random.key(1), cfg=cfg, mesh=mesh)
  assert not float_all_reduces(fit.compile().as_text())
  for chunk in (1024, 4):  # one pass, and per-device chunks
    score = _evaluate.lower(state, real.images, real.labels, real.mask, chunk)
    assert not float_all_reduces(score.compile().as_text())
