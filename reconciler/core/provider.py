"""core.provider: the one small contract every cloud provider implements, and the registry.

The engine never imports a provider module: it asks ``create_provider(config, context)``,
which loads the ``provider`` module of the package registered for ``config.type``
(``providers.<family>.provider``) on first use; checking a desired state asks only
``type_facts(type)``, which reads the family's ``spec`` module and so needs no SDK. A
provider module imports only ``reconciler.core`` — this module, ``model``, ``errors``,
``clock`` — plus its SDK and modules of its own family, never another family's.

Rules every provider follows (checked by ``tests/conformance``):

* ``observe(owner)`` is read-only, lists only servers carrying our owner mark, and uses
  as few listing calls as the API allows (paging 1000 at a time where it pages).
* Every mutating call is idempotent by the request's ``token``: after a crash the engine
  calls ``lookup`` first, and ``create`` with a token that already exists must not make a
  second server.
* The reconciler never updates or deletes a resource it does not own.
* Every server carries the guard marks of its ``CreateRequest`` (``guard_marks``: protect,
  backup policy), ``update`` rewrites them as its ``UpdateRequest`` says (``updated_tags``),
  and ``observe``/``lookup`` report them (``read_guard_marks``). They are marks like the
  ownership marks, never user tags.
* Taking over servers that already run: ``describe(ids)`` (read-only, owned or not),
  ``list_unowned()`` (paged like ``observe``), ``adopt`` writes the ownership and guard
  marks of an ``AdoptRequest`` on an unowned server and nothing else (no restart, no
  recreate; idempotent), ``release`` removes every mark of ours and nothing else
  (``adoption_marks``, ``released_tags``). A server never carries another owner's marks
  after either.
* All failures leave as ``TransientError`` (retry may help) or ``PermanentError``.
* Every call to the cloud's API goes through ``count_call`` so tests and benchmarks can
  assert how many calls an operation cost.

A provider type may also offer a ``FaultInjector`` (``Provider.fault_injector``): operations
that break its cloud on purpose, behind the engine's back, for demos and tests
(``reconciler simcloud list|fail|stop|delete|edit|create``). The CLI reaches them through
``provider_class(type).fault_injector``, never by importing the provider module.
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from reconciler.core.clock import Clock
from reconciler.core.errors import PermanentError, UserError
from reconciler.core.model import (
    GUARD_TAGS,
    TAG_CLUSTER,
    TAG_GENERATION,
    TAG_KEY,
    TAG_MEMBER,
    TAG_OWNER,
    TAG_PREFIX,
    TAG_PROTECT,
    TAG_SERVER_POLICY,
    TAG_SPEC_HASH,
    TAG_TOKEN,
    CreateRequest,
    MetricSample,
    ObservedServer,
    ProviderConfig,
    SecretRef,
    Size,
    Snapshot,
    SnapshotRequest,
    UpdateRequest,
)

SecretResolver = Callable[[SecretRef], str]


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do in place, so the engine knows when it must replace instead, and
    the most user data it accepts (rendered boot scripts are measured when loading and applying)."""

    resize_in_place: bool = True  # cpus / memory / flavor
    resize_needs_restart: bool = True
    update_tags: bool = True
    start_stop: bool = True
    snapshots: bool = True
    metrics: bool = False
    paginated: bool = False
    # True where the flavor fixes cpus and memory (EC2 instance types, Nova flavors): a
    # server is then compared by flavor alone. False: flavor is a label, size is compared too.
    flavor_defines_size: bool = False
    user_data_max_bytes: int | None = None  # UTF-8 bytes of rendered boot scripts; None: no limit


@dataclass(frozen=True)
class AdoptRequest:
    """The marks an adoption writes on a server that already runs: ownership (owner, key, spec
    hash, generation, token, cluster, member) and the guard marks — and nothing else."""

    owner: str
    key: str
    token: str
    generation: int
    spec_hash: str
    cluster: str = ""
    member: str = ""
    protect: bool = False
    backup_policy: str = ""


def _no_secrets(ref: SecretRef) -> str:
    raise UserError(f"secret {ref} cannot be resolved here")


@dataclass
class ProviderContext:
    """What the engine hands a provider: where to keep local state, the clock, secret access."""

    state_dir: Path
    clock: Clock = field(default_factory=Clock)
    resolve_secret: SecretResolver = _no_secrets


