"""Checkpoints of a run: the only module that imports Orbax.

Layout of a workdir:
  config.json               the run's config, written once; a later run must match it
  checkpoints/<step>/       Orbax steps: `state` (arrays) and `meta` (JSON)
  corrupt_checkpoints/      steps that failed to restore, moved aside (never deleted)

The state is stored as a nested dict of plain arrays keyed by its pytree path, so any
pytree (dicts, NamedTuples, flax struct dataclasses) round-trips through the template's
own structure. Typed PRNG keys are stored as their raw `key_data`.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
import zlib

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxsets import atomic
from jaxsets.sharding import put
from jaxsets.errors import UserError

log = logging.getLogger(__name__)
_FORMAT = 1  # version of what `meta` holds beside the caller's dict


class Checkpointer:
  """Saves and restores (step, state, meta) under `workdir`, refusing a different run's workdir."""

  def __init__(self, workdir: str, config: dict, *, keep: int | None = 3, ignore=(),
               async_save: bool = True):
    if keep is not None and (not isinstance(keep, int) or keep < 1):
      raise ValueError(f"keep must be a positive int or None (keep all), got {keep!r}")
    self.workdir = os.path.abspath(workdir)
    self.directory = os.path.join(self.workdir, "checkpoints")
    self.skipped: list[tuple[int, str]] = []  # (step, reason) passed over by the last restore
    atomic.check_writable_dir(self.workdir, "workdir")
    config_path = os.path.join(self.workdir, "config.json")
    have_config = _check_config(config_path, config, tuple(ignore))
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            preservation_policy=ocp.checkpoint_managers.LatestN(n=keep),
            # Leftovers of a save killed before its rename: never a checkpoint, only litter.
            cleanup_tmp_directories=True,
            enable_async_checkpointing=async_save),
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "meta": ocp.JsonCheckpointHandler()})
    self._closed = False
    self._reported = False  # a write failure is reported once, not again at close()
    self._last_started = None
    if not have_config:
      if self._manager.all_steps():
        self._manager.close()
        raise UserError(f"{self.directory} holds checkpoints but {config_path} is missing, so "
                        "it cannot be checked that they belong to this config. Put the run's "
                        "config.json back, or use a new workdir.")
      if jax.process_index() == 0:
        atomic.write_json(config_path, json.loads(json.dumps(config)))
      _barrier("jaxsets_config_written")

  def save(self, step: int, state, meta: dict | None = None) -> None:
    """Starts saving `state` and `meta` as `step` (async: `wait()` makes it durable)."""
    step = int(step)
    latest = self._manager.latest_step()
    if latest is not None and step <= latest:
      # Orbax would skip it silently; a resumed loop must continue after the restored step.
      raise ValueError(f"cannot save step {step}: {self.directory} already has step {latest}")
    stored = {name: _to_storable(leaf, name) for name, leaf in _named_leaves(state)}
    payload = {"format": _FORMAT, "meta": {} if meta is None else meta,
               "crc32": {name: _crc(a) for name, a in stored.items()}}
    # Serialise now: a TypeError here beats one from Orbax's background thread, and the copy
    # keeps the caller's next changes (history.append) out of this still-running async save.
    payload = json.loads(json.dumps(payload))
    self._last_started = step
    with self._write_errors(step):
      self._manager.save(step, force=True, args=ocp.args.Composite(
          state=ocp.args.StandardSave(_nest(stored)), meta=ocp.args.JsonSave(payload)))

  def restore_latest(self, template):
    """Returns None without checkpoints, else (step, state, meta) from the newest good step.

    `template` fixes structure, shapes, dtypes and shardings (arrays or jax.ShapeDtypeStruct).
    Steps that fail to restore are skipped, reported, and moved to corrupt_checkpoints/ so
    that new saves can take their step numbers again.
    """
    self._manager.wait_until_finished()
    self._manager.reload()
    steps = sorted(self._manager.all_steps(), reverse=True)
    if not steps:
      return None
    named = _named_leaves(template)
    self.skipped = []
    _drop_late_read_callbacks()  # before the first read: a failed step's late ones come at once
    for step in steps:
      try:
        state, meta = self._restore_step(step, template, named)
      except UserError:
        raise
      except Exception as e:  # anything unreadable in this step: try the one before
        self.skipped.append((step, _reason(e)))
        continue
      _agree_across_processes(step)
      if self.skipped:
        self._quarantine([s for s, _ in self.skipped])
        log.warning("restored checkpoint step %d; skipped %s (moved to %s)", step,
                    "; ".join(f"step {s}: {r}" for s, r in self.skipped),
                    os.path.join(self.workdir, "corrupt_checkpoints"))
      else:
        log.info("restored checkpoint step %d", step)
      return step, state, meta
    raise UserError(f"none of the checkpoints in {self.directory} can be restored ("
                    + "; ".join(f"step {s}: {r}" for s, r in self.skipped)
                    + "). Nothing was changed there. Use a new workdir, or move that folder "
                    "away to start again.")

  def _restore_step(self, step, template, named):
    md = self._manager.metadata(step).item_metadata
    tree = None if md is None else md.get("state")
    if tree is None:
      raise ValueError("the state's metadata is missing or unreadable")
    _check_layout(step, dict(_named_leaves(tree.tree)), named)
    abstract = {name: _abstract(leaf) for name, leaf in named}
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(_nest(abstract)), meta=ocp.args.JsonRestore()))
    payload = restored["meta"]
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
      raise ValueError("meta.json is not in the expected format")
    flat = dict(_named_leaves(restored["state"]))
    for name, _ in named:
      want = payload["crc32"].get(name)
      if want is not None and _crc(flat[name]) != want:
        raise ValueError(f"checksum mismatch in {name!r}")
    leaves = [_from_stored(flat[name], leaf) for name, leaf in named]
    return jax.tree.unflatten(jax.tree.structure(template), leaves), payload["meta"]

  def _quarantine(self, steps):
    if jax.process_index() == 0:
      aside = os.path.join(self.workdir, "corrupt_checkpoints")
      os.makedirs(aside, exist_ok=True)
      for step in steps:
        target, n = os.path.join(aside, str(step)), 0
        while os.path.exists(target):
          n += 1
          target = os.path.join(aside, f"{step}-{n}")
        os.replace(os.path.join(self.directory, str(step)), target)
    _barrier("jaxsets_quarantined")
    self._manager.reload()

  def wait(self) -> None:
    """Blocks until every save started so far is on disk, renamed into place."""
    with self._write_errors(self._last_started):
      self._manager.wait_until_finished()

  def close(self) -> None:
    if not self._closed:
      self._closed = True
      with self._write_errors(self._last_started):
        self._manager.close()  # waits for a save in progress first

  def complete_steps(self) -> list[int]:
    """Steps renamed into place on disk (a save cut short leaves only a *-tmp folder)."""
    if not os.path.isdir(self.directory):
      return []
    return sorted(int(d) for d in os.listdir(self.directory) if d.isdigit())

  @contextlib.contextmanager
  def _write_errors(self, step):
    """A full or read-only disk mid-run becomes one clear UserError; the steps already renamed
    into place are untouched, because Orbax writes a step into a temporary folder first."""
    try:
      yield
    except Exception as e:
      problem = _write_problem(e)
      if problem is None or self._reported:
        raise
      self._reported = True
      good = self.complete_steps()
      what = f"step {step}" if step is not None else "a checkpoint"
      kept = (f"the newest complete checkpoint, step {good[-1]}, is intact" if good else
              "no earlier checkpoint exists, so a rerun starts from the beginning")
      raise UserError(f"could not write {what} to {self.directory} ({problem}); {kept}. Free "
                      "space or fix the folder's permissions, then run the same command again "
                      "to resume.") from e

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


