"""Saves and restores a run's (step, state, meta) with Orbax: the only module that imports it.

A save goes to a temporary folder and is renamed into place when complete, so a run killed
mid-save leaves its earlier steps intact; a restore takes the newest step that reads back
exactly (layout and checksums, leaves.py) and moves unreadable ones aside.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxsets import atomic
from jaxsets.checkpoint import leaves
from jaxsets.checkpoint.barriers import agree_across_processes, barrier
from jaxsets.checkpoint.disk_errors import drop_late_read_callbacks, reason, write_problem
from jaxsets.checkpoint.workdir_config import check_saved_config, config_path
from jaxsets.errors import UserError

log = logging.getLogger(__name__)
_FORMAT = 1  # version of what `meta` holds beside the caller's dict


def _state_handler() -> ocp.PyTreeCheckpointHandler:
  """Orbax's handler for the state, without its replica-parallel save: that copies each
  replicated array to the host in slices, one program compiled per leaf shape (224 of them,
  ~10 s on CPU, at a run's first save) to speed up the copy of arrays far larger than a run's.
  The files are the same as StandardCheckpointHandler's."""
  registry = ocp.type_handlers.create_type_handler_registry(
      (np.number, ocp.type_handlers.ScalarHandler()),
      (np.ndarray, ocp.type_handlers.NumpyHandler()),
      (jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False)))
  return ocp.PyTreeCheckpointHandler(type_handler_registry=registry)


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
    saved_config = config_path(self.workdir)
    have_config = check_saved_config(saved_config, config, tuple(ignore))
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            preservation_policy=ocp.checkpoint_managers.LatestN(n=keep),
            # Leftovers of a save killed before its rename: never a checkpoint, only litter.
            cleanup_tmp_directories=True,
            enable_async_checkpointing=async_save),
        item_handlers={"state": _state_handler(), "meta": ocp.JsonCheckpointHandler()})
    self._closed = False
    self._reported = False  # a write failure is reported once, not again at close()
    self._last_started = None
    if not have_config:
      if self._manager.all_steps():
        self._manager.close()
        raise UserError(f"{self.directory} holds checkpoints but {saved_config} is missing, so "
                        "it cannot be checked that they belong to this config. Put the run's "
                        "config.json back, or use a new workdir.")
      if jax.process_index() == 0:
        atomic.write_json(saved_config, json.loads(json.dumps(config)))
      barrier("jaxsets_config_written")

  def save(self, step: int, state, meta: dict | None = None) -> None:
    """Starts saving `state` and `meta` as `step` (async: `wait()` makes it durable)."""
    step = int(step)
    latest = self._manager.latest_step()
    if latest is not None and step <= latest:
      # Orbax would skip it silently; a resumed loop must continue after the restored step.
      raise ValueError(f"cannot save step {step}: {self.directory} already has step {latest}")
    stored = {name: leaves.to_storable(leaf, name) for name, leaf in leaves.named_leaves(state)}
    payload = {"format": _FORMAT, "meta": {} if meta is None else meta,
               "crc32": {name: leaves.crc(a) for name, a in stored.items()}}
    # Serialise now: a TypeError here beats one from Orbax's background thread, and the copy
    # keeps the caller's next changes (history.append) out of this still-running async save.
    payload = json.loads(json.dumps(payload))
    self._last_started = step
    with self._write_errors(step):
      self._manager.save(step, force=True, args=ocp.args.Composite(
          state=ocp.args.PyTreeSave(leaves.nest(stored)), meta=ocp.args.JsonSave(payload)))

  def restore_latest(self, template):
    """Returns None without checkpoints, else (step, state, meta) from the newest good step.

    `template` fixes structure, shapes, dtypes and shardings (arrays or jax.ShapeDtypeStruct).
    Steps that fail to restore are skipped, reported, and moved to corrupt_checkpoints/ so
    that new saves can take their step numbers again.
    """
    self._manager.wait_until_finished()
    self._manager.reload()
    self.skipped = []
    found = _newest_good_step(self._manager, self.directory, template, partial=False,
                              skipped=self.skipped)
    if found is None:
      return None
    step, state, meta = found
    agree_across_processes(step)
    if self.skipped:
      self._quarantine([s for s, _ in self.skipped])
      log.warning("restored checkpoint step %d; skipped %s (moved to %s)", step,
                  "; ".join(f"step {s}: {r}" for s, r in self.skipped),
                  os.path.join(self.workdir, "corrupt_checkpoints"))
    else:
      log.info("restored checkpoint step %d", step)
    return step, state, meta

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
    barrier("jaxsets_quarantined")
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
      problem = write_problem(e)
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


