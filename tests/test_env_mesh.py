"""The environments on 4 fake devices (conftest.py): split over the mesh by environment where E is
a multiple of the devices, by minibatch otherwise; their numbers against 1 device; no gather of
the environments in the compiled step; their placement through a checkpoint."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P
from sklearn.datasets import load_digits

import jaxsets.generator
from jaxsets import config_loading, sharding
from jaxsets.agent import ObservationConfig, RewardConfig
from jaxsets.checkpoint.manager import Checkpointer
from jaxsets.classifier import ClassifierConfig, init_state
from jaxsets.data.device import put_on_devices, whole_on_every_device
from jaxsets.data.types import ImageSet
from jaxsets.errors import UserError
from jaxsets.env import environment as env_ops
from jaxsets.loop.setup import make_setup

TINY = ClassifierConfig(model="small_cnn", batch_size=16, finetune_steps=2, label_smoothing=0.1)
SPEC = env_ops.EnvSpec(images_per_step=2, budget=4, num_classes=10,
                       observation=ObservationConfig(), reward=RewardConfig(),
                       finetune_from="baseline")


@pytest.fixture(scope="module")
def data():
  digits = load_digits()
  images = (digits.images[..., None] * 16).clip(0, 255).astype(np.uint8)        # [N, 8, 8, 1]
  labels = digits.target.astype(np.int32)
  return ImageSet(images[:50], labels[:50]), ImageSet(images[50:150], labels[50:150])


def placed(data, devices, num_envs):
  """(mesh, real, val, baseline) on `devices`, placed as make_setup places them for E."""
  mesh = sharding.make_mesh(devices)
  place = whole_on_every_device if env_ops.envs_split(num_envs, mesh) else put_on_devices
  baseline = init_state(jax.random.key(0), TINY, (8, 8, 1), 10, mesh)
  return mesh, place(data[0], mesh), place(data[1], mesh), baseline


def compiled_step(env, mesh, real, val, baseline):
  """The step's (env, reward, finite, metrics) and its compiled program's text (compiled once)."""
  e = env.finetune_key.shape[0]
  rng = np.random.default_rng(0)
  actions = jnp.asarray(rng.integers(0, 3, (e, 4)), jnp.int32)
  images = jnp.asarray(rng.integers(0, 256, (e, 2, 8, 8, 1)), jnp.uint8)    # [E, ips, H, W, C]
  args = (env, actions, images, baseline, real, val, TINY)
  compiled = env_ops.step.lower(*args, spec=SPEC, mesh=mesh).compile()
  return compiled(*args), compiled.as_text()


def moved(env, mesh):
  """`env` (host values) placed on `mesh` as env_shardings says."""
  return jax.tree.map(lambda x, where: sharding.put(np.asarray(x) if not is_key(x) else x, where),
                      env, env_ops.env_shardings(env, mesh))


def is_key(x) -> bool:
  return jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def host(tree):
  return [np.asarray(jax.random.key_data(x) if is_key(x) else x) for x in jax.tree.leaves(tree)]


def gathered_shapes(hlo: str) -> set:
  """Result shapes of the all-gathers in compiled HLO text, e.g. {(4,), (4, 10)}."""
  found = re.findall(r"= \w+\[([\d,]*)\][^=]*? all-gather\(", hlo)
  return {tuple(int(d) for d in dims.split(",") if d) for dims in found}


@pytest.fixture(scope="module")
def four_devices(data):
  """(env after reset, the step's results, its HLO) of 4 environments on 4 devices."""
  assert jax.device_count() == 4
  mesh, real, val, baseline = placed(data, jax.devices(), 4)
  key = sharding.replicate(jax.random.key(1), mesh)
  env = env_ops.reset(baseline, real, val, key, TINY, spec=SPEC, num_envs=4, mesh=mesh)
  return (env, *compiled_step(env, mesh, real, val, baseline))


@pytest.fixture(scope="module")
def one_device(data, four_devices):
  """The same step from the same environments on 1 device."""
  mesh, real, val, baseline = placed(data, jax.devices()[:1], 4)
  return (None, *compiled_step(moved(four_devices[0], mesh), mesh, real, val, baseline))


def test_environments_lie_split_over_the_devices_and_stay_so(four_devices):
  env, (stepped, reward, finite, metrics), hlo = four_devices
  for state in (env, stepped):
    for leaf in jax.tree.leaves(state._replace(t=None)):
      assert leaf.sharding.spec == P(sharding.DATA_AXIS), leaf.sharding
      shard = leaf.addressable_shards[0].data.shape
      assert shard[0] == 1 and shard[1:] == leaf.shape[1:]   # one whole environment per device
  images = stepped.support.images
  assert images.addressable_shards[0].data.nbytes * 4 == images.nbytes   # a quarter per device
  assert bool(np.all(finite))
  # The only gathers are of the step's small per-environment results (reward [E], metrics
  # [E], [E, n], [E, n, n]), returned whole for the host; no support set, classifier or key.
  small = {tuple(x.shape) for x in jax.tree.leaves((reward, finite, metrics))}
  assert gathered_shapes(hlo) <= small
  assert stepped.support.images.shape not in gathered_shapes(hlo)
  assert "all-to-all" not in hlo  # no minibatch split over the devices either


def test_split_environments_equal_one_device_to_float_rounding(one_device, four_devices):
  # Not bit for bit: XLA batches the vmapped convolutions and matmuls of E = 4 environments on
  # one device, of E / D = 1 on each of 4 devices, and rounds differently (on 1 device too, a
  # vmap over 2 environments gives other bits than over 4; even accuracy = correct / rows came
  # out 1 ulp apart). The counts agree, the floats to rounding; a parameter may move by up to ~the learning rate (1e-3) per AdamW step where its
  # gradient is ~0 and its rounding differs, but almost all agree to 1e-6.
  (one, _), (four, _) = one_device[1:], four_devices[1:]
  (env1, r1, finite1, m1), (env4, r4, finite4, m4) = one, four
  np.testing.assert_array_equal(m1.confusion, m4.confusion)
  np.testing.assert_allclose(m1.accuracy, m4.accuracy, rtol=1e-6)  # counts / rows, 1 ulp apart
  np.testing.assert_allclose(m1.mean_entropy, m4.mean_entropy, rtol=1e-5)
  np.testing.assert_allclose(r1, r4, atol=1e-6)
  assert bool(np.all(finite1)) and bool(np.all(finite4))
  np.testing.assert_array_equal(env1.support.images, env4.support.images)
  for a, b in zip(host(env1.clf.params), host(env4.clf.params)):
    np.testing.assert_allclose(a, b, atol=2 * TINY.finetune_learning_rate * TINY.finetune_steps)
    assert np.mean(np.abs(a - b) <= 1e-6) > 0.999


def test_environments_that_do_not_divide_split_each_minibatch(data, four_devices):
  mesh, real, val, baseline = placed(data, jax.devices(), 2)
  two = jax.tree.map(lambda x: x[:2], four_devices[0]._replace(t=None))   # 2 of the 4
  env = moved(two._replace(t=jnp.int32(0)), mesh)
  (stepped, reward, finite, _), hlo = compiled_step(env, mesh, real, val, baseline)
  for leaf in jax.tree.leaves((env, stepped)):
    assert leaf.sharding.is_fully_replicated
  assert "all-to-all" in hlo  # gradients added in device order (sharding.fixed_order_sum)
  assert bool(np.all(finite)) and np.all(np.isfinite(np.asarray(reward)))


def test_split_environments_restore_where_they_lie(tmp_path, four_devices):
  env = four_devices[1][0]
  mesh = sharding.make_mesh()
  with Checkpointer(str(tmp_path), {"test": 1}) as ckpt:
    ckpt.save(1, {"env": env})
    ckpt.wait()
  places = env_ops.env_shardings(env, mesh)
  template = {"env": jax.tree.map(lambda x, where: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                                          sharding=where),
                                  jax.eval_shape(lambda: env), places)}
  with Checkpointer(str(tmp_path), {"test": 1}) as ckpt:
    _, restored, _ = ckpt.restore_latest(template)
  for got, want, where in zip(jax.tree.leaves(restored["env"]), jax.tree.leaves(env),
                              jax.tree.leaves(places)):
    assert got.sharding == where
    np.testing.assert_array_equal(host(got)[0], host(want)[0])
  assert restored["env"].finetune_key.sharding.spec == P(sharding.DATA_AXIS)


def test_a_minibatch_that_does_not_divide_over_the_devices_is_refused_before_the_generator(
    tmp_path, monkeypatch):
  def never(*_, **__):
    raise AssertionError("the generator was loaded before the batch was checked")
  monkeypatch.setattr(jaxsets.generator, "ensure_embedded", never)
  monkeypatch.setattr(jaxsets.generator, "load_generator", never)
  config = config_loading.load_config_file("configs/digits.py:smoke")
  config_loading.apply_overrides(config, ["--config.classifier.batch_size=30",
                                          f"--config.data.data_dir={tmp_path}"])
  with pytest.raises(UserError, match="classifier.batch_size=30 must be a multiple of the 4 "
                                      "devices: use 32"):
    make_setup(config, quiet=True)
