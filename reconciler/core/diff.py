"""core.diff: desired × observed → one change per server key, each with a human reason.

The diff is level-triggered: it looks only at what the YAML asks for now and what the
providers report now (plus, through ``last_generation``, the highest generation the usage
ledger has ever seen for a key, so a re-created server never reuses an old token). It
decides, per key, one of create / update in place / replace / delete / no-op:

* a key desired but not observed is created;
* an owned key no longer desired is deleted, unless it is protected: its server carries the
  protect mark, or its member says ``protect: true`` (a protected server is never replaced
  either: a replace deletes the old server). The mark is what holds whatever the YAML says
  now; the way out is to declare the member with ``protect: false``, apply (which removes
  the mark), then remove it;
* a spec-hash difference (template, image, disk, scripts, inputs) can only be replaced;
* a server in error state follows the member's failover policy;
* a size or flavor difference is resized in place when the provider can, the update
  policy allows it and any needed restart is allowed, else replaced;
* user tags are updated in place when the provider can, and the guard marks (protect,
  backup policy) always are, also when a refused replace leaves the server as it is;
* size and stopped-status drift follow the member's drift mode (heal / warn / ignore);
  ``held_drift`` says what warn and ignore leave alone (``core.status`` shows it as drift);
* a key not observed whose member names a running server for it (``adopt:``) adopts that
  server instead of creating one (``core.adoption``), among the ``described`` servers.

Several servers with one key (a crash mid-replace, or a duplicate) are collapsed to the
best one; the rest are deleted. Provider capabilities arrive as plain data: this module
imports no provider. Dependencies between changes are the graph's business.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from reconciler.core.adoption import done_note, plan_adoption
from reconciler.core.changes import Change, ChangeCause, FieldChange
from reconciler.core.errors import Diagnostic, UserError
from reconciler.core.keys import member_of, natural_key
from reconciler.core.model import (
    Action,
    DesiredServer,
    DriftMode,
    FailoverMode,
    ObservedServer,
    ServerStatus,
    UpdateStrategy,
    compute_spec_hash,
    idempotency_token,
)
from reconciler.core.provider import Capabilities

NONE_SHOWN = "(none)"
REASON_CREATE = "not present"
REASON_DELETE = "no longer in the configuration"
_PRECEDENCE = list(ChangeCause)


@dataclass(frozen=True)
class DiffResult:
    """The changes (``depends_on`` still empty), how many keys need nothing, and diagnostics."""

    changes: tuple[Change, ...]
    noop_count: int
    diagnostics: tuple[str, ...]


def desired_spec_hash(server: DesiredServer) -> str:
    """The server's spec hash, computed when the resolver left it empty."""
    return server.spec_hash or compute_spec_hash(server)


