"""`run(config, workdir)`: the whole method for one seed, resumable, with its outputs."""
from __future__ import annotations

import os
import sys
import time

import jax
import numpy as np

from jaxsets import distributed, sharding
from jaxsets.classifier import SupportBatch, empty_support
from jaxsets.env import rollout as env_rollout
from jaxsets.errors import UserError
from jaxsets.loop import arms, driver
from jaxsets.loop import state as st
from jaxsets.loop.checks import check_config
from jaxsets.loop.setup import make_setup

# Config keys that do not change what a run computes: a resumed run may change them.
RESUMABLE_KEYS = ("loop.checkpoint_every", "loop.keep_checkpoints", "generator.cache_dir",
                  "data.data_dir")


def run(config, workdir: str, *, quiet: bool = False) -> dict:
  """Runs (or resumes) the method in `workdir`; returns results.json's content."""
  from jaxsets import atomic, outputs
  from jaxsets.checkpoint.manager import Checkpointer
  from jaxsets.checkpoint.workdir_config import check_workdir_config
  from jaxsets.loop.preemption import PreemptionGuard

  start = time.time()
  check_config(config)
  # Another run's workdir is refused in a second, before data and generator load; but
  # config.json is written (by the Checkpointer) only once make_setup has also accepted the
  # dataset and the dictionary: a config refused there would leave a workdir that the
  # corrected config could no longer use.
  check_workdir_config(workdir, config.to_dict(), ignore=RESUMABLE_KEYS)
  atomic.check_writable_dir(workdir, "workdir")  # before a setup that may pretrain for minutes
  quiet = quiet or not distributed.is_writer()  # one progress bar for the whole run
  s = make_setup(config, quiet=quiet)
  ckpt = Checkpointer(workdir, config.to_dict(), keep=s.loop.keep_checkpoints,
                      ignore=RESUMABLE_KEYS)
  try:
    key = jax.random.key(s.seed)
    # Shapes only: building a real state would run the environment resets (fine-tunes) for nothing.
    # With their shardings, so each host restores its own shards where the state lives.
    template = st.placed_shapes(s, jax.eval_shape(
        lambda k: st.initial_state(s, st.untrained_baseline(s, k), k), key))
    restored = ckpt.restore_latest(template)
    if restored is None:
      state, history = driver.fresh_state(s, key, quiet=quiet), driver.new_history()
    else:
      _, state, history = restored
      if distributed.is_writer():  # always said, also with --no-progress: which step was used
        skipped = "".join(f"; skipped step {k} ({why}), moved to corrupt_checkpoints/"
                          for k, why in ckpt.skipped)
        print(f"resuming {workdir} from checkpoint step {int(state.step)} of "
              f"{driver.total_steps(s)}{skipped}", file=sys.stderr, flush=True)
    # One placement for fresh and restored states (environments split over the mesh where they
    # divide over it, the rest replicated), so both compile the same programs and a resumed run
    # is bit-identical to an uninterrupted one.
    state = st.place(s, state)
    writer = outputs.MetricWriter(os.path.join(workdir, "tensorboard"), purge_step=int(state.step))
    save = lambda state_, history_: ckpt.save(int(state_.step), state_, history_)
    with PreemptionGuard() as guard:
      state = driver.run_steps(s, state, history, save=save, should_stop=lambda: guard.requested,
                               quiet=quiet, writer=writer)
    ckpt.wait()
    results = finish(s, state, history, workdir, seconds=time.time() - start)
    writer.close()
    return results
  finally:
    ckpt.close()


def composition(actions, book) -> dict:
  """What the delivered set is made of, per step: actions int32 [T, 4] -> steps per domain, pure
  steps (c2 = c3 = c1) and steps per first class (the label)."""
  actions = np.asarray(actions)
  return {"domain_steps": {d: int(np.sum(actions[:, 0] == i)) for i, d in enumerate(book.domains)},
          "pure_steps": int(np.sum((actions[:, 2] == actions[:, 1]) & (actions[:, 3] == actions[:, 1]))),
          "first_class_steps": {c: int(np.sum(actions[:, 1] == i))
                                for i, c in enumerate(book.class_names)},
          "steps": int(len(actions))}


def finish(s, state: st.RunState, history: dict, workdir: str, *, seconds: float) -> dict:
  """The four arms on the test split, then results.json, support_set/ and report.md."""
  from jaxsets import outputs

  rl = state.rollout.support
  rl_support = SupportBatch(rl.images[0], rl.labels[0], rl.mask[0])
  random_support, random_actions = arms.random_support(s, state.key)
  balanced_support, balanced_actions = arms.balanced_support(s, state.key)
  empty = empty_support(rl_support.images.shape[1:], rl_support.mask.shape[0])  # same shapes
  scores = arms.evaluate_arms(s, state, {"baseline": empty, "random": random_support,
                                         "balanced": balanced_support, "rl": rl_support})
  # to_host, not np.asarray: on several hosts an array may be split over processes.
  actions = sharding.to_host(state.rollout.actions)[0]                         # [T, 4]
  prompts = [s.book.text(a) for a in actions]
  results = {
      "test_accuracy": {arm: scores[arm]["test_accuracy"] for arm in arms.ARMS},
      "per_class_accuracy": {arm: scores[arm]["per_class_accuracy"] for arm in arms.ARMS},
      "test_mean_entropy": {arm: scores[arm]["test_mean_entropy"] for arm in arms.ARMS},
      "test_accuracy_repeats": {arm: scores[arm]["test_accuracy_repeats"] for arm in arms.ARMS},
      # The same fine-tunes on the validation split: for choosing designs, never the test split.
      "val_accuracy": {arm: scores[arm]["val_accuracy"] for arm in arms.ARMS},
      "num_synthetic": int(rl_support.mask.sum()),
      "num_real_train": len(s.splits.train),
      "train_class_counts": [int(n) for n in s.splits.train.class_counts(s.splits.num_classes)],
      "class_names": list(s.book.class_names),
      "rl_prompts": prompts,
      "rl_composition": composition(actions, s.book),
      "random_prompts": [s.book.text(a) for a in random_actions],
      "balanced_prompts": [s.book.text(a) for a in balanced_actions],
      "seed": s.seed,
      "seconds": round(seconds, 1),
      "config": s.config.to_dict(),
  }
  # The set as build_support_set returns it (every host gathers; one writes).
  support = env_rollout.support_set_of(state.rollout, state.rollout_reward, s.book,
                                       images_per_step=s.spec.images_per_step)
  if not distributed.is_writer():  # every host computed the same; one writes
    return results
  try:
    support.save(workdir)
    outputs.write_results(workdir, results)
    outputs.write_report(workdir, results, history, support.images, support.labels,
                         list(support.prompts), s.book.class_names)
  except OSError as e:  # each output is swapped in whole, so a failed one leaves the old file
    raise UserError(f"could not write the outputs in {workdir} ({e.strerror or e}: "
                    f"{e.filename or ''}). The run's last checkpoint is saved: free space or fix "
                    "permissions, then run the same command again to write them.") from e
  return results
