"""store.group_commit: the writes of several threads made durable by one commit (group commit).

An apply runs up to ``max_parallel`` provider calls at once, and each writes its intent
before the call and its outcome after it, each durable before the thread goes on. One
commit — one fsync — per write makes the disk the bottleneck. Here a thread that wants a
write made durable queues it and waits for the store's lock; whichever thread gets the lock
first (the leader) runs every queued write in one transaction, then commits once. Every
thread whose write was in the batch returns after that commit: nothing returns before its
write is on disk, so the intent-before-call rule holds exactly as with one commit per write.

Each write still lands whole or not at all, and a write that fails fails alone: when any
write of a batch raises (or the commit does), the whole transaction is rolled back and the
batch runs again, each write in its own savepoint, so the failing one is undone alone and
its error goes to its own thread. The common case — nothing fails — pays no savepoints.
So a write may run more than once, and only its last run counts: it must do nothing but
call the store's write methods (which read what they need afresh in each transaction).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Pending(Generic[T]):
    __slots__ = ("done", "error", "value", "write")

    def __init__(self, write: Callable[[], T]) -> None:
        self.write = write
        self.done = False
        self.value: T | None = None
        self.error: BaseException | None = None

    def result(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # set when done without an error


class GroupCommit:
    """Batches ``run(write)`` calls of many threads into shared transactions.

    ``lock``: the store's lock, held for a whole transaction; ``transaction``: the store's
    nesting transaction (the outermost level commits, inner levels are savepoints);
    ``owned``: whether the calling thread is already inside a transaction (its write then
    runs at once, inside that transaction, and is durable when that one commits);
    ``alive``: whether the batch's transaction is still open after a write failed (SQLite
    rolls the whole transaction back itself on a full disk or an I/O error: then no write
    of the batch landed, and every one of them fails).
    """

    def __init__(
        self,
        lock: threading.RLock,
        transaction: Callable[[], AbstractContextManager[None]],
        owned: Callable[[], bool],
        alive: Callable[[], bool],
    ) -> None:
        self._lock = lock
        self._transaction = transaction
        self._owned = owned
        self._alive = alive
        self._queue: list[_Pending[Any]] = []
        self._queue_lock = threading.Lock()
        self.batches = 0  # transactions committed, for tests and benchmarks
        self.writes = 0

    def run(self, write: Callable[[], T]) -> T:
        """``write()`` in a transaction; returns once that transaction has committed."""
        if self._owned():
            return write()
        item = _Pending(write)
        with self._queue_lock:
            self._queue.append(item)
        with self._lock:
            if not item.done:  # nobody took it yet: lead a batch of everything queued
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        return item.result()

    def _commit(self, batch: list[_Pending[Any]]) -> None:
        try:
            if not self._together(batch):
                self._apart(batch)
        except BaseException as exc:  # the commit itself failed: no write of the batch landed
            for item in batch:
                item.value, item.error = None, item.error or exc
            raise
        finally:
            for item in batch:
                item.done = True

    def _together(self, batch: list[_Pending[Any]]) -> bool:
        """The batch in one transaction, no savepoints; False when a write or the commit raised an
        Exception (all of it rolled back). A single write's error is its own: it is set here."""
        try:
            with self._transaction():
                values = [item.write() for item in batch]
        except Exception as exc:
            if len(batch) > 1:
                return False
            batch[0].error = exc
            return True
        for item, value in zip(batch, values, strict=True):
            item.value = value
        self.batches += 1
        self.writes += len(batch)
        return True

    def _apart(self, batch: list[_Pending[Any]]) -> None:
        """The batch again, each write in its own savepoint: the failing ones are undone alone."""
        with self._transaction():
            for item in batch:
                try:
                    with self._transaction():  # a savepoint: this write alone is undone
                        item.value = item.write()
                except Exception as exc:
                    item.error = exc
                    if not self._alive():
                        raise
        self.batches += 1
        self.writes += len(batch)
