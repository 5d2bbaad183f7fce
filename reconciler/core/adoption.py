"""core.adoption: taking over a server that already runs — the ``adopt`` change and what follows it.

A member's ``adopt: {0: <resource id>}`` names, per ordinal, a server that runs already. When
no owned server carries the key yet, ``diff`` asks ``plan_adoption`` with the server as the
provider described it:

* it must exist on the member's provider (one found on another provider, or nowhere, is a
  located error), and carry no owner mark (one another deployment owns, or this one under
  another key, is a located error);
* the adopt writes the ownership and guard marks and nothing else. Its spec hash is the
  template's when what can be seen of the spec (image, disk — where the provider reports
  them) matches the server, so that an
  adopted server is never replaced for scripts it was not booted with; otherwise a mark that
  matches no template (``MISMATCH``), so the replacement the difference needs is planned;
* what else differs is planned by the ordinary comparison (``follow``), against the server
  as it will be once adopted: an in-place update (size, tags, a stopped server started)
  comes after the adopt. A replacement is refused — it would delete the server being taken
  over — unless the member says ``allow_replace_on_adopt: true`` (and never under
  ``protect: true``).

Once the key is owned, the entry is a no-op and ``diff`` says it can be removed. Pure: no
provider, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.core.changes import Change, ChangeCause, FieldChange
from reconciler.core.errors import Diagnostic
from reconciler.core.keys import member_of
from reconciler.core.model import Action, DesiredServer, ObservedServer, idempotency_token

MISMATCH = "adopted"  # the spec hash written when the server's image or disk differs from the template's
NONE_SHOWN = "(none)"

Follow = Callable[[ObservedServer], tuple[Change | None, list[str]]]


@dataclass(frozen=True)
class Adoption:
    """The changes adopting one key takes (the adopt first), notes, and why it is refused."""

    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()
    problems: tuple[Diagnostic, ...] = ()


def located(want: DesiredServer, message: str) -> Diagnostic:
    """A problem of ``want``'s adopt: entry, at the line it was written (else the member's)."""
    where = want.adopt_location or want.location
    if where is None:
        return Diagnostic("adopt", None, message)
    return Diagnostic(where.file, where.line, message)


def done_note(want: DesiredServer, have: ObservedServer) -> str:
    """What plan and validate say of an adopt: entry whose key is managed already."""
    if have.resource_id == want.adopt_id:
        return (
            f"{want.key} was adopted ({want.adopt_id}); its adopt: entry is a no-op now and can be removed"
        )
    return (
        f"{want.key} is managed already (as {have.resource_id}); its adopt: entry for {want.adopt_id} "
        "is a no-op and can be removed"
    )


def spec_matches(want: DesiredServer, server: ObservedServer) -> bool:
    """What can be seen of the replace-only spec agrees: the image and the disk, each where the
    provider can tell it (an image of "" or a disk of 0 is unknown, never a difference)."""
    image_ok = not server.image or server.image == want.image
    return image_ok and (server.size.disk_gb <= 0 or server.size.disk_gb == want.size.disk_gb)


def plan_adoption(
    want: DesiredServer,
    candidate: ObservedServer | None,
    elsewhere: ObservedServer | None,
    *,
    owner: str,
    spec_hash: str,
    generation: int,
    follow: Follow,
) -> Adoption:
    """Adopt ``candidate`` (the server ``want.adopt_id`` names on ``want.provider``, None when
    it has none; ``elsewhere``: one by that id on another provider) as ``want.key``."""
    subject = f"{member_of(want.key)} adopt: {want.adopt_id} (for {want.key})"
    if candidate is None:
        if elsewhere is not None:
            message = (
                f"{subject}: the server is on provider {elsewhere.provider}, not on provider "
                f"{want.provider} that the member uses; set the member's provider, or fix the id"
            )
        else:
            message = (
                f"{subject}: provider {want.provider} has no server {want.adopt_id}; check the id "
                f"(reconciler generate PATH --provider {want.provider} lists the servers it can adopt)"
            )
        return Adoption(problems=(located(want, message),))
    if candidate.owner and candidate.owner != owner:
        message = (
            f"{subject}: the server is owned by deployment {candidate.owner!r}; a server another "
            "deployment owns is never taken over — remove the entry, or forget it there first"
        )
        return Adoption(problems=(located(want, message),))
    if candidate.owner:
        message = (
            f"{subject}: this deployment owns the server already, as {candidate.key or 'another key'}; "
            "one server cannot be two keys — remove the entry"
        )
        return Adoption(problems=(located(want, message),))

    written = spec_hash if spec_matches(want, candidate) else MISMATCH
    token = idempotency_token(owner, want.key, written, generation)
    adopted = dataclasses.replace(
        candidate,
        owner=owner,
        key=want.key,
        spec_hash=written,
        generation=generation,
        token=token,
        protected=want.protect,
        backup_policy=want.backup_policy or "",
    )
    adopt = Change(
        id=f"{Action.ADOPT.value}:{want.key}",
        action=Action.ADOPT,
        key=want.key,
        provider=want.provider,
        cause=ChangeCause.ADOPTED,
        reason=f"take over {candidate.resource_id} ({candidate.name}) as it runs",
        before=candidate,
        after=want,
        token=token,
        generation=generation,
        fields=(
            FieldChange("resource_id", "", candidate.resource_id),
            FieldChange("owner", NONE_SHOWN, owner),
        ),
    )
    then, notes = follow(adopted)
    if then is not None and then.action is Action.REPLACE:
        if want.protect or not want.allow_replace_on_adopt:
            why = (
                "the member says protect: true" if want.protect
                else "set allow_replace_on_adopt: true on the member to allow it"
            )
            message = (
                f"{subject}: once adopted the server would need a replacement ({then.reason}), which "
                f"deletes the server being taken over; {why}, or make the template match the server"
            )
            return Adoption(problems=(located(want, message),))
    return Adoption(changes=(adopt,) if then is None else (adopt, then), notes=tuple(notes))