class FaultInjector(Protocol):
    """Admin operations on a provider type's cloud in a state directory, outside the contract.

    They act on the cloud directly (no API calls counted, no injected faults honoured) and
    name servers by key (``shop/web/0``; the newest generation when several share it). An
    unknown key is a ``UserError``. ``list_servers`` returns every server of the cloud, owned
    or not, as mappings with at least ``key``, ``status``, ``cpus``, ``memory_mb``,
    ``disk_gb``, ``resource_id`` and ``provider`` (values JSON can encode, or ``str`` them);
    the others return the server as it is after the change (as it was, for ``delete``);
    ``create`` makes one nobody owns (as if made in the cloud's console), to adopt later.
    """

    def list_servers(self, state_dir: Path) -> list[dict[str, Any]]:
        """Every server in the cloud kept under ``state_dir``; [] when there is none yet."""
        ...

    def fail(self, state_dir: Path, key: str) -> dict[str, Any]:
        """Put the server into ``error`` status, as a crashed machine."""
        ...

    def stop(self, state_dir: Path, key: str) -> dict[str, Any]:
        """Stop the server."""
        ...

    def delete(self, state_dir: Path, key: str) -> dict[str, Any]:
        """Make the server vanish."""
        ...

    def edit(self, state_dir: Path, key: str, *, cpus: int | None, memory_mb: int | None) -> dict[str, Any]:
        """Change the server's size (drift); None keeps that part as it is."""
        ...

    def create(
        self, state_dir: Path, *, provider: str, name: str, image: str, size: Size, flavor: str | None
    ) -> dict[str, Any]:
        """Make a server by hand for the Provider document ``provider``, owned by nobody."""
        ...


