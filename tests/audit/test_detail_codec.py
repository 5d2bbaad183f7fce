"""The audit-detail codec: every kind encodes to the exact text the ledger holds (literal JSON
and sentences of the stored format, so a change of format fails here), decodes back to
itself, and decodes anything else — garbage, other kinds, old or foreign entries — to None."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.core.audit_detail import (
    AdoptDetail,
    AlertDetail,
    ApplyEnded,
    ApplyStarted,
    AuditDetail,
    CommitAdopted,
    CommitRejected,
    CreateIntent,
    DaemonStarted,
    DaemonStopped,
    FailoverDetail,
    FailureSighting,
    ForgetDetail,
    IntentSettled,
    PlanRefused,
    PruneDetail,
    QuiesceDetail,
    ReplacedByRestore,
    Resize,
    RestoredFrom,
    ScaleDetail,
    ServerGone,
    SnapshotDetail,
    decode_detail,
    detail_generation,
    encode_detail,
)
from reconciler.core.backups import BackupKind
from reconciler.core.model import AlertEvent, BackupMethod, Quiesce, ScaleMetric, ServerStatus, Size
from reconciler.core.records import AuditAction, AuditRecord, Outcome

SMALL = Size(1, 1024, 40)
LARGE = Size(2, 4096, 80)
TAKEN = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
SNAPSHOT = SnapshotDetail(
    kind=BackupKind.TAKE,
    name="vault-db-0-20261102T0200Z",
    policy="nightly",
    method=BackupMethod.SNAPSHOT,
    server="i-0001",
    server_size=SMALL,
    image="debian-12",
)

# (detail, the action and outcome of the entry that carries it, the ledger's text for it)
STORED: list[tuple[AuditDetail, AuditAction, Outcome, str]] = [
    (
        CreateIntent(generation=3, spec_hash="sha256:ab12", size=SMALL),
        AuditAction.CREATE,
        Outcome.INTENT,
        '{"generation": 3, "spec_hash": "sha256:ab12", "size": "1 vCPU, 1024 MB, 40 GB"}',
    ),
    (
        CreateIntent(generation=0, spec_hash="sha256:cd34", size=LARGE, restore_from="snap-7"),
        AuditAction.CREATE,
        Outcome.INTENT,
        '{"generation": 0, "spec_hash": "sha256:cd34", "size": "2 vCPU, 4096 MB, 80 GB", '
        '"restore_from": "snap-7"}',
    ),
    (
        RestoredFrom(snapshot_id="snap-7"),
        AuditAction.CREATE,
        Outcome.SUCCEEDED,
        '{"restored_from": "snap-7"}',
    ),
    (
        Resize(before=SMALL, after=LARGE),
        AuditAction.UPDATE,
        Outcome.INTENT,
        '{"from": "1 vCPU, 1024 MB, 40 GB", "to": "2 vCPU, 4096 MB, 80 GB"}',
    ),
    (
        QuiesceDetail(backup="vault-db-0-20261102T0200Z", quiesce=Quiesce.SHUTDOWN),
        AuditAction.STOP,
        Outcome.INTENT,
        '{"backup": "vault-db-0-20261102T0200Z", "quiesce": "shutdown"}',
    ),
    (
        QuiesceDetail(backup="vault-db-0-20261102T0200Z"),
        AuditAction.START,
        Outcome.INTENT,
        '{"backup": "vault-db-0-20261102T0200Z", "quiesce": "shutdown"}',
    ),
    (
        SNAPSHOT,
        AuditAction.SNAPSHOT,
        Outcome.INTENT,
        '{"backup": "take", "name": "vault-db-0-20261102T0200Z", "policy": "nightly", "method": "snapshot", '
        '"server": "i-0001", "server_size": {"cpus": 1, "memory_mb": 1024, "disk_gb": 40}, '
        '"image": "debian-12"}',
    ),
    (
        SnapshotDetail(
            kind=BackupKind.FINAL,
            name="vault-db-0-final-i-0001",
            policy="nightly",
            method=BackupMethod.IMAGE,
            server="i-0001",
            server_size=SMALL,
            image="debian-12",
            size_gb=57.3,
        ),
        AuditAction.SNAPSHOT,
        Outcome.SUCCEEDED,
        '{"backup": "final", "name": "vault-db-0-final-i-0001", "policy": "nightly", "method": "image", '
        '"server": "i-0001", "server_size": {"cpus": 1, "memory_mb": 1024, "disk_gb": 40}, '
        '"image": "debian-12", "size_gb": 57.3}',
    ),
    (  # written before backups had methods: still read (a restore needs its server_size)
        SnapshotDetail(
            kind=BackupKind.TAKE,
            name="old",
            policy="nightly",
            method=None,
            server="i-0001",
            server_size=SMALL,
            image="debian-12",
            size_gb=40,
        ),
        AuditAction.SNAPSHOT,
        Outcome.SUCCEEDED,
        '{"backup": "take", "name": "old", "policy": "nightly", "server": "i-0001", '
        '"server_size": {"cpus": 1, "memory_mb": 1024, "disk_gb": 40}, "image": "debian-12", "size_gb": 40}',
    ),
    (
        PruneDetail(
            name="vault-db-0-20261102T0200Z", taken_at=TAKEN, size_gb=40.0, reason="past keep_last 1"
        ),
        AuditAction.DELETE_SNAPSHOT,
        Outcome.INTENT,
        '{"name": "vault-db-0-20261102T0200Z", "taken_at": "2026-11-02T02:00:00Z", "size_gb": 40.0, '
        '"reason": "past keep_last 1"}',
    ),
    (
        PruneDetail(name="foreign", taken_at=None, size_gb=0.0, reason="r"),
        AuditAction.DELETE_SNAPSHOT,
        Outcome.INTENT,
        '{"name": "foreign", "taken_at": null, "size_gb": 0.0, "reason": "r"}',
    ),
    (ReplacedByRestore(), AuditAction.DELETE, Outcome.INTENT, "replaced by a restore"),
    (
        IntentSettled(found=True),
        AuditAction.CREATE,
        Outcome.RECOVERED,
        "found by its idempotency token after an interrupted run",
    ),
    (
        IntentSettled(found=False),
        AuditAction.DELETE,
        Outcome.ABANDONED,
        "settled by observation after an interrupted run",
    ),
    (ServerGone(), AuditAction.OBSERVE_GONE, Outcome.INFO, "no longer observed; usage interval closed"),
    (
        ApplyStarted(changes=4, source="a plan file"),
        AuditAction.RUN_START,
        Outcome.INFO,
        "4 changes from a plan file",
    ),
    (
        ApplyStarted(changes=1, source="git@example:infra@abc1234", message="Scale web\n\nthree servers"),
        AuditAction.RUN_START,
        Outcome.INFO,
        "1 changes from git@example:infra@abc1234; commit message: Scale web\n\nthree servers",
    ),
    (
        ApplyEnded(succeeded=3, failed=1),
        AuditAction.RUN_END,
        Outcome.FAILED,
        "3 succeeded, 1 failed or skipped",
    ),
    (
        DaemonStarted(identity="daemon-1a2b3c4d@host:42", source="/srv/infra", branch="main", interval=60.0),
        AuditAction.RUN_START,
        Outcome.INFO,
        "daemon daemon-1a2b3c4d@host:42 started: /srv/infra branch main, every 60s",
    ),
    (
        DaemonStopped(identity="daemon-1a2b3c4d@host:42"),
        AuditAction.RUN_END,
        Outcome.INFO,
        "daemon daemon-1a2b3c4d@host:42 stopped",
    ),
    (
        ScaleDetail(
            current=2,
            desired=3,
            metric=ScaleMetric.CPU,
            target=50.0,
            mean=75.0,
            values=(("shop/web/0", 80.0), ("shop/web/1", 70.0)),
            reason="mean 75.0 above target 50",
        ),
        AuditAction.SCALE,
        Outcome.INFO,
        '{"from": 2, "mean": 75.0, "metric": "cpu", "reason": "mean 75.0 above target 50", "target": 50.0, '
        '"to": 3, "values": {"shop/web/0": 80.0, "shop/web/1": 70.0}}',
    ),
    (
        ScaleDetail(
            current=1, desired=1, metric=ScaleMetric.NETWORK, target=1e6, mean=None, values=(), reason="r"
        ),
        AuditAction.SCALE,
        Outcome.INFO,
        '{"from": 1, "mean": null, "metric": "network", "reason": "r", "target": 1000000.0, "to": 1, '
        '"values": {}}',
    ),
    (
        FailoverDetail(mode="replace", status="error", resource_id="i-0001", reason="server is in error"),
        AuditAction.FAILOVER,
        Outcome.INFO,
        '{"mode": "replace", "reason": "server is in error", "resource_id": "i-0001", "status": "error"}',
    ),
    (
        FailureSighting(status=ServerStatus.ERROR),
        AuditAction.FAILURE_SEEN,
        Outcome.INFO,
        '{"status": "error"}',
    ),
    (
        AlertDetail(event=AlertEvent.BACKUP_FAILED, summary="vault/db/0: snapshot failed"),
        AuditAction.ALERT,
        Outcome.INFO,
        '{"event": "backup-failed", "summary": "vault/db/0: snapshot failed"}',
    ),
    (
        CommitAdopted(message="three web servers", source="/srv/infra", branch="main", daemon="daemon-1@h:1"),
        AuditAction.COMMIT,
        Outcome.INFO,
        '{"branch": "main", "daemon": "daemon-1@h:1", "message": "three web servers", '
        '"source": "/srv/infra"}',
    ),
    (
        CommitRejected(message="typo", errors=("clusters/shop.yaml:3: unknown field",), kept="c0ffee"),
        AuditAction.REJECTED,
        Outcome.FAILED,
        '{"errors": ["clusters/shop.yaml:3: unknown field"], "kept": "c0ffee", "message": "typo"}',
    ),
    (
        CommitRejected(message="café", errors=(), kept=None),
        AuditAction.REJECTED,
        Outcome.FAILED,
        '{"errors": [], "kept": null, "message": "caf\\u00e9"}',
    ),
    (PlanRefused(), AuditAction.REJECTED, Outcome.INFO, "plan refused"),
    (
        AdoptDetail(server="i-0abc", generation=0, spec_hash="f159332ef45c8376", size=SMALL),
        AuditAction.ADOPT,
        Outcome.INTENT,
        '{"adopt": "i-0abc", "generation": 0, "spec_hash": "f159332ef45c8376", '
        '"server_size": "1 vCPU, 1024 MB, 40 GB"}',
    ),
    (ForgetDetail(server="i-0abc", name="web-a"), AuditAction.FORGET, Outcome.INTENT,
     '{"forget": "i-0abc", "name": "web-a"}'),
    (IntentSettled(found=False, effect="released"), AuditAction.FORGET, Outcome.RECOVERED,
     "it took effect: observed released after an interrupted run"),
]

KINDS = sorted({type(detail) for detail, *_ in STORED}, key=lambda kind: kind.__name__)


@pytest.mark.parametrize(("detail", "action", "outcome", "text"), STORED)
def test_encodes_to_the_stored_text_and_decodes_back(
    detail: AuditDetail, action: AuditAction, outcome: Outcome, text: str
) -> None:
    assert detail.encode() == text
    assert encode_detail(detail) == text
    assert type(detail).decode(text) == detail
    record = AuditRecord(deployment="d", run_id="r", actor="a", action=action, outcome=outcome, detail=text)
    assert decode_detail(record) == detail


def test_every_kind_has_a_stored_format() -> None:
    assert len(KINDS) == 22


GARBAGE = [
    "",
    "not json",
    "{",
    "null",
    "[]",
    "3",
    '"a string"',
    "{}",
    "[" * 100_000,  # too deep for the JSON parser
    '{"generation": true, "spec_hash": "x", "size": "1 vCPU, 1 MB, 1 GB"}',
    '{"generation": 1, "spec_hash": "x", "size": "one vCPU"}',
    '{"from": 1, "to": "3", "metric": "cpu", "target": 50, "mean": null, "values": {}, "reason": ""}',
    '{"from": 1, "to": 3, "metric": "heat", "target": 50, "mean": null, "values": {}, "reason": ""}',
    '{"from": 1, "to": 3, "metric": "cpu", "target": 50, "mean": null, "values": [], "reason": ""}',
    '{"backup": "take", "name": "n", "policy": "p", "server": "i", "server_size": {"cpus": "1"}, '
    '"image": ""}',
    '{"name": "n", "taken_at": "yesterday", "size_gb": 1, "reason": ""}',
    '{"name": "n", "taken_at": "2026-11-02T02:00:00", "size_gb": 1, "reason": ""}',  # no zone
    '{"event": "fire", "summary": "s"}',
    '{"status": "melted"}',
    '{"message": "m", "errors": [1], "kept": null}',
    "no longer observed",
    "x changes from y",
    "daemon started",
]


# Decoders ignore keys they do not know (a newer writer may add some), so a kind whose keys are
# a subset of another's reads that one too; entries are told apart by their action first.
SUBSET_OF: dict[type[AuditDetail], type[AuditDetail]] = {FailureSighting: FailoverDetail}


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_decoders_return_none_on_garbage_and_on_other_kinds(kind: type[AuditDetail]) -> None:
    for text in GARBAGE:
        assert kind.decode(text) is None, text
    for detail, *_ in STORED:
        if type(detail) is not kind and SUBSET_OF.get(kind) is not type(detail):
            assert kind.decode(detail.encode()) is None, (kind, detail)


def test_decode_detail_reads_the_kind_of_the_entry_and_none_else() -> None:
    def entry(action: AuditAction, outcome: Outcome, detail: str) -> AuditRecord:
        return AuditRecord(
            deployment="d", run_id="r", actor="a", action=action, outcome=outcome, detail=detail
        )

    scale = (
        '{"from": 1, "to": 2, "metric": "cpu", "target": 50, "mean": 60, "values": {"k": 60}, '
        '"reason": "r"}'
    )
    assert decode_detail(entry(AuditAction.SCALE, Outcome.INFO, scale)) == ScaleDetail(
        current=1, desired=2, metric=ScaleMetric.CPU, target=50, mean=60, values=(("k", 60),), reason="r"
    )
    assert decode_detail(entry(AuditAction.ALERT, Outcome.INFO, scale)) is None  # the wrong kind
    assert decode_detail(entry(AuditAction.CREATE, Outcome.SUCCEEDED, "")) is None  # no detail
    assert decode_detail(entry(AuditAction.SCALE, Outcome.INFO, "scale shop/web 4")) is None  # foreign
    assert decode_detail(entry(AuditAction.CREATE, Outcome.RECOVERED, "plan refused")) is None


def test_fields_not_written_today_are_ignored_and_values_come_back_sorted() -> None:
    text = (
        '{"to": 4, "from": 3, "metric": "memory", "target": 70, "mean": 80.5, "reason": "r", '
        '"values": {"b": 81, "a": 80}, "written_by": "a newer reconciler"}'
    )
    decision = ScaleDetail.decode(text)
    assert decision is not None and decision.values == (("a", 80), ("b", 81))
    assert decision.encode() == (
        '{"from": 3, "mean": 80.5, "metric": "memory", "reason": "r", "target": 70, "to": 4, '
        '"values": {"a": 80, "b": 81}}'
    )


@pytest.mark.parametrize(
    ("detail", "generation"),
    [
        ('{"generation": 3, "spec_hash": "x", "size": "1 vCPU, 1 MB, 1 GB"}', 3),
        ('{"generation": -2}', -2),  # any intent's JSON object counts, as in the stores' SQL
        ('{"generation": 9223372036854775807}', 2**63 - 1),
        ('{"generation": 9223372036854775808}', None),  # beyond 64 bits
        ('{"generation": true}', None),
        ('{"generation": 3.0}', None),
        ('{"generation": "3"}', None),
        ('{"spec_hash": "x"}', None),
        ("[3]", None),
        ("generation 3", None),
        ("", None),
    ],
)
def test_detail_generation_mirrors_the_stores_rule(detail: str, generation: int | None) -> None:
    assert detail_generation(detail) == generation