class PreemptionGuard:
  """Turns SIGTERM/SIGINT into a flag (`requested`) that the loop checks between steps.

  A second signal raises KeyboardInterrupt, for a user who does not want to wait; the
  newest finished checkpoint is still there. Previous handlers come back on exit.
  Must be entered on the main thread (Python only delivers signals there).
  """

  def __init__(self, signals=(signal.SIGTERM, signal.SIGINT)):
    self.signals = tuple(signals)
    self.requested = False
    self.received = None  # the signal number that set `requested`
    self._previous = {}

  def _handle(self, signum, frame):
    if self.requested:
      raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping at once")
    self.requested, self.received = True, signum
    log.warning("%s received: saving a checkpoint after this step, then stopping "
                "(send it again to stop at once)", signal.Signals(signum).name)

  def __enter__(self):
    for sig in self.signals:
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous = {}


# --- config ---------------------------------------------------------------------------

def check_workdir_config(workdir: str, config: dict, ignore=()) -> None:
  """Refuses at once a workdir that holds a run of another config (UserError naming the keys);
  writes nothing. A Checkpointer checks again, and writes config.json, when it is made."""
  _check_config(os.path.join(os.path.abspath(workdir), "config.json"), config, tuple(ignore))


def _check_config(path: str, config: dict, ignore: tuple) -> bool:
  """Compares with the saved config; returns whether one was saved."""
  try:
    new = json.loads(json.dumps(config))  # tuples become lists, as they will on disk
  except (TypeError, ValueError) as e:
    raise ValueError(f"the run config must be JSON-able: {e}") from e
  if not os.path.exists(path):
    return False
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read {path} ({e}). Fix or remove it only if this workdir holds "
                    "no run you need; otherwise use a new workdir.") from e
  diffs = [(k, a, b) for k, a, b in _diff(old, new, "")
           if not any(k == i or k.startswith(i + ".") for i in ignore)]
  if diffs:
    lines = "; ".join(f"{k}: {a} -> {b}" for k, a, b in diffs)
    raise UserError(f"the workdir {os.path.dirname(path)} holds a run with a different config "
                    f"({lines}). Use a new workdir, or the same config to resume that run.")
  return True


