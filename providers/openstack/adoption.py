"""providers.openstack.adoption: taking over Nova servers that already run, and letting them go.

* ``describe``: one ``GET /servers/{id}`` per id (Nova's listing cannot filter on ids); an id
  that is no UUID, or names nothing, is left out;
* ``list_unowned``: the paginated ``GET /servers/detail`` of the whole project, keeping the
  servers whose metadata carries no owner mark;
* ``adopt``: the marks as metadata (``POST /servers/{id}/metadata`` merges them in, leaving
  the user's metadata as it is) and, as for the servers we create, the owner and token
  server tags Nova filters listings on (one ``PUT /servers/{id}/tags``, the server's own
  tags kept);
* ``release``: the metadata without our keys and the tags without ours (two ``PUT``).

An unowned server's user metadata are its user tags; its image is its image id, its disk
and size its flavor's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from providers.openstack.api import NovaApi
from providers.openstack.common import (
    GONE,
    STATUS,
    observed_from_server,
    owner_tag,
    token_tag,
)
from reconciler.core.errors import NotFoundError, PermanentError
from reconciler.core.model import (
    GUARD_TAGS,
    TAG_KEY,
    TAG_OWNER,
    TAG_PREFIX,
    ObservedServer,
    ServerStatus,
    Size,
)
from reconciler.core.provider import AdoptRequest, adoption_conflict, adoption_marks, released_tags, user_tags

Server = dict[str, Any]
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def described(provider: str, server: Mapping[str, Any]) -> ObservedServer | None:
    """A server as ``describe`` reports it, owned or not; None for one being deleted."""
    if server.get("status") in GONE:
        return None
    marks: Mapping[str, str] = server.get("metadata") or {}
    if marks.get(TAG_OWNER) and marks.get(TAG_KEY):
        return observed_from_server(provider, server)
    flavor = server.get("flavor") or {}
    image = server.get("image")
    return ObservedServer(
        provider=provider,
        resource_id=str(server["id"]),
        key=marks.get(TAG_KEY, ""),
        name=str(server.get("name", "")),
        owner=marks.get(TAG_OWNER, ""),
        status=STATUS.get(str(server.get("status")), ServerStatus.ERROR),
        size=Size(_int(flavor.get("vcpus")), _int(flavor.get("ram")), _int(flavor.get("disk"))),
        image=str(image.get("id", "")) if isinstance(image, dict) else "",
        spec_hash="",
        flavor=str(flavor.get("original_name") or flavor.get("id") or "") or None,
        tags=user_tags(marks),
    )


def get(api: NovaApi, server_id: str) -> Server | None:
    """One server, or None when the id is no UUID or names nothing."""
    if not _UUID.match(server_id):
        return None
    try:
        server: Server = api.request("servers.get", "GET", f"/servers/{server_id}")["server"]
    except NotFoundError:
        return None
    return server


def unowned(api: NovaApi) -> list[Server]:
    found: list[Server] = []
    for page in api.pages("servers.list", "/servers/detail", "servers", {}):
        found.extend(s for s in page if not (s.get("metadata") or {}).get(TAG_OWNER))
    return found


def adopt(api: NovaApi, server: ObservedServer, request: AdoptRequest, act: Callable[..., Any]) -> str:
    """Our marks as metadata and our two server tags; the server's id."""
    found = get(api, server.resource_id)
    if found is None or found.get("status") in GONE:
        raise NotFoundError(f"server {server.resource_id} is gone", code="Gone")
    metadata: Mapping[str, str] = found.get("metadata") or {}
    conflict = adoption_conflict(metadata, request)
    if conflict is not None:
        raise PermanentError(f"server {server.resource_id} cannot be adopted as {request.key}: {conflict}",
                             code="NotOwned")
    sid = server.resource_id
    marks = adoption_marks(request)
    stale = [k for k in GUARD_TAGS if k in metadata and k not in marks]
    for key in stale:  # a guard mark the request does not set: removed, as an update would
        act(sid, "servers.metadata.delete", "DELETE", f"/servers/{sid}/metadata/{key}")
    act(sid, "servers.metadata", "POST", f"/servers/{sid}/metadata", {"metadata": marks})
    tags = _tags(found, [owner_tag(request.owner), token_tag(request.token)])
    if set(tags) != set(found.get("tags") or ()):
        act(sid, "servers.tags", "PUT", f"/servers/{sid}/tags", {"tags": tags})
    return sid


def _tags(server: Mapping[str, Any], ours: Iterable[str]) -> list[str]:
    kept = [str(t) for t in server.get("tags") or () if not str(t).startswith(TAG_PREFIX)]
    return sorted({*kept, *ours})


def release(api: NovaApi, server: ObservedServer, act: Callable[..., Any]) -> None:
    """Remove our metadata keys and server tags, if ``server.owner`` still owns the server."""
    found = get(api, server.resource_id)
    if found is None or not server.owner:
        return
    metadata: Mapping[str, str] = found.get("metadata") or {}
    if metadata.get(TAG_OWNER) != server.owner:
        return
    sid = server.resource_id
    act(sid, "servers.metadata", "PUT", f"/servers/{sid}/metadata", {"metadata": released_tags(metadata)})
    act(sid, "servers.tags", "PUT", f"/servers/{sid}/tags", {"tags": _tags(found, [])})
