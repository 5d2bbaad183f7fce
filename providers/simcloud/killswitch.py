"""providers.simcloud.killswitch: ``RECONCILER_SIMCLOUD_KILL_AFTER=N``, the crash tests' scalpel.

The process SIGKILLs itself right after its N-th successful mutating call is committed,
counted process-wide. Mutations run one at a time from their ``BEGIN`` to this count
(``serially``), so no other thread's commit can slip in between the N-th and the kill:
exactly N mutations have landed when the process dies. SQLite lets one connection write at a
time anyway; waiting here instead of in its busy handler (which sleeps and polls, up to
25 ms a turn) hands the write lock on the moment it is free.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import AbstractContextManager

KILL_AFTER_ENV = "RECONCILER_SIMCLOUD_KILL_AFTER"

_mutations = 0
_lock = threading.RLock()


def serially() -> AbstractContextManager[object]:
    """Around one mutating call's transaction and its ``committed``: one at a time, process-wide."""
    return _lock


def committed() -> None:
    """Count a committed mutation; die by SIGKILL if it is the N-th one asked for."""
    global _mutations
    limit = os.environ.get(KILL_AFTER_ENV, "").strip()
    with _lock:
        _mutations += 1
        count = _mutations
    if limit.isdigit() and count == int(limit):
        os.kill(os.getpid(), signal.SIGKILL)
