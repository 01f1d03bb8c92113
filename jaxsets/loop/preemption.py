"""PreemptionGuard: a SIGTERM (a preempted VM, a scheduler's stop) or Ctrl-C ends a run at the
next step boundary, after its checkpoint, so that the same command resumes it."""
from __future__ import annotations

import logging
import signal

log = logging.getLogger(__name__)


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