def diff(
    desired: Sequence[DesiredServer],
    observed: Sequence[ObservedServer],
    *,
    owner: str,
    capabilities: Mapping[str, Capabilities],
    last_generation: Callable[[str], int | None],
    protected_members: frozenset[str] = frozenset(),
    described: Sequence[ObservedServer] = (),
) -> DiffResult:
    """Compare desired with observed servers; return the changes sorted by key (natural order).

    ``capabilities`` is keyed by provider name (a provider not listed gets the defaults);
    ``protected_members`` holds ``cluster/member`` names with ``protect: true`` that may no
    longer appear in ``desired`` (members still desired are read from ``DesiredServer.protect``).
    ``described``: the servers the ``adopt:`` entries name, as their providers describe them;
    an entry that cannot be carried out is a ``UserError`` located at it.
    """
    want_by_key: dict[str, DesiredServer] = {}
    for server in desired:
        if server.key in want_by_key:
            raise UserError(f"two desired servers share the key {server.key}; each key must be unique")
        want_by_key[server.key] = server
    protected = set(protected_members) | {member_of(s.key) for s in desired if s.protect}

    diagnostics: list[str] = []
    groups: dict[str, list[ObservedServer]] = defaultdict(list)
    for seen in observed:
        if seen.owner != owner:
            diagnostics.append(
                f"{seen.key} ({seen.resource_id}) is owned by {seen.owner!r}, not {owner!r}; left alone"
            )
            continue
        groups[seen.key].append(seen)

    by_id = {(s.provider, s.resource_id): s for s in described}
    problems: list[Diagnostic] = []
    changes: list[Change] = []
    noop_count = 0
    for key in sorted(want_by_key.keys() | groups.keys(), key=natural_key):
        want = want_by_key.get(key)
        found = groups.get(key, [])
        if not found:
            assert want is not None
            generation = _next_generation(key, [], last_generation)
            if not want.adopt_id:
                changes.append(_create(want, owner=owner, generation=generation))
                continue
            caps = capabilities.get(want.provider, Capabilities())

            def follow(
                have: ObservedServer, want: DesiredServer = want, caps: Capabilities = caps
            ) -> tuple[Change | None, list[str]]:
                """What else the adopted server needs, compared as any owned one is."""
                return _compare(want, have, [have], owner=owner, caps=caps, last_generation=last_generation)

            adoption = plan_adoption(
                want,
                by_id.get((want.provider, want.adopt_id)),
                next((s for s in described if s.resource_id == want.adopt_id), None),
                owner=owner,
                spec_hash=desired_spec_hash(want),
                generation=generation,
                follow=follow,
            )
            changes.extend(adoption.changes)
            diagnostics.extend(adoption.notes)
            problems.extend(adoption.problems)
            continue
        by_yaml = member_of(key) in protected
        held = by_yaml or any(s.protected for s in found)
        best, *others = _rank(found, want)
        if want is not None and want.adopt_id:
            diagnostics.append(done_note(want, best))
        for extra in others:
            if held:
                diagnostics.append(
                    _held(key, want, by_yaml, f"duplicate {extra.resource_id} was not deleted")
                )
            else:
                changes.append(_delete(extra, change_id=f"delete:{key}#{extra.resource_id}",
                                       cause=ChangeCause.DUPLICATE,
                                       reason=f"duplicate of {best.resource_id}"))
        if want is None:
            if held:
                diagnostics.append(_held(key, want, by_yaml, "it was not deleted"))
            else:
                changes.append(_delete(best, change_id=f"delete:{key}", cause=ChangeCause.NO_LONGER_DECLARED,
                                       reason=REASON_DELETE))
            continue
        if best.provider != want.provider:
            generation = _next_generation(key, found, last_generation)
            changes.append(_create(want, owner=owner, generation=generation, cause=ChangeCause.MOVED,
                                   reason=f"moved from provider {best.provider} to {want.provider}"))
            if held:
                what = f"its server {best.resource_id} on provider {best.provider} was not deleted"
                diagnostics.append(_held(key, want, by_yaml, what))
            else:
                changes.append(_delete(best, change_id=f"delete:{key}", cause=ChangeCause.MOVED,
                                       reason=f"moved to provider {want.provider}"))
            continue
        caps = capabilities.get(want.provider, Capabilities())
        change, notes = _compare(want, best, found, owner=owner, caps=caps, last_generation=last_generation)
        diagnostics.extend(notes)
        if change is not None and change.action is Action.REPLACE and held:  # a replace deletes the server
            what = f"it needs replacing ({change.reason}) but {best.resource_id} was not replaced"
            diagnostics.append(_held(key, want, by_yaml, what) + ", or undo the change")
            change = _mark_update(want, best)  # the marks still follow the YAML (protect: false first)
        if change is None:
            noop_count += 1
        else:
            changes.append(change)

    if problems:
        raise UserError(problems)
    changes.sort(key=lambda c: (natural_key(c.key), c.id))
    return DiffResult(changes=tuple(changes), noop_count=noop_count, diagnostics=tuple(diagnostics))


