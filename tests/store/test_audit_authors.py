"""Who did it: every audit entry keeps its operator and its change's author and committer apart.

Schema version 3 adds ``author`` and ``committer`` to the audit table, in SQLite and
PostgreSQL alike. A database version 2 left behind — with entries hashed the way version 2
hashed them — is upgraded when opened: its entries read back with the author unknown (None),
its hash chain still verifies, and entries appended afterwards carry both fields, covered by
the chain (an edited author is caught).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

from reconciler.core.records import AuditAction, AuditQuery, Outcome
from reconciler.store.sqlite import SCHEMA_VERSION
from tests.store.conftest import Backend
from tests.store.helpers import T0, record
from tests.store.schema_v1 import GENESIS, statements_v1

V2_UPGRADE = (  # what version 2's migration added to a version 1 database
    "ALTER TABLE usage_interval ADD COLUMN granularity TEXT",
    "ALTER TABLE usage_interval ADD COLUMN billing TEXT",
    "UPDATE meta SET value = '2' WHERE name = 'schema_version'",
)


def _v2_hash(prev: str, seq: int, at: str, fields: dict[str, object]) -> str:
    """The chain hash exactly as version 2 computed it (no author, no committer)."""
    material = {"seq": seq, "at": at, **fields}
    blob = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + blob).encode()).hexdigest()


def _v2_entries(backend: str, count: int) -> list[str]:
    statements, prev = [], GENESIS
    for seq in range(1, count + 1):
        at = (T0 + timedelta(minutes=seq)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        fields: dict[str, object] = {
            "deployment": "prod", "run_id": "old", "actor": "Ada <ada@example.com>", "action": "create",
            "outcome": "succeeded", "key": f"shop/web/{seq}", "provider": "sim", "resource_id": f"i-{seq}",
            "token": "", "commit": "c0ffee", "detail": "", "error": "", "intent_seq": None,
        }
        digest = _v2_hash(prev, seq, at.replace(".000000Z", "Z"), fields)
        values = ", ".join(
            "NULL" if v is None else f"'{v}'"
            for v in (seq, at, *[fields[k] for k in ("deployment", "run_id", "actor", "action", "outcome",
                                                     "key", "provider", "resource_id", "token", "commit",
                                                     "detail", "error", "intent_seq")], prev, digest)
        )
        statements.append(
            "INSERT INTO audit (seq, at, deployment, run_id, actor, action, outcome, key, provider, "
            f"resource_id, token, commit_id, detail, error, intent_seq, prev_hash, hash) VALUES ({values})"
        )
        prev = digest
    return [
        *statements,
        f"UPDATE meta SET value = '{count}' WHERE name = 'audit_head_seq'",
        f"UPDATE meta SET value = '{prev}' WHERE name = 'audit_head_hash'",
    ]


def test_a_version_2_ledger_is_upgraded_its_authors_unknown_and_its_chain_intact(
    backend: Backend, db_path: Path
) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    backend.tamper(*statements_v1(backend.name), *V2_UPGRADE, *_v2_entries(backend.name, 3))
    store = backend.open()
    try:
        old = list(store.audit_log())
        assert [(e.record.actor, e.record.author, e.record.committer) for e in old] == [
            ("Ada <ada@example.com>", None, None)
        ] * 3
        assert store.verify().ok
        new = record(
            actor="ci:github ada (run 7)", author="Bob <bob@example.com>", committer="GitHub <gh@example.com>"
        )
        store.append(new, at=T0 + timedelta(hours=1))
        assert store.verify().ok
        [last] = list(store.audit_log(since_seq=3))
        assert (last.record.actor, last.record.author, last.record.committer) == (
            "ci:github ada (run 7)", "Bob <bob@example.com>", "GitHub <gh@example.com>"
        )
        version = store._query("SELECT value FROM meta WHERE name = 'schema_version'")  # type: ignore[attr-defined]
        assert str(version[0][0]) == str(SCHEMA_VERSION) == "3"
    finally:
        store.close()
    backend.tamper("UPDATE audit SET author = 'Mallory <m@example.com>' WHERE seq = 4")
    store = backend.open()
    try:
        result = store.verify()
        assert not result.ok and result.first_bad_seq == 4
    finally:
        store.close()


def test_the_query_filters_by_key_action_actor_commit_and_time(backend: Backend) -> None:
    store = backend.open()
    try:
        rows = [
            ("shop/web/0", AuditAction.CREATE, "ci:ada", "Ada <ada@x>", "aaa111"),
            ("shop/web/1", AuditAction.CREATE, "ci:ada", "Ada <ada@x>", "aaa111"),
            ("shop/web/10", AuditAction.DELETE, "bob", "Carol <carol@x>", "bbb222"),
            ("shop/db/0", AuditAction.UPDATE, "bob", "Carol <carol@x>", "bbb222"),
            ("shop/webby/0", AuditAction.CREATE, "bob", "Ada <ada@x>", "ccc333"),
        ]
        for i, (key, action, actor, author, commit) in enumerate(rows):
            store.append(record(key=key, action=action, actor=actor, author=author, commit=commit,
                                outcome=Outcome.SUCCEEDED), at=T0 + timedelta(hours=i))

        def keys(**query: object) -> list[str]:
            return [e.record.key for e in store.audit_search(AuditQuery(**query))]  # type: ignore[arg-type]

        assert keys(key="shop/web") == ["shop/web/0", "shop/web/1", "shop/web/10"]
        assert keys(key="shop/web/1") == ["shop/web/1"]
        assert keys(actions=(AuditAction.DELETE, AuditAction.UPDATE)) == ["shop/web/10", "shop/db/0"]
        assert keys(actor="ADA") == ["shop/web/0", "shop/web/1", "shop/webby/0"]  # operator or author
        assert keys(actor="carol") == ["shop/web/10", "shop/db/0"]
        assert keys(commit="bbb") == ["shop/web/10", "shop/db/0"]
        window = {"since": T0 + timedelta(hours=1), "until": T0 + timedelta(hours=3)}
        assert keys(**window) == ["shop/web/1", "shop/web/10"]
        assert keys(limit=2) == ["shop/db/0", "shop/webby/0"]  # the newest, in order
        assert keys(actor="50%_off") == []  # LIKE wildcards in the filter are literal
        assert keys(deployment="other") == []
    finally:
        store.close()
