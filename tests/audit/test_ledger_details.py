"""The details a real run leaves in the ledger decode to their types: an apply on simcloud, a
quiesced backup cycle with a prune, a resize, a restore, an interrupted intent settled by the
next apply, and a daemon's scale decision — each entry read back through the codec, and the
ledger readers (last decisions, a backup's server size) answering from those entries."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from reconciler.backup.restore import restore
from reconciler.config import load_desired_state
from reconciler.core.audit_detail import (
    ApplyEnded,
    ApplyStarted,
    AuditDetail,
    CreateIntent,
    IntentSettled,
    PruneDetail,
    QuiesceDetail,
    ReplacedByRestore,
    Resize,
    RestoredFrom,
    ScaleDetail,
    SnapshotDetail,
    decode_detail,
)
from reconciler.core.backups import BackupKind
from reconciler.core.model import Autoscale, Quiesce, ScaleMetric, Size
from reconciler.core.records import AuditAction, AuditEntry, Outcome
from reconciler.daemon import autoscale
from reconciler.run.audit import AuditWriter, backup_server_size, last_decisions
from tests.backup.support import (
    DEPLOYMENT,
    EPOCH,
    apply,
    audit,
    cycle,
    policy_yaml,
    run_context,
    snapshots,
    template_yaml,
    workspace,
    write_desired,
)

KEY = f"{DEPLOYMENT}/db/0"
FIRST = EPOCH + timedelta(hours=1)  # the nightly tick has passed: a backup is due
SECOND = FIRST + timedelta(days=1)  # the next night: a new backup, the first one pruned
SMALL, LARGE = Size(1, 1024, 40), Size(2, 1024, 40)


Read = tuple[AuditAction, Outcome, AuditDetail | None]


def _details(entries: list[AuditEntry], since: int = 0) -> list[Read]:
    return [(e.record.action, e.record.outcome, decode_detail(e.record)) for e in entries if e.seq > since]


def _kinds(entries: list[AuditEntry], since: int = 0) -> list[tuple[str, str, str]]:
    return [
        (action.value, outcome.value, type(detail).__name__ if detail is not None else "")
        for action, outcome, detail in _details(entries, since)
    ]


def test_an_apply_backups_a_resize_and_a_restore_write_typed_details(tmp_path: Path) -> None:
    policy = policy_yaml(quiesce="shutdown", keep_last=1, keep_daily=0, keep_weekly=0)
    desired = write_desired(tmp_path, policy=policy)
    state = tmp_path / "state"

    assert apply(desired, state, EPOCH).ok
    assert _kinds(audit(state)) == [
        ("run.start", "info", "ApplyStarted"),
        ("create", "intent", "CreateIntent"),
        ("create", "succeeded", ""),
        ("run.end", "succeeded", "ApplyEnded"),
    ]
    start, intent, _, end = _details(audit(state))
    assert start[2] == ApplyStarted(changes=1, source=str(desired))
    assert end[2] == ApplyEnded(succeeded=1, failed=0)
    assert isinstance(intent[2], CreateIntent)
    assert (intent[2].generation, intent[2].size, intent[2].restore_from) == (0, SMALL, None)

    seen = audit(state)[-1].seq
    assert cycle(desired, state, FIRST).ok
    [first] = snapshots(state, FIRST)
    assert _kinds(audit(state), seen) == [
        ("stop", "intent", "QuiesceDetail"),
        ("stop", "succeeded", ""),
        ("snapshot", "intent", "SnapshotDetail"),
        ("snapshot", "succeeded", "SnapshotDetail"),
        ("start", "intent", "QuiesceDetail"),
        ("start", "succeeded", ""),
    ]
    stop, _, taking, taken, *_ = _details(audit(state), seen)
    assert stop[2] == QuiesceDetail(backup=first.name, quiesce=Quiesce.SHUTDOWN)
    assert isinstance(taking[2], SnapshotDetail) and isinstance(taken[2], SnapshotDetail)
    assert (taking[2].kind, taking[2].name, taking[2].server_size, taking[2].size_gb) == (
        BackupKind.TAKE, first.name, SMALL, None
    )
    assert taken[2].size_gb == first.size_gb and taken[2].policy == "nightly"

    seen = audit(state)[-1].seq
    assert cycle(desired, state, SECOND).ok
    [second] = snapshots(state, SECOND)
    prunes = [d for a, o, d in _details(audit(state), seen) if a is AuditAction.DELETE_SNAPSHOT]
    assert [type(d) for d in prunes] == [PruneDetail, type(None)]  # the intent, then its outcome
    prune = prunes[0]
    assert isinstance(prune, PruneDetail) and prune.reason
    assert (prune.name, prune.taken_at, prune.size_gb) == (first.name, first.created_at, first.size_gb)

    write_desired(tmp_path, policy=policy, template=template_yaml(cpus=2))
    seen = audit(state)[-1].seq
    assert apply(desired, state, SECOND + timedelta(hours=1)).ok
    updates = _details(audit(state), seen)
    resizes = [d for a, o, d in updates if (a, o) == (AuditAction.UPDATE, Outcome.INTENT)]
    assert resizes == [Resize(before=SMALL, after=LARGE)]

    # a restore from the backup taken before the resize: a server of the size it had then
    seen = audit(state)[-1].seq
    ws = workspace(state, SECOND + timedelta(hours=2))
    try:
        assert backup_server_size(ws.store(), DEPLOYMENT, KEY, second.snapshot_id) == SMALL
        result = restore(load_desired_state(desired), ws, run_context(), KEY, second.snapshot_id,
                         confirm=lambda _: True)
    finally:
        ws.close()
    assert result.server is not None and result.server.size == SMALL
    restored = _details(audit(state), seen)
    assert (AuditAction.CREATE, Outcome.SUCCEEDED, RestoredFrom(snapshot_id=second.snapshot_id)) in restored
    [create] = [d for a, o, d in restored if (a, o) == (AuditAction.CREATE, Outcome.INTENT)]
    assert isinstance(create, CreateIntent)
    assert (create.generation, create.restore_from, create.size) == (1, second.snapshot_id, SMALL)
    finals = [d for a, o, d in restored if isinstance(d, SnapshotDetail) and d.kind is BackupKind.FINAL]
    assert len(finals) == 2  # the final backup's intent and outcome, before the old server goes
    assert (AuditAction.DELETE, Outcome.INTENT, ReplacedByRestore()) in restored

    # every entry written with a detail reads back as a typed one
    unreadable = [e for e in audit(state) if e.record.detail and decode_detail(e.record) is None]
    assert unreadable == []


def test_an_interrupted_intent_is_settled_with_a_typed_detail(tmp_path: Path) -> None:
    desired = write_desired(tmp_path)
    state = tmp_path / "state"
    assert apply(desired, state, EPOCH).ok
    ws = workspace(state, EPOCH + timedelta(minutes=1))
    try:
        writer = AuditWriter(ws.store(), ws.clock, DEPLOYMENT, run_context())
        left = writer.record(
            f"{DEPLOYMENT}/db/9", "sim", AuditAction.CREATE, Outcome.INTENT, token="never-created",
            detail=CreateIntent(generation=0, spec_hash="sha256:00", size=SMALL),
        )
    finally:
        ws.close()
    assert apply(desired, state, EPOCH + timedelta(minutes=2)).ok
    [settled] = [e for e in audit(state) if e.record.intent_seq == left.seq]
    assert settled.record.outcome is Outcome.ABANDONED
    assert decode_detail(settled.record) == IntentSettled(found=False)


def test_a_daemon_scale_decision_is_read_back_by_last_decisions(tmp_path: Path) -> None:
    state = tmp_path / "state"
    spec = Autoscale(member="shop/web", min=1, max=4, metric=ScaleMetric.CPU, target=50.0)
    decision = autoscale.decide(spec, 2, {"shop/web/0": 80.12345, "shop/web/1": 70.0}, None, EPOCH)
    ws = workspace(state, EPOCH)
    try:
        store = ws.store()
        autoscale.record(store, "shop", run_context(), decision, EPOCH)
        [entry] = store.recent_audit("shop", [AuditAction.SCALE])
        detail = decode_detail(entry.record)
        assert detail == ScaleDetail(
            current=2,
            desired=3,
            metric=ScaleMetric.CPU,
            target=50.0,
            mean=75.062,
            values=(("shop/web/0", 80.123), ("shop/web/1", 70.0)),
            reason=decision.reason,
        )
        assert entry.record.detail == decision.detail() and entry.at == EPOCH
        [(member, last)] = last_decisions(store, "shop").items()
        assert (member, last.count, last.at) == ("shop/web", 3, EPOCH)
    finally:
        ws.close()
