"""Checkpoints of a run, one job per module:

  manager.py         Checkpointer: save and restore (step, state, meta) with Orbax (the only
                     module that imports it), and a read-only restore for a run's user
  workdir_config.py  the guard that keeps one config per workdir (config.json)
  leaves.py          how a state pytree is stored: named plain arrays, checksums, layout checks
  disk_errors.py     a full or read-only disk as one clear error; quiet failed reads
  barriers.py        several hosts wait for each other and resume from the same step

Layout of a workdir:
  config.json               the run's config, written once; a later run must match it
  checkpoints/<step>/       Orbax steps: `state` (arrays) and `meta` (JSON)
  corrupt_checkpoints/      steps that failed to restore, moved aside (never deleted)
"""
