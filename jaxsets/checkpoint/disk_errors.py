"""Disk failures as one clear line: a full or read-only disk while saving, and the flood of
late-callback tracebacks that a failed restore's other reads would print."""
from __future__ import annotations

import os
import re
import sys

# What an I/O failure looks like, also when TensorStore reports it as a ValueError with the
# OS error inside the text ("... File too large [os_error_code='27']").
_WRITE_PROBLEM = re.compile(r"No space left|File too large|Read-only file system|Permission denied|"
                            r"Disk quota|os_error_code", re.IGNORECASE)


def write_problem(e: BaseException) -> str | None:
  """A one-line description of a disk problem behind `e`, or None if `e` is something else."""
  for err in (e, e.__cause__, e.__context__):
    if isinstance(err, OSError) and err.errno is not None:
      return f"{err.strerror or 'OS error'} [errno {err.errno}]"
    if err is not None and _WRITE_PROBLEM.search(str(err)):
      text = str(err)
      m = re.search(r"(No space left on device|File too large|Read-only file system|"
                    r"Permission denied|Disk quota exceeded)[^\n\]]*\]?", text)
      return m.group(0) if m else reason(err)
  return None


def reason(e: Exception) -> str:
  """'TypeName: first line of the message' (at most 200 characters of it)."""
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


def drop_late_read_callbacks() -> None:
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