# --- per-key decisions ----------------------------------------------------------------------
def _held(key: str, want: DesiredServer | None, by_yaml: bool, what: str) -> str:
    """Why a protected key's ``what`` stays, and the reviewable way out."""
    if by_yaml:
        why, way = "protect: true", "set protect: false and apply first"
    elif want is not None:
        why, way = "its server carries the protect mark", "apply protect: false first"
    else:
        why = "its server carries the protect mark"
        way = "declare it again with protect: false and apply, then remove it"
    return f"{key} is protected ({why}); {what} — {way}"


def _mark_fields(want: DesiredServer, have: ObservedServer) -> list[FieldChange]:
    """The guard marks (protect, backup policy) that differ from what the YAML says."""
    fields = []
    if have.protected != want.protect:
        fields.append(FieldChange("protect", str(have.protected).lower(), str(want.protect).lower()))
    if have.backup_policy != (want.backup_policy or ""):
        before, after = have.backup_policy or NONE_SHOWN, want.backup_policy or NONE_SHOWN
        fields.append(FieldChange("backup_policy", before, after))
    return fields


def _mark_update(want: DesiredServer, have: ObservedServer) -> Change | None:
    """An in-place update that rewrites only the guard marks, or None when they match."""
    fields = _mark_fields(want, have)
    if not fields:
        return None
    return Change(
        id=f"{Action.UPDATE.value}:{want.key}",
        action=Action.UPDATE,
        key=want.key,
        provider=want.provider,
        cause=ChangeCause.MARKS_CHANGED,
        reason="marks differ: " + _describe(fields),
        before=have,
        after=dataclasses.replace(want, size=have.size, flavor=have.flavor, tags=have.tags),
        generation=have.generation,
        fields=tuple(fields),
    )


def _rank(found: list[ObservedServer], want: DesiredServer | None) -> list[ObservedServer]:
    """Best first: right provider, matching spec hash, running, newest generation, then by id."""
    want_hash = desired_spec_hash(want) if want is not None else None

    def order(server: ObservedServer) -> tuple[bool, bool, bool, int, str]:
        return (
            not (want is not None and server.provider == want.provider),
            not (want_hash is not None and server.spec_hash == want_hash),
            server.status is not ServerStatus.RUNNING,
            -server.generation,
            server.resource_id,
        )

    return sorted(found, key=order)


def _next_generation(
    key: str, found: Sequence[ObservedServer], last_generation: Callable[[str], int | None]
) -> int:
    known = [s.generation for s in found]
    last = last_generation(key)
    if last is not None:
        known.append(last)
    return max(known) + 1 if known else 0


def _create(
    want: DesiredServer,
    *,
    owner: str,
    generation: int,
    cause: ChangeCause = ChangeCause.NOT_PRESENT,
    reason: str = REASON_CREATE,
) -> Change:
    spec_hash = desired_spec_hash(want)
    fields = [
        FieldChange("image", "", want.image),
        FieldChange("cpus", "", str(want.size.cpus)),
        FieldChange("memory_mb", "", str(want.size.memory_mb)),
        FieldChange("disk_gb", "", str(want.size.disk_gb)),
    ]
    if want.flavor is not None:
        fields.append(FieldChange("flavor", "", want.flavor))
    fields.extend(FieldChange(f"tags.{k}", "", v) for k, v in sorted(want.tags))
    return Change(
        id=f"{Action.CREATE.value}:{want.key}",
        action=Action.CREATE,
        key=want.key,
        provider=want.provider,
        cause=cause,
        reason=reason,
        after=want,
        token=idempotency_token(owner, want.key, spec_hash, generation),
        generation=generation,
        fields=tuple(fields),
    )


def _delete(have: ObservedServer, *, change_id: str, cause: ChangeCause, reason: str) -> Change:
    return Change(
        id=change_id,
        action=Action.DELETE,
        key=have.key,
        provider=have.provider,
        cause=cause,
        reason=reason,
        before=have,
        generation=have.generation,
        fields=(FieldChange("resource_id", have.resource_id, ""),),
    )


