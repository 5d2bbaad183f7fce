"""providers.openstack.provider: OpenStack Nova servers behind the provider contract, as ``type: openstack``.

Design decisions, each forced by Nova:

* **Ownership is server metadata** (``providers.openstack.common``); two server tags carrying
  the owner and the token let Nova filter listings server-side. ``observe`` is one paginated
  ``GET /servers/detail?tags=…`` (1000 per page unless ``page_size`` says less), and every
  server's metadata is checked client-side, since the API cannot filter on metadata.
* **Nova has no idempotency token**: a create first looks for a server carrying the token
  tag (one listing call); only when none exists does it ``POST /servers``. A retried create
  therefore resumes the one that was lost: it waits for the same server to leave BUILD.
* **Waits are bounded polls** (``wait_timeout``, ``poll_interval``): for ACTIVE after a build,
  VERIFY_RESIZE after a resize, SHUTOFF/ACTIVE after stop/start, 404 after a delete. A build
  that ends in ERROR ("No valid host was found", a driver failure) is deleted and reported
  as a ``PermanentError`` carrying Nova's fault message; a wait that runs out is transient.
* **409 means a task is running** on the server (``task_state``): every server action waits
  the task out and retries, instead of failing; a 409 with no task running is a state
  conflict and is reported with Nova's message.
* **Resizing** is ``resize`` + ``confirmResize`` (Nova restarts the server to do it, so a
  member whose update policy forbids restarts is refused before anything changes). The root
  disk never changes in place. Tags are metadata: one ``PUT`` that keeps our marks.
* **Backups** are Nova ``createImage`` snapshots carrying our marks as image properties; they
  are listed and deleted through Nova's image API (microversion 2.35), so the provider needs
  only the compute endpoint. Both backup methods take such an image (Nova has no other kind
  that outlives the server); the method is recorded on it. A **restore** is a create whose
  server boots from the backup image instead of the template's (same token lookup, same wait),
  refused before any ``POST`` when the image is missing, not ours, or of a larger disk.
* **Usage samples** come from server diagnostics where the cloud's policy allows them (admin
  by default); elsewhere ``metrics`` returns nothing.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from providers.openstack import adoption
from providers.openstack.api import IMAGE_PROXY_MICROVERSION, NovaApi, OpenStackSettings
from providers.openstack.common import (
    GONE,
    MARK_DISK,
    MARK_IMAGE,
    MARK_METHOD,
    MARK_RESTORED_FROM,
    MARK_SIZE,
    MARK_SNAPSHOT_OF,
    Flavor,
    busy,
    fault_message,
    find_flavor,
    observed_from_server,
    owner_tag,
    pick_flavor,
    size_mark,
    snapshot_from_image,
    source_disk_gb,
    task_state,
    token_tag,
    user_metadata,
)
from providers.openstack.spec import CAPABILITIES, SPEC_SCHEMA, USER_DATA_MAX
from reconciler.core.clock import isoformat
from reconciler.core.errors import NotFoundError, PermanentError, TransientError
from reconciler.core.model import (
    TAG_CLUSTER,
    TAG_KEY,
    TAG_OWNER,
    TAG_POLICY,
    TAG_TAKEN_AT,
    TAG_TOKEN,
    CreateRequest,
    MetricSample,
    ObservedServer,
    ProviderConfig,
    ServerStatus,
    Size,
    Snapshot,
    SnapshotRequest,
    UpdateRequest,
)
from reconciler.core.provider import (
    AdoptRequest,
    Capabilities,
    Provider,
    ProviderContext,
    ownership_tags,
    register,
    updated_tags,
)

Server = dict[str, Any]
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_SETTLED = frozenset({"ACTIVE", "SHUTOFF", "VERIFY_RESIZE", "SUSPENDED", "PAUSED",
                      "SHELVED", "SHELVED_OFFLOADED", "RESCUE", "UNKNOWN"})


@register("openstack")
class OpenStackProvider(Provider):
    """Nova servers in one project and region; backups are Nova snapshots (createImage)."""

    capabilities: ClassVar[Capabilities] = CAPABILITIES
    spec_schema: ClassVar[dict[str, Any]] = SPEC_SCHEMA

    def __init__(self, config: ProviderConfig, context: ProviderContext) -> None:
        super().__init__(config, context)
        self.settings = OpenStackSettings.from_spec(config.name, config.spec)
        self.api = NovaApi(self.settings, self.count_call)
        self._lock = threading.Lock()
        self._flavors: list[Flavor] | None = None
        self._images: dict[str, str] = {}
        self._networks: Any = None

    def close(self) -> None:
        self.api.close()

    # --- reading --------------------------------------------------------------------------
    def _list(self, tags: list[str]) -> list[Server]:
        found: list[Server] = []
        for page in self.api.pages("servers.list", "/servers/detail", "servers", {"tags": ",".join(tags)}):
            found.extend(page)
        return found

    def _sorted(self, servers: list[Server]) -> list[ObservedServer]:
        observed = (observed_from_server(self.name, s) for s in servers)
        found = (s for s in observed if s is not None)
        return sorted(found, key=lambda s: (s.key, s.generation, s.resource_id))

    def observe(self, owner: str) -> list[ObservedServer]:
        return self._sorted([s for s in self._list([owner_tag(owner)])
                             if (s.get("metadata") or {}).get(TAG_OWNER) == owner])

    def _by_token(self, owner: str, token: str) -> list[Server]:
        return [s for s in self._list([owner_tag(owner), token_tag(token)])
                if (s.get("metadata") or {}).get(TAG_OWNER) == owner
                and s["metadata"].get(TAG_TOKEN) == token and s.get("status") not in GONE]

    def lookup(self, owner: str, token: str) -> ObservedServer | None:
        found = self._sorted(self._by_token(owner, token))
        return min(found, key=lambda s: (s.created_at is None, s.created_at, s.resource_id), default=None)

    def _get(self, server_id: str) -> Server:
        server: Server = self.api.request("servers.get", "GET", f"/servers/{server_id}")["server"]
        return server

    def _owned(self, server: ObservedServer) -> Server:
        """The live server behind ``server``, refusing one that is gone or not ours."""
        try:
            found = self._get(server.resource_id)
        except NotFoundError:
            raise NotFoundError(f"server {server.resource_id} ({server.key}) is gone", code="Gone") from None
        if found.get("status") in GONE:
            raise NotFoundError(f"server {server.resource_id} ({server.key}) is being deleted", code="Gone")
        owner = (found.get("metadata") or {}).get(TAG_OWNER)
        if owner != server.owner:
            raise PermanentError(f"server {server.resource_id} is owned by {owner or 'nobody'}, not "
                                 f"{server.owner}; the reconciler leaves it alone", code="NotOwned")
        return found

    def _observed(self, server: Server) -> ObservedServer:
        observed = observed_from_server(self.name, server)
        if observed is None:
            raise NotFoundError(f"server {server.get('id')} lost its ownership metadata", code="Gone")
        return observed

    # --- taking over (providers.openstack.adoption) ---------------------------------------------
    def describe(self, resource_ids: Sequence[str]) -> list[ObservedServer]:
        found = (adoption.get(self.api, rid) for rid in dict.fromkeys(resource_ids))
        servers = (adoption.described(self.name, f) for f in found if f is not None)
        return [s for s in servers if s is not None]

    def list_unowned(self) -> list[ObservedServer]:
        found = (adoption.described(self.name, s) for s in adoption.unowned(self.api))
        return sorted((s for s in found if s is not None), key=lambda s: (s.name, s.resource_id))

    def adopt(self, server: ObservedServer, request: AdoptRequest) -> ObservedServer:
        return self._observed(self._get(adoption.adopt(self.api, server, request, self._act)))

    def release(self, server: ObservedServer) -> None:
        adoption.release(self.api, server, self._act)

    # --- waiting --------------------------------------------------------------------------
    def _wait(self, server_id: str, done: Callable[[Server], bool], what: str) -> Server:
        """Poll the server until ``done`` (bounded); ERROR on the way is Nova's permanent refusal."""
        deadline = self.context.clock.monotonic() + self.settings.wait_timeout
        while True:
            server = self._get(server_id)
            if done(server):
                return server
            if server.get("status") == "ERROR" and task_state(server) is None:
                fault = fault_message(server)
                code = "NoValidHost" if "no valid host" in fault.lower() else "ServerError"
                raise PermanentError(f"{what}: Nova put server {server_id} in ERROR: {fault}", code=code)
            if self.context.clock.monotonic() >= deadline:
                raise TransientError(f"{what}: server {server_id} is still {server.get('status')} "
                                     f"(task {task_state(server) or 'none'}) after "
                                     f"{self.settings.wait_timeout:g}s", code="WaitTimeout")
            time.sleep(self.settings.poll_interval)

    def _settled(self, server_id: str, what: str) -> Server:
        return self._wait(server_id, lambda s: s.get("status") in _SETTLED and task_state(s) is None, what)

    def _act(self, server_id: str, operation: str, method: str, path: str, body: Any = None) -> Any:
        """A call on one server that waits out Nova's 409 while a task runs on it, then retries."""
        deadline = self.context.clock.monotonic() + self.settings.wait_timeout
        idle_conflicts = 0
        while True:
            try:
                return self.api.request(operation, method, path, body=body)
            except TransientError as exc:
                if exc.code != "Conflict":
                    raise
                conflict = exc
            server = self._get(server_id)
            if not busy(server):
                idle_conflicts += 1
                if idle_conflicts > 1:  # no task to wait for: the server's state forbids the call
                    raise PermanentError(str(conflict), code="Conflict") from None
                continue
            while busy(server):
                if self.context.clock.monotonic() >= deadline:
                    doing = task_state(server) or server.get("status")
                    raise TransientError(f"{operation}: server {server_id} is still busy ({doing}) "
                                         f"after {self.settings.wait_timeout:g}s", code="Conflict")
                time.sleep(self.settings.poll_interval)
                server = self._get(server_id)

    def _action(self, server_id: str, name: str, argument: Any = None) -> Any:
        return self._act(server_id, f"servers.action.{name}", "POST", f"/servers/{server_id}/action",
                         {name: argument})

    # --- what a create needs ----------------------------------------------------------------
    def _flavor_list(self) -> list[Flavor]:
        with self._lock:
            if self._flavors is not None:
                return self._flavors
        flavors: list[Flavor] = []
        for page in self.api.pages("flavors.list", "/flavors/detail", "flavors", {}):
            flavors.extend(Flavor.from_api(f) for f in page if not f.get("OS-FLV-DISABLED:disabled"))
        with self._lock:
            self._flavors = flavors
        return flavors

    def _flavor_for(self, flavor: str | None, request_size: Size) -> Flavor:
        if flavor is not None:
            return find_flavor(self._flavor_list(), flavor)
        return pick_flavor(self._flavor_list(), request_size, root_disk=not self.settings.boot_from_volume)

    def _image_id(self, image: str) -> str:
        """An image id: ids pass through (Nova checks them), names are looked up once."""
        if _UUID.match(image):
            return image
        with self._lock:
            if image in self._images:
                return self._images[image]
        matches: list[str] = []
        for page in self.api.pages("images.list", "/images/detail", "images", {"name": image},
                                   microversion=IMAGE_PROXY_MICROVERSION):
            matches.extend(str(i["id"]) for i in page
                           if i.get("name") == image and i.get("status") == "ACTIVE")
        if len(matches) != 1:
            raise PermanentError(
                f"image {image!r}: {'no active image' if not matches else f'{len(matches)} active images'} "
                "with that name on the cloud; set image.openstack to an image id or a unique name",
                code="UnknownImage" if not matches else "AmbiguousImage")
        with self._lock:
            self._images[image] = matches[0]
        return matches[0]

    def _network_spec(self) -> Any:
        """What ``networks`` is in a create body: auto / none / the network's uuid."""
        network = self.settings.network
        if network in ("auto", "none"):
            return network
        if _UUID.match(network):
            return [{"uuid": network}]
        with self._lock:
            if self._networks is not None:
                return self._networks
        body = self.api.request("networks.list", "GET", "/v2.0/networks", params={"name": network},
                                microversion=None, service_type="network")
        ids = [n["id"] for n in body.get("networks") or [] if n.get("name") == network]
        if len(ids) != 1:
            raise PermanentError(f"network {network!r}: {len(ids)} networks have that name; give its uuid",
                                 code="UnknownNetwork" if not ids else "AmbiguousNetwork")
        with self._lock:
            self._networks = [{"uuid": ids[0]}]
        return self._networks

    # --- create ---------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> ObservedServer:
        return self._build(request, lambda: self._submit(request))

    def create_from_snapshot(self, request: CreateRequest, snapshot: Snapshot) -> ObservedServer:
        """A server booted from a backup image, through ``create``'s own path (token lookup first).

        Backups of either method are the same kind of Nova image, so both restore alike. The
        image must exist, carry ``request.owner``'s mark and be ACTIVE; ``request.size`` must
        hold the backed-up server's disk. The server boots from the image (``imageRef``, or a
        volume of ``disk_gb`` made from it when ``boot_from_volume``), carries ``request``'s
        marks (``reconciler:image`` stays the template's image) and the backup's id.
        """
        def submit() -> str:
            image = self._restorable(request, snapshot)
            return self._submit(request, image_id=str(image["id"]),
                                extra={MARK_RESTORED_FROM: str(image["id"])})

        return self._build(request, submit)

    def _restorable(self, request: CreateRequest, snapshot: Snapshot) -> dict[str, Any]:
        """The backup image behind ``snapshot``, checked: ours, ready, and fitting the disk asked for."""
        what = f"{request.key}: restore from backup {snapshot.snapshot_id}"
        try:
            image: dict[str, Any] = self.api.request(
                "images.get", "GET", f"/images/{snapshot.snapshot_id}",
                microversion=IMAGE_PROXY_MICROVERSION)["image"]
        except NotFoundError:
            image = {"status": "DELETED"}
        status = str(image.get("status") or "").upper()
        if status == "DELETED":
            raise NotFoundError(f"{what}: no such image on the cloud (deleted?)", code="BackupNotFound")
        owner = (image.get("metadata") or {}).get(TAG_OWNER)
        if owner != request.owner:
            raise PermanentError(f"{what}: the image is owned by {owner or 'nobody'}, not {request.owner}; "
                                 "only a backup of this deployment can be restored", code="NotOwned")
        if status in ("SAVING", "QUEUED", "UPLOADING", "IMPORTING"):
            raise TransientError(f"{what}: the image is still {status}", code="BackupNotReady")
        if status != "ACTIVE":
            raise PermanentError(f"{what}: the image is {status or 'in no state'}, not ACTIVE",
                                 code="BackupUnusable")
        source = source_disk_gb(image)
        if request.size.disk_gb < source:
            raise PermanentError(f"{what}: the backup is of a {source} GB disk and the restore asks for "
                                 f"{request.size.disk_gb} GB; ask for at least {source} GB",
                                 code="DiskSmallerThanBackup")
        return image

    def _build(self, request: CreateRequest, submit: Callable[[], str]) -> ObservedServer:
        """Resume the server carrying ``request.token``, else ``submit`` one; wait until it settles."""
        found = self._by_token(request.owner, request.token)
        server_id = str(found[0]["id"]) if found else submit()
        try:
            server = self._settled(server_id, f"{request.key}: create")
        except PermanentError:
            self._discard(server_id)  # a failed build holds quota and helps nobody
            raise
        return self._observed(server)

    def _submit(self, request: CreateRequest, *, image_id: str | None = None,
                extra: Mapping[str, str] | None = None) -> str:
        """POST the server; it boots from ``image_id`` (a backup) or else the template's image."""
        s = self.settings
        flavor = self._flavor_for(request.flavor, request.size)
        disk = request.size.disk_gb
        if not s.boot_from_volume and request.flavor is not None and 0 < flavor.disk < disk:
            raise PermanentError(
                f"{request.key}: flavor {flavor.name} has a {flavor.disk} GB root disk and the template "
                f"asks for {disk} GB; name a bigger flavor, lower disk_gb or set boot_from_volume: true "
                "on the provider", code="FlavorDiskTooSmall")
        user_data = base64.b64encode(request.user_data.encode()).decode() if request.user_data else ""
        if len(user_data) > USER_DATA_MAX:
            raise PermanentError(
                f"{request.key}: rendered boot scripts are {len(request.user_data.encode())} bytes; Nova "
                f"takes at most {USER_DATA_MAX} bytes of base64", code="UserDataTooLarge")
        marks = ownership_tags(request)
        marks.update({MARK_IMAGE: request.image, MARK_DISK: str(disk), **(extra or {})})
        if request.flavor is None:
            marks[MARK_SIZE] = size_mark(request.size, flavor.name)
        if image_id is None:
            image_id = self._image_id(request.image)
        body: dict[str, Any] = {
            "name": request.name, "flavorRef": flavor.id, "metadata": marks,
            "tags": [owner_tag(request.owner), token_tag(request.token)], "networks": self._network_spec(),
        }
        if s.boot_from_volume:
            body["block_device_mapping_v2"] = [{
                "boot_index": 0, "uuid": image_id, "source_type": "image", "destination_type": "volume",
                "volume_size": disk, "delete_on_termination": True,
            }]
        else:
            body["imageRef"] = image_id
        if user_data:
            body["user_data"] = user_data
        if s.key_name:
            body["key_name"] = s.key_name
        if s.security_groups:
            body["security_groups"] = [{"name": g} for g in s.security_groups]
        if s.availability_zone:
            body["availability_zone"] = s.availability_zone
        reply = self.api.request("servers.create", "POST", "/servers", body={"server": body})
        return str(reply["server"]["id"])

    def _discard(self, server_id: str) -> None:
        """Delete a server whose build failed; best effort (observe still sees it if this fails)."""
        try:
            self._destroy(server_id)
        except (TransientError, PermanentError):
            pass

    # --- update -----------------------------------------------------------------------------
    def update(self, server: ObservedServer, request: UpdateRequest) -> ObservedServer:
        found = self._owned(server)
        sid = server.resource_id
        if found.get("status") == "VERIFY_RESIZE":  # a resize a crash left unconfirmed
            found = self._confirm(sid, server.key)
        marks: dict[str, str] = dict(found.get("metadata") or {})
        if request.size.disk_gb != server.size.disk_gb:
            raise PermanentError(
                f"{server.key}: the root disk cannot change in place ({server.size.disk_gb} → "
                f"{request.size.disk_gb} GB); replace the server", code="DiskChangeNeedsReplace")
        target = self._flavor_for(request.flavor, request.size)
        wanted = updated_tags(marks, request)
        wanted.pop(MARK_SIZE, None)
        if request.flavor is None:
            wanted[MARK_SIZE] = size_mark(request.size, target.name)
        current = str((found.get("flavor") or {}).get("original_name") or "")
        if target.name != current:
            if not request.allow_restart:
                raise PermanentError(
                    f"{server.key}: resizing {current} to {target.name} restarts the server, which this "
                    "member's update policy does not allow", code="RestartNotAllowed")
            self._action(sid, "resize", {"flavorRef": target.id})
            found = self._settled(sid, f"{server.key}: resize")
            if found.get("status") == "VERIFY_RESIZE":
                found = self._confirm(sid, server.key)
            now = str((found.get("flavor") or {}).get("original_name") or "")
            if now != target.name:
                raise PermanentError(
                    f"{server.key}: Nova did not resize server {sid} to {target.name} (it runs {now}); "
                    f"see `openstack server event list {sid}`", code="ResizeFailed")
        if wanted != marks:
            self._act(sid, "servers.metadata", "PUT", f"/servers/{sid}/metadata", {"metadata": wanted})
            found = self._get(sid)
        return self._observed(found)

    def _confirm(self, server_id: str, key: str) -> Server:
        """Confirm a resize; Nova confirms asynchronously, with no task_state to watch."""
        self._action(server_id, "confirmResize")
        return self._wait(server_id, lambda s: s.get("status") in ("ACTIVE", "SHUTOFF")
                          and task_state(s) is None, f"{key}: confirm resize")

    # --- delete, start, stop -------------------------------------------------------------------
    def delete(self, server: ObservedServer) -> None:
        try:
            self._owned(server)
        except NotFoundError:
            return
        self._destroy(server.resource_id)

    def _destroy(self, server_id: str) -> None:
        try:
            self._act(server_id, "servers.delete", "DELETE", f"/servers/{server_id}")
        except NotFoundError:
            return
        forced = False

        def gone(found: Server) -> bool:
            nonlocal forced
            if found.get("status") == "SOFT_DELETED" and not forced:  # the cloud defers deletes: not ours
                self._action(server_id, "forceDelete")
                forced = True
            return False  # gone means 404: a DELETED server is still being cleaned up

        try:
            self._wait(server_id, gone, f"delete {server_id}")
        except NotFoundError:
            return

    def start(self, server: ObservedServer) -> ObservedServer:
        return self._power(server, "os-start", "ACTIVE")

    def stop(self, server: ObservedServer) -> ObservedServer:
        return self._power(server, "os-stop", "SHUTOFF")

    def _power(self, server: ObservedServer, action: str, status: str) -> ObservedServer:
        found = self._owned(server)
        if found.get("status") != status or task_state(found) is not None:
            if found.get("status") != status:
                self._action(server.resource_id, action)
            found = self._wait(server.resource_id,
                               lambda s: s.get("status") == status and task_state(s) is None,
                               f"{server.key}: {action}")
        return self._observed(found)

    # --- backups ----------------------------------------------------------------------------
    def _backup_images(self, owner: str, **filters: str) -> list[dict[str, Any]]:
        query = {"type": "snapshot", f"property-{TAG_OWNER}": owner, **filters}
        found: list[dict[str, Any]] = []
        for page in self.api.pages("images.list", "/images/detail", "images", query,
                                   microversion=IMAGE_PROXY_MICROVERSION):
            found.extend(i for i in page if (i.get("metadata") or {}).get(TAG_OWNER) == owner
                         and i.get("status") not in ("DELETED", "deleted"))
        return found

    def snapshot(self, server: ObservedServer, request: SnapshotRequest) -> Snapshot:
        """A Nova snapshot image of the server; a retry finds the image by name and marks.

        Nova makes one kind of restorable backup, an image (``createImage``), so both
        ``BackupMethod``s take one; the method asked for is recorded in the image's
        ``reconciler:backup-method`` property. Every mark is written, even an empty policy:
        Nova copies the properties of the image a server booted from (a restored server's
        backup) into its snapshots, and no stale mark may survive that.
        """
        now = self.context.clock.now()
        existing = [i for i in self._backup_images(server.owner, name=request.name)
                    if i.get("name") == request.name and i["metadata"].get(TAG_KEY) == server.key]
        if existing:
            return snapshot_from_image(self.name, existing[0], now)
        self._owned(server)
        marks = user_metadata(request.tags)
        marks.update({TAG_OWNER: server.owner, TAG_KEY: server.key, TAG_CLUSTER: server.cluster,
                      TAG_TAKEN_AT: isoformat(now), MARK_SNAPSHOT_OF: server.resource_id,
                      TAG_POLICY: request.policy or "", MARK_METHOD: request.method.value,
                      MARK_DISK: str(server.size.disk_gb)})
        reply = self._action(server.resource_id, "createImage", {"name": request.name, "metadata": marks})
        image_id = str(reply["image_id"])
        self._wait(server.resource_id, lambda s: task_state(s) is None, f"{server.key}: snapshot")
        image = self.api.request("images.get", "GET", f"/images/{image_id}",
                                 microversion=IMAGE_PROXY_MICROVERSION)["image"]
        return snapshot_from_image(self.name, image, now)

    def list_snapshots(self, owner: str) -> list[Snapshot]:
        now = self.context.clock.now()
        snaps = [snapshot_from_image(self.name, i, now) for i in self._backup_images(owner)]
        return sorted(snaps, key=lambda s: (s.key, s.created_at, s.snapshot_id))

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        path = f"/images/{snapshot.snapshot_id}"
        try:
            image = self.api.request("images.get", "GET", path,
                                     microversion=IMAGE_PROXY_MICROVERSION)["image"]
        except NotFoundError:
            return
        owner = (image.get("metadata") or {}).get(TAG_OWNER)
        if owner != snapshot.owner:
            raise PermanentError(f"image {snapshot.snapshot_id} is owned by {owner or 'nobody'}, not "
                                 f"{snapshot.owner}; the reconciler leaves it alone", code="NotOwned")
        try:
            self.api.request("images.delete", "DELETE", path, microversion=IMAGE_PROXY_MICROVERSION)
        except NotFoundError:
            pass

    # --- measured usage -------------------------------------------------------------------------
    def metrics(self, servers: list[ObservedServer]) -> list[MetricSample]:
        """Counters from server diagnostics, one call per running server.

        CPU seconds are the summed per-vCPU ``time`` (nanoseconds), memory is ``used``, network
        bytes the summed ``rx_octets`` / ``tx_octets`` of the NICs. A cloud whose policy refuses
        diagnostics (403; admin-only by default) yields no samples: billing falls back to hours.
        """
        samples: list[MetricSample] = []
        now = self.context.clock.now()
        for server in servers:
            if server.status is not ServerStatus.RUNNING:
                continue
            try:
                diag = self.api.request("servers.diagnostics", "GET",
                                        f"/servers/{server.resource_id}/diagnostics")
            except NotFoundError:
                continue
            except TransientError as exc:
                if exc.code == "Conflict":  # not running after all
                    continue
                raise
            except PermanentError as exc:
                if exc.code == "Forbidden":
                    return []
                raise
            samples.append(_sample(self.name, server, diag, now))
        return samples


def _sample(provider: str, server: ObservedServer, diag: Mapping[str, Any], now: Any) -> MetricSample:
    nics = diag.get("nic_details") or []
    return MetricSample(
        provider=provider, resource_id=server.resource_id, key=server.key, at=now,
        cpu_seconds=round(sum(float(c.get("time") or 0) for c in diag.get("cpu_details") or []) / 1e9, 3),
        memory_mb=int((diag.get("memory_details") or {}).get("used") or 0),
        net_rx_bytes=sum(int(n.get("rx_octets") or 0) for n in nics),
        net_tx_bytes=sum(int(n.get("tx_octets") or 0) for n in nics),
        disk_gb=server.size.disk_gb,
    )