def _diff(old, new, prefix):
  """Yields (dotted key, old, new) as JSON text; dicts are compared key by key."""
  if isinstance(old, dict) and isinstance(new, dict):
    for k in sorted(set(old) | set(new)):
      key = f"{prefix}.{k}" if prefix else k
      if k not in old:
        yield key, "(absent)", json.dumps(new[k])
      elif k not in new:
        yield key, json.dumps(old[k]), "(absent)"
      else:
        yield from _diff(old[k], new[k], key)
  elif json.dumps(old) != json.dumps(new):  # strict: 1 != 1.0 != true
    yield prefix, json.dumps(old), json.dumps(new)


# --- state leaves ---------------------------------------------------------------------

def _named_leaves(tree):
  """[(name, leaf)] with names like 'agent.params.w' from each leaf's pytree path."""
  out, seen = [], set()
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    parts = [str(getattr(p, "key", getattr(p, "name", getattr(p, "idx", p)))) for p in path]
    name = ".".join(parts)
    if name in seen or any("/" in p or "." in p for p in parts):
      raise ValueError(f"state leaf {jax.tree_util.keystr(path)} cannot be named uniquely "
                       "for a checkpoint: avoid '.' and '/' in its keys")
    seen.add(name)
    out.append((name, leaf))
  return out


def _nest(flat: dict) -> dict:
  nested = {}
  for name, value in flat.items():
    *parents, last = name.split(".")
    node = nested
    for p in parents:
      node = node.setdefault(p, {})
    node[last] = value
  return nested


def _is_key(leaf) -> bool:
  return jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key)


def _key_impl(leaf):
  if isinstance(leaf, jax.Array):
    return jax.random.key_impl(leaf)
  # An abstract key (jax.eval_shape) has no public accessor for its impl: match the dtype.
  for impl in ("threefry2x32", "rbg", "unsafe_rbg"):
    if jax.eval_shape(lambda: jax.random.key(0, impl=impl)).dtype == leaf.dtype:
      return impl
  raise ValueError(f"unknown PRNG key type {leaf.dtype}")


def _to_storable(leaf, name):
  if _is_key(leaf):
    leaf = jax.random.key_data(leaf)
  if isinstance(leaf, jax.Array):
    if jax.process_count() > 1 and leaf.is_fully_addressable:
      # On several hosts Orbax saves only global arrays; one held by this host alone (a key
      # made outside jit, say) is the same on every host, so it is stored as numpy.
      return np.asarray(leaf)
    return leaf  # immutable
  if isinstance(leaf, (np.ndarray, np.generic, bool, int, float)):
    return np.array(leaf)  # a copy: the async save may read it after the caller reuses `leaf`
  raise TypeError(f"state leaf {name!r} is a {type(leaf).__name__}; checkpoints hold arrays")


def _default_sharding():
  # One process: where jax puts arrays by default. Several: replicated, valid on every host.
  if jax.process_count() == 1:
    return jax.sharding.SingleDeviceSharding(jax.devices()[0])
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("all",))
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


def _abstract(leaf):
  """What Orbax should restore for a template leaf: numpy stays numpy, jax keeps its sharding."""
  if _is_key(leaf):
    shape = jax.eval_shape(jax.random.key_data, leaf)
    sharding = getattr(leaf, "sharding", None)
    if not isinstance(sharding, jax.sharding.NamedSharding) or (
        jax.process_count() > 1 and sharding.is_fully_addressable):
      sharding = _default_sharding()
    # A NamedSharding names the keys' axes, which key_data shares (its extra last axis stays
    # whole): the raw data comes back where the keys live, e.g. split over the environments.
    return jax.ShapeDtypeStruct(shape.shape, shape.dtype, sharding=sharding)
  if isinstance(leaf, np.ndarray):
    return leaf
  if isinstance(leaf, (np.generic, bool, int, float)):
    return np.asarray(leaf)
  if isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct)):
    sharding = getattr(leaf, "sharding", None)
    if sharding is None or (jax.process_count() > 1 and sharding.is_fully_addressable):
      sharding = _default_sharding()  # restore host-local leaves replicated over every host
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)
  raise TypeError(f"template leaf of type {type(leaf).__name__}; use arrays or ShapeDtypeStruct")