class Provider(ABC):
    """Base class of every provider. Subclasses register with ``@register("type")``."""

    type_name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    # JSON Schema (Draft 2020-12) fragment for this provider's ``spec`` (without max_parallel
    # and price_list, which every provider accepts).
    spec_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    # Admin operations that break this type's cloud on purpose, if it offers any (see FaultInjector).
    fault_injector: ClassVar[FaultInjector | None] = None

    def __init__(self, config: ProviderConfig, context: ProviderContext) -> None:
        self.config = config
        self.context = context
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.config.name

    # --- accounting -------------------------------------------------------------------
    def count_call(self, operation: str) -> None:
        """Record one API call to the cloud (thread-safe)."""
        with self._calls_lock:
            self.calls[operation] += 1

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    # --- the contract -------------------------------------------------------------------
    @abstractmethod
    def observe(self, owner: str) -> list[ObservedServer]:
        """Every server carrying ``owner``'s mark, in as few listing calls as the API allows."""

    @abstractmethod
    def lookup(self, owner: str, token: str) -> ObservedServer | None:
        """The server created with ``token`` (after a crash), or None if it never came to be."""

    @abstractmethod
    def create(self, request: CreateRequest) -> ObservedServer:
        """Create and start one server; idempotent by ``request.token``."""

    @abstractmethod
    def update(self, server: ObservedServer, request: UpdateRequest) -> ObservedServer:
        """Change size/flavor/tags in place (restarting only when ``allow_restart``)."""

    @abstractmethod
    def delete(self, server: ObservedServer) -> None:
        """Delete an owned server and wait until it is gone; deleting a gone server is a no-op."""

    # --- taking over servers that already run ---------------------------------------------------
    def describe(self, resource_ids: Sequence[str]) -> list[ObservedServer]:
        """The servers with these ids that exist, owned or not, in as few calls as the API allows.

        An unowned server comes back with ``owner``, ``key``, ``spec_hash`` and ``token`` "",
        and the user tags an adoption keeps; ids that name nothing are left out."""
        raise PermanentError(f"provider type {self.type_name} cannot describe servers for adoption")

    def list_unowned(self) -> list[ObservedServer]:
        """Every server carrying no owner mark (as ``describe`` reports them), paged like ``observe``."""
        raise PermanentError(f"provider type {self.type_name} cannot list unowned servers")

    def adopt(self, server: ObservedServer, request: AdoptRequest) -> ObservedServer:
        """Write ``request``'s marks (``adoption_marks``) on the unowned ``server`` and nothing else;
        the server as observed afterwards. Adopting it again with the same request is a no-op; a
        server owned by anyone else is a ``PermanentError``, a gone one a ``NotFoundError``."""
        raise PermanentError(f"provider type {self.type_name} cannot adopt servers")

    def release(self, server: ObservedServer) -> None:
        """Remove every mark of ours from the owned ``server`` (``released_tags``), leaving it
        running as it is; releasing a server no longer carrying ``server.owner``'s marks (or gone)
        is a no-op."""
        raise PermanentError(f"provider type {self.type_name} cannot release servers")

    def flavor_for(self, size: Size) -> str | None:
        """The flavor this provider would pick for a template that gives only a size.

        Providers whose flavors fix cpus and memory (``Capabilities.flavor_defines_size``)
        answer it, so the engine compares like with like; others return None.
        """
        return None

    def start(self, server: ObservedServer) -> ObservedServer:
        raise PermanentError(f"provider type {self.type_name} cannot start servers")

    def stop(self, server: ObservedServer) -> ObservedServer:
        raise PermanentError(f"provider type {self.type_name} cannot stop servers")

    def snapshot(self, server: ObservedServer, request: SnapshotRequest) -> Snapshot:
        raise PermanentError(f"provider type {self.type_name} cannot take snapshots")

    def list_snapshots(self, owner: str) -> list[Snapshot]:
        return []

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        raise PermanentError(f"provider type {self.type_name} cannot delete snapshots")

    def create_from_snapshot(self, request: CreateRequest, snapshot: Snapshot) -> ObservedServer:
        """Create and start one server of ``request.size`` whose disk starts as ``snapshot``'s
        (a restore); carries ``request``'s marks and is idempotent by ``request.token`` like
        ``create``. A disk smaller than the snapshot's source is a ``PermanentError``."""
        raise PermanentError(f"provider type {self.type_name} cannot restore a server from a snapshot")

    @property
    def reports_metrics(self) -> bool:
        """Whether ``metrics`` reports anything for this provider as configured (a provider
        type with metrics may be set up without them, e.g. EC2 with CloudWatch turned off)."""
        return type(self).capabilities.metrics

    def metrics(self, servers: list[ObservedServer]) -> list[MetricSample]:
        """Cumulative usage counters; providers without metrics return []."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op unless the provider holds connections
        """Release connections; the provider is not used afterwards."""


# --- ownership and guard marks -----------------------------------------------------------
def guard_marks(protect: bool, backup_policy: str) -> dict[str, str]:
    """The guard marks (``GUARD_TAGS``) a server carries: only those that are set."""
    marks = {TAG_PROTECT: "true"} if protect else {}
    if backup_policy:
        marks[TAG_SERVER_POLICY] = backup_policy
    return marks


def read_guard_marks(marks: Mapping[str, str]) -> dict[str, Any]:
    """``ObservedServer`` keyword arguments for the guard marks among a resource's ``marks``.

    Anything but an exact ``"true"`` leaves the server unprotected only if the mark is absent:
    a protect mark that is present but garbled still protects (a guard fails closed).
    """
    return {
        "protected": TAG_PROTECT in marks and marks[TAG_PROTECT].strip().lower() not in ("false", ""),
        "backup_policy": marks.get(TAG_SERVER_POLICY, ""),
    }


def ownership_tags(request: CreateRequest) -> dict[str, str]:
    """The marks a created resource must carry, plus the template's own tags."""
    tags = {k: v for k, v in request.tags if not k.startswith(TAG_PREFIX)}
    tags.update(adoption_marks(request))
    return tags


def adoption_marks(request: AdoptRequest | CreateRequest) -> dict[str, str]:
    """The marks an adoption writes: the ownership marks a create writes, and the guard marks."""
    marks = {
        TAG_OWNER: request.owner,
        TAG_KEY: request.key,
        TAG_SPEC_HASH: request.spec_hash,
        TAG_GENERATION: str(request.generation),
        TAG_TOKEN: request.token,
        TAG_CLUSTER: request.cluster,
        TAG_MEMBER: request.member,
    }
    marks.update(guard_marks(request.protect, request.backup_policy))
    return marks


def adoption_conflict(marks: Mapping[str, str], request: AdoptRequest) -> str | None:
    """Why a server carrying ``marks`` cannot be adopted by ``request`` (None: it can).

    Unowned, or already adopted by this very request (a retry): fine. Owned by anyone else,
    or by this owner under another key or token: refused."""
    owner = marks.get(TAG_OWNER, "")
    if not owner:
        return None
    if owner != request.owner:
        return f"it is owned by {owner!r}"
    if (marks.get(TAG_KEY), marks.get(TAG_TOKEN)) != (request.key, request.token):
        return f"this deployment owns it already, as {marks.get(TAG_KEY) or 'another key'}"
    return None


