"""PreemptionGuard: a signal sets a flag the loop checks between steps; a second stops at once."""
import os
import signal
import time

import pytest

from jaxsets.loop.preemption import PreemptionGuard


def test_preemption_guard_sets_a_flag_and_restores_handlers():
  seen = []
  previous_int = signal.getsignal(signal.SIGINT)  # whatever was installed before, not assumed
  previous = signal.signal(signal.SIGTERM, lambda s, f: seen.append(s))
  try:
    with PreemptionGuard() as guard:
      assert not guard.requested
      os.kill(os.getpid(), signal.SIGTERM)
      time.sleep(0.01)  # Python runs the handler at the next bytecode boundary
      assert guard.requested and guard.received == signal.SIGTERM
      with pytest.raises(KeyboardInterrupt):  # a second signal stops at once
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
    assert seen == []
    os.kill(os.getpid(), signal.SIGTERM)  # the previous handler is back
    time.sleep(0.01)
    assert seen == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGINT) is previous_int
  finally:
    signal.signal(signal.SIGTERM, previous)