def _spec_fields(want: DesiredServer, have: ObservedServer) -> tuple[list[str], list[FieldChange]]:
    """What of the replace-only spec visibly changed (image, disk), else ``scripts/inputs``."""
    what: list[str] = []
    fields: list[FieldChange] = []
    if have.image != want.image:
        what.append("image")
        fields.append(FieldChange("image", have.image, want.image))
    if have.size.disk_gb != want.size.disk_gb:
        what.append("disk")
        fields.append(FieldChange("disk_gb", str(have.size.disk_gb), str(want.size.disk_gb)))
    if not what:
        what.append("scripts/inputs")
    fields.append(FieldChange("spec_hash", have.spec_hash, desired_spec_hash(want)))
    return what, fields


def _size_fields(want: DesiredServer, have: ObservedServer, caps: Capabilities) -> list[FieldChange]:
    """The flavor when the template names one, and cpus/memory unless the provider's flavor fixes them."""
    fields = []
    if want.flavor is not None and have.flavor != want.flavor:
        fields.append(FieldChange("flavor", have.flavor or NONE_SHOWN, want.flavor))
    if want.flavor is not None and caps.flavor_defines_size:
        return fields
    if have.size.cpus != want.size.cpus:
        fields.append(FieldChange("cpus", str(have.size.cpus), str(want.size.cpus)))
    if have.size.memory_mb != want.size.memory_mb:
        fields.append(FieldChange("memory_mb", str(have.size.memory_mb), str(want.size.memory_mb)))
    return fields


def _tag_fields(want: DesiredServer, have: ObservedServer) -> list[FieldChange]:
    wanted, seen = dict(want.tags), dict(have.tags)
    return [
        FieldChange(f"tags.{name}", seen.get(name, NONE_SHOWN), wanted.get(name, NONE_SHOWN))
        for name in sorted(wanted.keys() | seen.keys())
        if wanted.get(name) != seen.get(name)
    ]


def drift_fields(want: DesiredServer, have: ObservedServer, caps: Capabilities) -> list[FieldChange]:
    """What a member's ``drift:`` policy governs: the size (``_size_fields``) and a stopped server."""
    fields = _size_fields(want, have, caps)
    if have.status is ServerStatus.STOPPED:
        fields.append(FieldChange("status", have.status.value, ServerStatus.RUNNING.value))
    return fields


def held_drift(want: DesiredServer, have: ObservedServer, caps: Capabilities) -> tuple[FieldChange, ...]:
    """The drift a plan leaves alone because the member says ``drift: warn`` or ``drift: ignore``
    (nothing under ``heal``, nor when the spec changed: then the server is replaced anyway)."""
    if want.drift is DriftMode.HEAL or have.spec_hash != desired_spec_hash(want):
        return ()
    return tuple(drift_fields(want, have, caps))


def _resize_blocker(want: DesiredServer, caps: Capabilities) -> str | None:
    """Why a size change cannot happen in place, or None when it can."""
    if want.update_strategy is UpdateStrategy.REPLACE:
        return "update policy is replace"
    if not caps.resize_in_place:
        return "provider cannot resize in place"
    if caps.resize_needs_restart and not want.allow_restart:
        return "resize needs a restart and allow_restart is false"
    return None


def _describe(fields: Sequence[FieldChange]) -> str:
    return ", ".join(f"{f.name} {f.before} → {f.after}" for f in fields)


