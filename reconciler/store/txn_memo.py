"""store.txn_memo: what one write transaction already knows, so its later writes need not read it again.

A SQLite write transaction (``BEGIN IMMEDIATE``) holds the file's write lock from its first
statement to its ``COMMIT``: no other connection changes a row in between. So inside one
transaction the lease rows a fence check read stay as they were (until this transaction
writes a lease itself), and the audit chain's head moves only by this transaction's own
appends. A group commit (``store.group_commit``) runs many ledger writes in one transaction;
with this memo the fence check and the head's two ``meta`` reads happen once per transaction,
not once per write, and the head's two ``meta`` writes once, just before ``COMMIT``.

Savepoints: each keeps a copy of the memo as it stood when the savepoint began; rolling back
to it restores that copy (the rows it remembered were rolled back too), releasing it drops
the copy. The memo lives only while the transaction is open: a commit or a rollback ends it,
and the next transaction reads everything afresh.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from reconciler.core.records import Lease


@dataclass
class Memo:
    """One open transaction's knowledge (mutable: it follows the transaction's writes)."""

    fences: tuple[Lease, ...] | None = None  # the fences found current in this transaction
    head: tuple[int, str] | None = None  # the audit chain's head (seq, hash) as this transaction has it
    head_moved: bool = False  # an append moved the head: ``meta`` is written before COMMIT


class Memos:
    """The memo of the open transaction (``current``; None outside one) and a copy per savepoint."""

    __slots__ = ("_saved", "current")

    def __init__(self) -> None:
        self.current: Memo | None = None
        self._saved: list[Memo] = []

    def begin(self) -> None:
        self.current, self._saved = Memo(), []

    def end(self) -> None:
        """The transaction committed or rolled back."""
        self.current, self._saved = None, []

    def savepoint(self) -> None:
        if self.current is not None:
            self._saved.append(dataclasses.replace(self.current))

    def release(self) -> None:
        if self._saved:
            self._saved.pop()

    def roll_back_savepoint(self) -> None:
        if self._saved:
            self.current = self._saved.pop()
