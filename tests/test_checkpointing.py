"""Checkpoints: exact round trips, retention, fallback past corrupt steps, config guard
(PreemptionGuard: test_preemption.py; a killed save and async snapshots: test_checkpoint_writes.py)."""
import asyncio
import json
import logging
import os
import sys
import types
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxsets.checkpoint.manager import Checkpointer
from jaxsets.errors import UserError

CONFIG = {"seed": 0, "loop": {"budget": 400, "checkpoint_every": 1}, "data": {"name": "digits"}}


class Pair(NamedTuple):
  x: jax.Array
  n: np.ndarray


@struct.dataclass
class Agent:
  params: dict
  key: jax.Array
  step: jax.Array


def make_state(seed=0):
  """Every dtype the loop stores, in dicts, a NamedTuple and a flax struct dataclass."""
  rng = np.random.default_rng(seed)
  weird = np.array([np.nan, -0.0, np.inf, 1e-45, -3.5], np.float32)  # NaN, signed zero, denormal
  return {
      "agent": Agent(params={"w": jnp.asarray(rng.normal(size=(3, 4)).astype(np.float32)),
                             "odd": jnp.asarray(weird)},
                     key=jax.random.split(jax.random.key(seed), 3),
                     step=jnp.int32(7 + seed)),
      "support": Pair(x=jnp.asarray(rng.integers(0, 256, (2, 4, 4, 3)), jnp.uint8),
                      n=rng.integers(-5, 5, 6).astype(np.int32)),
      "mask": jnp.asarray(rng.random(5) > 0.5),
      "rbg": jax.random.key(seed, impl="rbg"),
      "count": np.int32(3 + seed),
  }


