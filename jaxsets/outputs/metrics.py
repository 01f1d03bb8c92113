"""TensorBoard scalars. The only module that imports the metrics library (tensorboardX), so a
change of library touches one file."""
from __future__ import annotations

from typing import Mapping


def _is_writer_process() -> bool:
  import jax
  return jax.process_index() == 0  # on a multi-host pod every host runs the loop; one writes


class MetricWriter:
  """scalar/scalars/flush/close over TensorBoard event files in `logdir`.

  Only process 0 writes; on other processes every method does nothing, so callers need no `if`.
  `purge_step`: when a run resumes from a checkpoint at step T, pass T so that TensorBoard hides
  the events of steps >= T that the interrupted run logged after its last checkpoint (else
  those steps would show twice).
  """

  def __init__(self, logdir: str, *, purge_step: int | None = None):
    self.logdir = logdir
    self._writer = None
    if _is_writer_process():
      from tensorboardX import SummaryWriter
      self._writer = SummaryWriter(logdir=logdir, purge_step=purge_step, flush_secs=30)

  @property
  def active(self) -> bool:
    return self._writer is not None

  def scalar(self, name: str, value, step: int) -> None:
    """value: a Python/numpy number or a 0-d array (converted on the host here)."""
    if self._writer is None:
      return
    # A NaN is written as is: a diverging step is a fact worth seeing in the curves.
    self._writer.add_scalar(name, float(value), global_step=int(step))

  def scalars(self, values: Mapping[str, object], step: int) -> None:
    """One tag per key (not tensorboardX's add_scalars, which makes a sub-run folder per key)."""
    for name, value in values.items():
      self.scalar(name, value, step)

  def flush(self) -> None:
    if self._writer is not None:
      self._writer.flush()

  def close(self) -> None:
    """Flushes and closes; safe to call twice."""
    if self._writer is not None:
      self._writer.close()
      self._writer = None

  def __enter__(self) -> "MetricWriter":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