def _compare(
    want: DesiredServer,
    have: ObservedServer,
    found: Sequence[ObservedServer],
    *,
    owner: str,
    caps: Capabilities,
    last_generation: Callable[[str], int | None],
) -> tuple[Change | None, list[str]]:
    """The one change (if any) that brings ``have`` to ``want``, and diagnostics."""
    key = want.key
    notes: list[str] = []
    size_fields = _size_fields(want, have, caps)
    tag_fields = _tag_fields(want, have)

    if have.spec_hash != desired_spec_hash(want):
        what, spec_fields = _spec_fields(want, have)
        return _replace(want, have, found, owner=owner, cause=ChangeCause.SPEC_CHANGED,
                        reason="spec changed: " + ", ".join(what),
                        fields=spec_fields + size_fields + tag_fields, last_generation=last_generation), notes

    replace_reasons: list[str] = []
    update_reasons: list[str] = []
    fields: list[FieldChange] = []
    causes: list[ChangeCause] = []  # the change's cause is the first of these in ChangeCause's order

    if have.status is ServerStatus.ERROR:
        if want.failover is FailoverMode.REPLACE:
            replace_reasons.append("server is in error state")
            causes.append(ChangeCause.FAILED)
            fields.append(FieldChange("status", have.status.value, ServerStatus.RUNNING.value))
        elif want.failover is FailoverMode.RESTART and caps.start_stop:
            update_reasons.append("server is in error state (failover: restart)")
            causes.append(ChangeCause.FAILED)
            fields.append(FieldChange("status", have.status.value, ServerStatus.RUNNING.value))
        elif want.failover is FailoverMode.RESTART:
            notes.append(
                f"{key} is in error state but provider {want.provider} cannot restart it; left alone"
            )
        else:
            notes.append(f"{key} is in error state (failover: none); left alone")

    stopped = have.status is ServerStatus.STOPPED
    drifted = drift_fields(want, have, caps)
    if drifted and want.drift is DriftMode.WARN:
        notes.append(f"drift on {key}: {_describe(drifted)} (drift: warn)")
    elif drifted and want.drift is DriftMode.HEAL:
        if size_fields:
            blocker = _resize_blocker(want, caps)
            if blocker is None:
                update_reasons.append("resize " + _describe(size_fields))
            else:
                replace_reasons.append(f"resize {_describe(size_fields)}: {blocker}")
            fields.extend(size_fields)
        if stopped and caps.start_stop:
            update_reasons.append("server is stopped")
            causes.append(ChangeCause.STOPPED)
            fields.append(FieldChange("status", have.status.value, ServerStatus.RUNNING.value))
        if size_fields:
            causes.append(ChangeCause.SIZE_CHANGED)
        elif stopped:
            notes.append(f"{key} is stopped and provider {want.provider} cannot start it; left alone")

    if tag_fields and caps.update_tags:
        update_reasons.append("tags differ")
        causes.append(ChangeCause.TAGS_CHANGED)
        fields.extend(tag_fields)
    elif tag_fields:
        if replace_reasons:
            fields.extend(tag_fields)  # the replacement carries the desired tags anyway
        else:
            notes.append(
                f"tags on {key} differ ({_describe(tag_fields)}) but provider {want.provider} "
                "cannot update tags in place; left alone"
            )

    mark_fields = _mark_fields(want, have)
    if mark_fields:
        update_reasons.append("marks differ")
        causes.append(ChangeCause.MARKS_CHANGED)
        fields.extend(mark_fields)

    cause = min(causes, key=_PRECEDENCE.index) if causes else None
    if replace_reasons and cause is not None:
        reason = "; ".join(replace_reasons + update_reasons)
        return _replace(want, have, found, owner=owner, cause=cause, reason=reason, fields=fields,
                        last_generation=last_generation), notes
    if update_reasons and cause is not None:
        change = Change(
            id=f"{Action.UPDATE.value}:{key}",
            action=Action.UPDATE,
            key=key,
            provider=want.provider,
            cause=cause,
            reason="; ".join(update_reasons),
            before=have,
            after=want,
            generation=have.generation,
            fields=tuple(fields),
        )
        return change, notes
    return None, notes


def _replace(
    want: DesiredServer,
    have: ObservedServer,
    found: Sequence[ObservedServer],
    *,
    owner: str,
    cause: ChangeCause,
    reason: str,
    fields: Sequence[FieldChange],
    last_generation: Callable[[str], int | None],
) -> Change:
    generation = _next_generation(want.key, found, last_generation)
    return Change(
        id=f"{Action.REPLACE.value}:{want.key}",
        action=Action.REPLACE,
        key=want.key,
        provider=want.provider,
        cause=cause,
        reason=reason,
        before=have,
        after=want,
        token=idempotency_token(owner, want.key, desired_spec_hash(want), generation),
        generation=generation,
        fields=tuple(fields),
    )