def released_tags(current: Mapping[str, str]) -> dict[str, str]:
    """A resource's tags after ``release``: everything but the marks of ours (``reconciler:``)."""
    return {k: v for k, v in current.items() if not k.startswith(TAG_PREFIX)}


def updated_tags(current: Mapping[str, str], request: UpdateRequest) -> dict[str, str]:
    """A resource's tags after ``update``: its ownership marks kept, the guard marks and the
    user tags as ``request`` says (a guard mark the request does not set is removed)."""
    tags = {k: v for k, v in current.items() if k.startswith(TAG_PREFIX) and k not in GUARD_TAGS}
    tags.update((k, v) for k, v in request.tags if not k.startswith(TAG_PREFIX))
    tags.update(guard_marks(request.protect, request.backup_policy))
    return tags


def user_tags(tags: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The non-reconciler tags of a resource, sorted, as ``ObservedServer.tags`` wants them."""
    return tuple(sorted((k, v) for k, v in tags.items() if not k.startswith(TAG_PREFIX)))


# --- registry ---------------------------------------------------------------------------
# Built-in provider types and the package of each: its ``provider`` module registers the
# class, its ``spec`` module declares the type's spec schema and capabilities without its SDK.
# Loaded lazily, so a missing SDK (boto3, libvirt…) only matters to users of that provider
# type, and only once something talks to the cloud: ``validate`` reads ``spec`` alone.
BUILTIN_MODULES: dict[str, str] = {
    "simcloud": "providers.simcloud",
    "aws": "providers.aws",
    "openstack": "providers.openstack",
    "libvirt": "providers.libvirt",
    "xcp": "providers.xcp",
}

_REGISTRY: dict[str, type[Provider]] = {}


def register(type_name: str) -> Callable[[type[Provider]], type[Provider]]:
    """Class decorator: make a provider class available as ``type: <type_name>``."""

    def decorate(cls: type[Provider]) -> type[Provider]:
        cls.type_name = type_name
        _REGISTRY[type_name] = cls
        return cls

    return decorate


def known_types() -> list[str]:
    """Every provider type a Provider document may name."""
    return sorted(set(BUILTIN_MODULES) | set(_REGISTRY))


@dataclass(frozen=True)
class TypeFacts:
    """What checking a desired state must know of a provider type, known without its SDK: the
    JSON Schema of a Provider document's ``spec`` and the type's capabilities."""

    spec_schema: Mapping[str, Any]
    capabilities: Capabilities


def _builtin_module(type_name: str, part: str) -> Any:
    """``providers.<family>.<part>`` of a built-in type, as a ``UserError`` when it cannot load."""
    package = BUILTIN_MODULES[type_name]
    module = f"{package}.{part}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name in (package, module):
            raise UserError(f"provider type {type_name!r} is not available in this build") from None
        raise UserError(
            f"provider type {type_name!r} needs the Python package {exc.name!r}; "
            f"install it with: pip install 'gitops-reconciler[{type_name}]'"
        ) from None


def type_facts(type_name: str) -> TypeFacts:
    """The spec schema and capabilities of ``type_name``: from a built-in type's ``spec``
    module (which imports no SDK), else from the registered class."""
    if type_name not in _REGISTRY and type_name in BUILTIN_MODULES:
        spec = _builtin_module(type_name, "spec")
        return TypeFacts(spec.SPEC_SCHEMA, spec.CAPABILITIES)
    cls = provider_class(type_name)
    return TypeFacts(cls.spec_schema, cls.capabilities)


def provider_class(type_name: str) -> type[Provider]:
    """The class registered for ``type_name``, importing its ``provider`` module on first use."""
    if type_name not in _REGISTRY and type_name in BUILTIN_MODULES:
        _builtin_module(type_name, "provider")
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise UserError(
            f"unknown provider type {type_name!r}; choose one of: {', '.join(known_types())}"
        ) from None


def create_provider(config: ProviderConfig, context: ProviderContext) -> Provider:
    """Instantiate the provider a ``Provider`` document describes."""
    return provider_class(config.type)(config, context)