def assert_identical(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert type(x) is type(y)
    assert x.dtype == y.dtype and x.shape == y.shape
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      x, y = jax.random.key_data(x), jax.random.key_data(y)
    assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


def snapshot(folder):
  """{relative path: bytes} of every file, to prove that nothing changed."""
  out = {}
  for root, _, files in os.walk(folder):
    for f in files:
      p = os.path.join(root, f)
      with open(p, "rb") as fh:
        out[os.path.relpath(p, folder)] = fh.read()
  return out


def save_steps(workdir, steps, keep=5):
  with Checkpointer(str(workdir), CONFIG, keep=keep) as ckpt:
    for s in steps:
      ckpt.save(s, make_state(s), {"step": s, "history": [0.1 * s, float("nan")]})


def corrupt(workdir, step, how):
  """Damages the files that a restore of `step` reads (the OCDBT data of the state)."""
  if how == "checksum":
    # Bytes that still decode but differ from what was saved: OCDBT's own checks cannot see
    # that, so stand in for it by making the saved CRC disagree with the stored array.
    path = workdir / "checkpoints" / str(step) / "meta" / "metadata"
    payload = json.loads(path.read_text())
    payload["crc32"]["agent.params.w"] ^= 1
    path.write_text(json.dumps(payload))
    return
  data = workdir / "checkpoints" / str(step) / "state" / "d"
  files = sorted(data.iterdir())
  assert files
  for f in files:
    if how == "truncate":
      os.truncate(f, f.stat().st_size // 2)
    elif how == "delete":
      f.unlink()
    else:  # flip bits in the middle
      raw = bytearray(f.read_bytes())
      raw[len(raw) // 2] ^= 0xFF
      f.write_bytes(bytes(raw))


def test_round_trip_is_bit_identical_with_concrete_and_abstract_templates(tmp_path):
  state = make_state(1)
  meta = {"rewards": [0.1, 1 / 3, float("nan")], "counters": {"episode": 2}}
  with Checkpointer(str(tmp_path), CONFIG) as ckpt:
    assert ckpt.restore_latest(make_state(0)) is None
    ckpt.save(5, state, meta)
    ckpt.wait()
  ckpt = Checkpointer(str(tmp_path), CONFIG)
  step, restored, restored_meta = ckpt.restore_latest(make_state(0))
  assert step == 5
  assert_identical(restored, state)
  assert json.dumps(restored_meta) == json.dumps(meta)
  # An abstract template (jax.eval_shape) has no numpy leaves, so every leaf comes back as a
  # jax array; the bytes, dtypes and key impls must still be exactly the saved ones.
  step, abstract, _ = ckpt.restore_latest(jax.eval_shape(lambda: make_state(0)))
  assert step == 5
  assert_identical(abstract, jax.tree.map(jnp.asarray, state))
  # The restored typed key is a working key of the same impl: same draws as the original.
  k0, k1 = restored["agent"].key[0], state["agent"].key[0]
  assert jax.random.key_impl(restored["rbg"]) == jax.random.key_impl(state["rbg"])
  np.testing.assert_array_equal(jax.random.normal(k0, (4,)), jax.random.normal(k1, (4,)))
  ckpt.close()
  assert json.loads((tmp_path / "config.json").read_text()) == CONFIG


def test_keep_n_keeps_the_newest(tmp_path):
  save_steps(tmp_path, range(1, 6), keep=2)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["4", "5"]


@pytest.mark.parametrize("how", ["truncate", "delete", "flip", "checksum"])
def test_corrupt_latest_falls_back_and_says_which(tmp_path, caplog, how):
  save_steps(tmp_path, [1, 2, 3])
  corrupt(tmp_path, 3, how)
  with caplog.at_level(logging.WARNING, logger="jaxsets.checkpoint.manager"):
    ckpt = Checkpointer(str(tmp_path), CONFIG)
    step, state, meta = ckpt.restore_latest(make_state(0))
  assert step == 2 and meta["step"] == 2
  assert_identical(state, make_state(2))
  assert [s for s, _ in ckpt.skipped] == [3]
  if how == "checksum":
    assert "checksum mismatch in 'agent.params.w'" in ckpt.skipped[0][1]
  assert "restored checkpoint step 2" in caplog.text and "step 3:" in caplog.text
  # The bad step is moved aside, not deleted, and its number can be saved again.
  assert (tmp_path / "corrupt_checkpoints" / "3").is_dir()
  ckpt.save(3, make_state(3), {"step": 3})
  ckpt.close()
  with Checkpointer(str(tmp_path), CONFIG) as again:
    step, state, _ = again.restore_latest(make_state(0))
  assert step == 3
  assert_identical(state, make_state(3))


def test_all_corrupt_is_a_user_error_and_nothing_changes(tmp_path):
  save_steps(tmp_path, [1, 2])
  corrupt(tmp_path, 1, "truncate")
  corrupt(tmp_path, 2, "delete")
  before = snapshot(tmp_path)
  ckpt = Checkpointer(str(tmp_path), CONFIG)
  with pytest.raises(UserError, match="none of the checkpoints") as err:
    ckpt.restore_latest(make_state(0))
  ckpt.close()
  assert str(tmp_path / "checkpoints") in str(err.value)
  assert "step 2:" in str(err.value) and "step 1:" in str(err.value)
  assert snapshot(tmp_path) == before


def closed_loop_error(from_c: bool):
  """(type, value, traceback) of call_soon_threadsafe on a closed event loop. from_c: the
  traceback starts in asyncio, as when TensorStore's C++ thread makes the call."""
  loop = asyncio.new_event_loop()
  loop.close()
  try:
    loop.call_soon_threadsafe(print)
  except RuntimeError as e:
    tb = e.__traceback__.tb_next if from_c else e.__traceback__  # drop this test's own frame
    return type(e), e, tb
  raise AssertionError("a closed loop accepted a callback")


def test_after_a_failed_restore_only_late_read_callbacks_are_silenced(monkeypatch):
  from jaxsets.checkpoint.disk_errors import drop_late_read_callbacks
  reached = []
  monkeypatch.setattr(sys, "unraisablehook", lambda u: reached.append(u.exc_value))
  drop_late_read_callbacks()
  drop_late_read_callbacks()  # a second failed step does not wrap it twice
  late = closed_loop_error(from_c=True)
  ours = closed_loop_error(from_c=False)      # our own code's mistake: must still be seen
  other = ValueError("Event loop is closed")
  for exc_type, value, tb in (late, ours, (ValueError, other, None)):
    sys.unraisablehook(types.SimpleNamespace(exc_type=exc_type, exc_value=value, exc_traceback=tb,
                                             err_msg=None, object=None))
  assert reached == [ours[1], other]


def test_template_that_does_not_fit_is_refused_not_skipped(tmp_path):
  save_steps(tmp_path, [1])
  template = make_state(0)
  template["mask"] = jnp.zeros(5, jnp.float32)      # Orbax alone would cast silently
  template["support"] = template["support"]._replace(n=np.zeros(7, np.int32))
  before = snapshot(tmp_path)
  with Checkpointer(str(tmp_path), CONFIG) as ckpt:
    with pytest.raises(UserError, match=r"mask: saved bool\[5\], template float32\[5\]") as err:
      ckpt.restore_latest(template)
  assert "support.n: saved int32[6], template int32[7]" in str(err.value)
  assert snapshot(tmp_path) == before


def test_config_mismatch_names_the_keys_and_ignored_keys_pass(tmp_path):
  Checkpointer(str(tmp_path), CONFIG).close()
  changed = {"seed": 0, "loop": {"budget": 200, "checkpoint_every": 5}, "data": {"name": "cifar"},
             "extra": [1, 2]}
  with pytest.raises(UserError) as err:
    Checkpointer(str(tmp_path), changed, ignore=("loop.checkpoint_every",))
  msg = str(err.value)
  assert "loop.budget: 400 -> 200" in msg
  assert 'data.name: "digits" -> "cifar"' in msg
  assert "extra: (absent) -> [1, 2]" in msg
  assert "checkpoint_every" not in msg and str(tmp_path) in msg
  # Only whitelisted keys differ: accepted, and config.json keeps the first run's values.
  same = {**CONFIG, "loop": {"budget": 400, "checkpoint_every": 9}}
  Checkpointer(str(tmp_path), same, ignore=("loop.checkpoint_every",)).close()
  assert json.loads((tmp_path / "config.json").read_text()) == CONFIG
  with pytest.raises(UserError, match=r"seed: 0 -> 0.0"):  # no silent int/float/bool mixing
    Checkpointer(str(tmp_path), {**CONFIG, "seed": 0.0})


def test_unwritable_workdir_is_refused_at_construction(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")  # a file where a folder should be: unwritable even for root
  with pytest.raises(UserError, match="cannot write to the workdir"):
    Checkpointer(str(blocker / "run"), CONFIG)


def test_read_latest_reads_a_part_and_changes_nothing(tmp_path):
  """The read-only restore (load_agent's): only the template's leaves, from the newest step that
  reads back exactly; a damaged newest step is passed over but left where it is."""
  from jaxsets.checkpoint.manager import read_latest, saved_shapes
  assert read_latest(str(tmp_path), {"agent": make_state(0)["agent"]}) is None
  save_steps(tmp_path, [1, 2, 3])
  corrupt(tmp_path, 3, "flip")
  before = snapshot(tmp_path)
  step, part, meta = read_latest(str(tmp_path), {"agent": make_state(0)["agent"]})
  assert step == 2 and meta["step"] == 2
  assert_identical(part, {"agent": make_state(2)["agent"]})
  assert snapshot(tmp_path) == before                         # nothing moved, nothing written
  shapes = saved_shapes(str(tmp_path))
  assert shapes["agent.params.w"].shape == (3, 4) and shapes["support.x"].dtype == np.uint8
  with pytest.raises(UserError, match="agent.params.w: saved float32"):  # a layout check still
    read_latest(str(tmp_path), {"agent": make_state(0)["agent"].replace(
        params={"w": np.zeros((4, 3), np.float32), "odd": np.zeros(5, np.float32)})})


def test_save_must_move_forward(tmp_path):
  with Checkpointer(str(tmp_path), CONFIG) as ckpt:
    ckpt.save(2, make_state(0))
    with pytest.raises(ValueError, match="already has step 2"):
      ckpt.save(2, make_state(0))