def read_latest(workdir: str, template):
  """Read-only restore for a run's user: None without checkpoints, else (step, state, meta) from
  the newest step whose leaves of `template` read back exactly. `template` may be a part of the
  saved state with the same leaf names (e.g. {"agent": AgentState shapes}): only those leaves
  are read. Nothing in `workdir` is written, moved or deleted, so a run may be saving there."""
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  if not os.path.isdir(directory):
    return None
  manager, skipped = _reader(directory), []
  try:
    found = _newest_good_step(manager, directory, template, partial=True, skipped=skipped)
  finally:
    manager.close()
  if found is None:
    return None
  step, state, meta = found
  if skipped:
    log.warning("read checkpoint step %d; skipped %s", step,
                "; ".join(f"step {s}: {r}" for s, r in skipped))
  return step, state, meta


def saved_shapes(workdir: str) -> dict[str, jax.ShapeDtypeStruct] | None:
  """Read-only: {leaf name: shape and dtype} of the newest step whose metadata reads (every step
  of a run has the same), or None without checkpoints. Reads no array."""
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  if not os.path.isdir(directory):
    return None
  manager = _reader(directory)
  try:
    for step in sorted(manager.all_steps(), reverse=True):
      try:
        tree = manager.metadata(step).item_metadata["state"].tree
      except Exception:  # an unreadable step: the one before has the same layout
        continue
      return {name: jax.ShapeDtypeStruct(tuple(m.shape), m.dtype)
              for name, m in leaves.named_leaves(tree)}
  finally:
    manager.close()
  return None


def _reader(directory: str):
  # Orbax warns that a read-only directory is read only; a user asked for exactly that.
  quiet = lambda record: "read only" not in record.getMessage()
  absl_log = logging.getLogger("absl")
  absl_log.addFilter(quiet)
  try:
    return ocp.CheckpointManager(
        directory, options=ocp.CheckpointManagerOptions(read_only=True, create=False,
                                                        save_interval_steps=0),
        item_handlers={"state": _state_handler(), "meta": ocp.JsonCheckpointHandler()})
  finally:
    absl_log.removeFilter(quiet)


def _newest_good_step(manager, directory, template, *, partial: bool, skipped: list):
  """None without steps, else (step, state, meta) of the newest step that restores; each newer
  one that does not is appended to `skipped` as (step, reason). UserError if none restores."""
  steps = sorted(manager.all_steps(), reverse=True)
  if not steps:
    return None
  named = leaves.named_leaves(template)
  drop_late_read_callbacks()  # before the first read: a failed step's late ones come at once
  for step in steps:
    try:
      state, meta = _restore_step(manager, step, template, named, partial=partial)
      return step, state, meta
    except UserError:
      raise
    except Exception as e:  # anything unreadable in this step: try the one before
      skipped.append((step, reason(e)))
  raise UserError(f"none of the checkpoints in {directory} can be restored ("
                  + "; ".join(f"step {s}: {r}" for s, r in skipped)
                  + "). Nothing was changed there. Use a new workdir, or move that folder "
                  "away to start again.")


def _restore_step(manager, step, template, named, *, partial: bool):
  md = manager.metadata(step).item_metadata
  tree = None if md is None else md.get("state")
  if tree is None:
    raise ValueError("the state's metadata is missing or unreadable")
  leaves.check_layout(step, dict(leaves.named_leaves(tree.tree)), named, partial=partial)
  target = leaves.nest({name: leaves.abstract(leaf) for name, leaf in named})
  # partial: only the template's leaves are read (a reader may take a part of the state).
  state_args = ocp.args.PyTreeRestore(
      target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
      partial_restore=partial)
  restored = manager.restore(step, args=ocp.args.Composite(
      state=state_args, meta=ocp.args.JsonRestore()))
  payload = restored["meta"]
  if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
    raise ValueError("meta.json is not in the expected format")
  flat = dict(leaves.named_leaves(restored["state"]))
  for name, _ in named:
    want = payload["crc32"].get(name)
    if want is not None and leaves.crc(flat[name]) != want:
      raise ValueError(f"checksum mismatch in {name!r}")
  values = [leaves.from_stored(flat[name], leaf) for name, leaf in named]
  return jax.tree.unflatten(jax.tree.structure(template), values), payload["meta"]
