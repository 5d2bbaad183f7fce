"""providers.simcloud.killswitch: ``RECONCILER_SIMCLOUD_KILL_AFTER=N``, the crash tests' scalpel.

The process SIGKILLs itself right after its N-th successful mutating call is committed,
counted process-wide. While the variable is set, mutations run one at a time from commit to
count (``serially``), so no other thread's commit can slip in between the N-th and the kill:
exactly N mutations have landed when the process dies.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import AbstractContextManager, nullcontext

KILL_AFTER_ENV = "RECONCILER_SIMCLOUD_KILL_AFTER"

_mutations = 0
_lock = threading.RLock()


def serially(write: bool) -> AbstractContextManager[object]:
    """Around one call's transaction and its ``committed``: serial while the kill switch is set."""
    if write and os.environ.get(KILL_AFTER_ENV, "").strip():
        return _lock
    return nullcontext()


def committed() -> None:
    """Count a committed mutation; die by SIGKILL if it is the N-th one asked for."""
    global _mutations
    limit = os.environ.get(KILL_AFTER_ENV, "").strip()
    with _lock:
        _mutations += 1
        count = _mutations
    if limit.isdigit() and count == int(limit):
        os.kill(os.getpid(), signal.SIGKILL)
