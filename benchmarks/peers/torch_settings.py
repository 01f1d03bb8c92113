"""PyTorch's CPU settings, chosen by measurement rather than assumed.

PyTorch's OpenMP threads wait for each other at every parallel region; on a machine whose cores
are shared (here: 2 cores, other processes running) 2 threads measured 5-10x slower than 1 for
the same fine-tune, while XLA, which runs small ops on one thread, barely notices. So each peer
tries every core count and 1 thread (and channels_last vs contiguous where that applies) on a
few warm calls and keeps the fastest: the peer always gets its best setting on this machine,
and the JSON records the trials.
"""
from __future__ import annotations

import itertools
import os
import time


def thread_options() -> list[int]:
  cores = os.cpu_count() or 1
  return [cores] if cores == 1 else [cores, 1]


def pick_best(apply, trial, *, formats=("contiguous", "channels_last"), calls: int = 2) -> dict:
  """apply(threads, memory_format) sets a configuration; trial(i) runs the work once.
  Leaves the fastest configuration applied; returns {"threads", "memory_format", "trials_s"}."""
  import torch
  timings = {}
  for threads, fmt in itertools.product(thread_options(), formats):
    torch.set_num_threads(threads)
    apply(threads, fmt)
    trial(0)  # warm: first-call allocations, oneDNN primitive caches
    start = time.perf_counter()
    for i in range(calls):
      trial(i + 1)
    timings[f"{threads} threads, {fmt}"] = (time.perf_counter() - start) / calls
  best = min(timings, key=timings.get)
  threads, fmt = best.split(" threads, ")
  torch.set_num_threads(int(threads))
  apply(int(threads), fmt)
  return {"threads": int(threads), "memory_format": fmt, "trials_s": timings}