def _from_stored(value, leaf):
  if _is_key(leaf):
    key = jax.random.wrap_key_data(value, impl=_key_impl(leaf))
    sharding = getattr(leaf, "sharding", None)
    return key if sharding is None else put(key, sharding)  # also onto other hosts' devices
  if isinstance(leaf, (bool, int, float)):
    return type(leaf)(value.item())
  if isinstance(leaf, np.generic):
    return np.asarray(value, leaf.dtype)[()]
  return value


def _check_layout(step, saved: dict, named):
  """Orbax would cast dtypes and reshape numpy leaves silently: refuse any difference."""
  want = {}
  for name, leaf in named:
    a = _abstract(leaf)
    want[name] = (tuple(a.shape), np.dtype(a.dtype))
  have = {n: (tuple(m.shape), np.dtype(m.dtype)) for n, m in saved.items()}
  problems = [f"{n}: missing in checkpoint" for n in want if n not in have]
  problems += [f"{n}: not in template" for n in have if n not in want]
  problems += [f"{n}: saved {have[n][1]}{list(have[n][0])}, template {w[1]}{list(w[0])}"
               for n, w in want.items() if n in have and have[n] != w]
  if problems:
    raise UserError(f"the state saved at step {step} does not fit this code's state ("
                    + "; ".join(problems[:8]) + (" ..." if len(problems) > 8 else "")
                    + "). The code or config changed since it was saved: use a new workdir.")


def _crc(a):
  """CRC32 of the bytes, so silent corruption in an array is caught on restore."""
  if isinstance(a, jax.Array) and not a.is_fully_addressable:
    return None  # spread over hosts: no single process sees all of it
  return zlib.crc32(np.ascontiguousarray(np.asarray(a)).view(np.uint8).reshape(-1))


# What an I/O failure looks like, also when TensorStore reports it as a ValueError with the
# OS error inside the text ("... File too large [os_error_code='27']").
_WRITE_PROBLEM = re.compile(r"No space left|File too large|Read-only file system|Permission denied|"
                            r"Disk quota|os_error_code", re.IGNORECASE)


def _write_problem(e: BaseException) -> str | None:
  """A one-line description of a disk problem behind `e`, or None if `e` is something else."""
  for err in (e, e.__cause__, e.__context__):
    if isinstance(err, OSError) and err.errno is not None:
      return f"{err.strerror or 'OS error'} [errno {err.errno}]"
    if err is not None and _WRITE_PROBLEM.search(str(err)):
      text = str(err)
      m = re.search(r"(No space left on device|File too large|Read-only file system|"
                    r"Permission denied|Disk quota exceeded)[^\n\]]*\]?", text)
      return m.group(0) if m else _reason(err)
  return None


def _reason(e: Exception) -> str:
  first = (str(e).strip().splitlines() or [""])[0]
  return f"{type(e).__name__}: {first[:200]}"


def _is_late_read_callback(exc_type, value, tb) -> bool:
  """Whether an uncaught error is TensorStore finishing a read for a restore that already
  failed: its C++ thread calls `call_soon_threadsafe` on Orbax's event loop, closed by then."""
  if not (exc_type is RuntimeError and str(value) == "Event loop is closed"):
    return False
  frames = []
  while tb is not None:
    frames.append(tb.tb_frame.f_code)
    tb = tb.tb_next
  return bool(frames) and frames[0].co_name == "call_soon_threadsafe" and all(
      f.co_filename.endswith(os.path.join("asyncio", "base_events.py")) for f in frames)


def _drop_late_read_callbacks() -> None:
  """When a step fails to restore, the other reads of that step still complete, each reporting
  a 'RuntimeError: Event loop is closed' through sys.unraisablehook (~500 tracebacks for the
  smoke run's state), which bury the one line that says which step was skipped. Only exactly
  those are dropped; every other unraisable error still reaches the previous hook."""
  previous = sys.unraisablehook
  if getattr(previous, "_jaxsets_drops_late_reads", False):
    return

  def hook(unraisable):
    if not _is_late_read_callback(unraisable.exc_type, unraisable.exc_value,
                                  unraisable.exc_traceback):
      previous(unraisable)

  hook._jaxsets_drops_late_reads = True
  sys.unraisablehook = hook


_barriers = 0


def _barrier(name: str) -> None:
  global _barriers
  if jax.process_count() > 1:
    _barriers += 1  # Orbax wants every barrier name used once
    ocp.multihost.sync_global_processes(f"{name}_{_barriers}")


def _agree_across_processes(step: int) -> None:
  # Every host must resume from the same step, or they would run different programs.
  if jax.process_count() > 1 and int(ocp.multihost.broadcast_one_to_all(np.int64(step))) != step:
    raise UserError(f"hosts restored different checkpoint steps (this one {step}); check that "
                    "every host sees the same files in the workdir")
