"""providers.openstack.api: the OpenStack provider's settings and its one door to the Nova API.

What lives here, apart from the provider class in ``providers.openstack.provider``:

* **Settings**: the typed form of a Provider ``spec`` (its schema is ``spec``'s). A cloud is named from the
  user's ``clouds.yaml`` (``cloud``, the OpenStack convention), or given as ``auth_url`` plus
  credentials *by environment variable*; the schema has no place for a password.
* **The connection**: openstacksdk's config loader turns either form into a keystoneauth
  session (clouds.yaml, auth plugins, TLS, the service catalog); we then speak Nova's REST
  API through one keystoneauth ``Adapter`` with a pinned microversion, so every request is
  one we chose, made once, and counted (``Provider.count_call``) under a stable name.
  Token requests the session makes on its own are counted as ``identity.token``.
* **Errors**: Nova's answers mapped onto the error tree. 5xx, 429, connection failures and
  409 (a task is running on the server) are ``TransientError``; the caller waits a 409 out
  by polling ``task_state`` (see ``providers.openstack.provider``). Quota (403), bad requests
  (unknown image or flavor: 400), policy refusals and unsupported microversions (406) are
  ``PermanentError`` carrying Nova's own message; 404 is ``NotFoundError``.
* **Paging**: ``pages`` walks a listing ``limit`` at a time with ``marker`` (Nova caps a page
  at ``osapi_max_limit``, 1000 by default, and links a next page only when one was full).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exc
from openstack import config as os_config
from openstack import exceptions as os_exc

from providers.openstack.spec import MAX_PAGE
from reconciler.core.errors import NotFoundError, PermanentError, ProviderError, TransientError, UserError

# Servers, flavors, tags at create (2.52), embedded flavor details (2.47), image_id in the
# createImage answer (2.45) and standard diagnostics (2.48): Queens (2018) and later.
COMPUTE_MICROVERSION = "2.52"
# Nova's image API (a proxy to Glance) exists only up to 2.35; we use it so that the provider
# needs the compute endpoint alone, and read what Nova itself wrote on backup images.
IMAGE_PROXY_MICROVERSION = "2.35"

@dataclass(frozen=True)
class OpenStackSettings:
    """A Provider ``spec`` of type openstack, checked."""

    provider: str
    cloud: str | None = None
    auth_url: str | None = None
    auth: Mapping[str, str] | None = None  # non-secret auth options (names, domains)
    secret_env: Mapping[str, str] | None = None  # auth option → environment variable
    region: str | None = None
    interface: str | None = None
    network: str = "auto"
    security_groups: tuple[str, ...] = ()
    key_name: str | None = None
    availability_zone: str | None = None
    boot_from_volume: bool = False
    verify_tls: bool | None = None
    page_size: int = MAX_PAGE
    wait_timeout: float = 600.0
    poll_interval: float = 2.0

    _AUTH_KEYS: ClassVar[tuple[str, ...]] = (
        "username", "project_name", "project_id", "user_domain_name", "project_domain_name",
    )
    _SECRET_KEYS: ClassVar[dict[str, str]] = {
        "username_env": "username", "password_env": "password",
        "application_credential_id_env": "application_credential_id",
        "application_credential_secret_env": "application_credential_secret",
    }

    @classmethod
    def from_spec(cls, provider: str, spec: Mapping[str, Any]) -> OpenStackSettings:
        where = f"provider {provider}"
        if ("cloud" in spec) == ("auth_url" in spec):
            raise UserError(f"{where}: give either spec.cloud (a clouds.yaml entry) or spec.auth_url, not "
                            "both or neither")
        secret_env = {cls._SECRET_KEYS[k]: str(v) for k, v in spec.items() if k in cls._SECRET_KEYS}
        auth = {k: str(spec[k]) for k in cls._AUTH_KEYS if k in spec}
        if "auth_url" in spec:
            app_cred = "application_credential_id" in secret_env
            if app_cred and "application_credential_secret" not in secret_env:
                raise UserError(f"{where}: application_credential_id_env needs "
                                "application_credential_secret_env")
            if not app_cred and ("password" not in secret_env
                                 or ("username" in auth) == ("username" in secret_env)):
                raise UserError(f"{where}: with auth_url, give password_env and one of username / "
                                "username_env (or application_credential_id_env and _secret_env)")
            if not app_cred and not ({"project_name", "project_id"} & auth.keys()):
                raise UserError(f"{where}: with auth_url and a password, give project_name or project_id")
        elif secret_env or auth:
            raise UserError(f"{where}: credentials belong in clouds.yaml when spec.cloud is used; remove "
                            f"{', '.join(sorted(set(spec) & (set(cls._SECRET_KEYS) | set(cls._AUTH_KEYS))))}")
        return cls(
            provider=provider,
            cloud=str(spec["cloud"]) if "cloud" in spec else None,
            auth_url=str(spec["auth_url"]) if "auth_url" in spec else None,
            auth=auth, secret_env=secret_env,
            region=str(spec["region"]) if "region" in spec else None,
            interface=str(spec["interface"]) if "interface" in spec else None,
            network=str(spec.get("network", "auto")),
            security_groups=tuple(str(g) for g in spec.get("security_groups", ())),
            key_name=str(spec["key_name"]) if "key_name" in spec else None,
            availability_zone=str(spec["availability_zone"]) if "availability_zone" in spec else None,
            boot_from_volume=bool(spec.get("boot_from_volume", False)),
            verify_tls=bool(spec["verify_tls"]) if "verify_tls" in spec else None,
            page_size=int(spec.get("page_size", MAX_PAGE)),
            wait_timeout=float(spec.get("wait_timeout", 600)),
            poll_interval=float(spec.get("poll_interval", 2)),
        )

    def auth_options(self) -> dict[str, Any]:
        """openstacksdk options for ``auth_url`` mode, secrets read from the environment now."""
        options: dict[str, Any] = {"auth_url": self.auth_url, **(self.auth or {})}
        for option, var in (self.secret_env or {}).items():
            value = os.environ.get(var)
            if not value:
                raise UserError(f"provider {self.provider}: environment variable {var} is not set")
            options[option] = value
        if "application_credential_id" in options:
            options["auth_type"] = "v3applicationcredential"
        else:
            options.setdefault("user_domain_name", "Default")
            options.setdefault("project_domain_name", "Default")
        return options


# --- errors ---------------------------------------------------------------------------------
def nova_message(response: Any) -> str:
    """Nova's own words from an error answer (``{"conflictingRequest": {"message": …}}``)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and value.get("message"):
                return str(value["message"])
        if body.get("message"):
            return str(body["message"])
    text = str(getattr(response, "text", "") or "").strip()
    return text[:300] or f"HTTP {response.status_code}"


def translate_response(response: Any, operation: str) -> ProviderError:
    """An HTTP error answer from Nova as the error the engine acts on."""
    status = int(response.status_code)
    message = f"{operation}: {nova_message(response)}"
    if status == 409:
        return TransientError(message, code="Conflict")
    if status == 429 or status >= 500:
        return TransientError(message, code=f"HTTP{status}")
    if status == 404:
        return NotFoundError(message, code="NotFound")
    if status == 403 and "quota exceeded" in message.lower():
        return PermanentError(message, code="QuotaExceeded")
    if status == 406:
        return PermanentError(f"{message} (the reconciler needs compute API microversion "
                              f"{COMPUTE_MICROVERSION} or later)", code="MicroversionUnsupported")
    if status == 413:  # older Novas answered some quota refusals with 413 overLimit
        return PermanentError(message, code="QuotaExceeded")
    names = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden"}
    return PermanentError(message, code=names.get(status, f"HTTP{status}"))


def translate_exception(exc: Exception, operation: str) -> ProviderError:
    """A keystoneauth / openstacksdk failure (no answer from Nova itself) as our error."""
    if isinstance(exc, ks_exc.ConnectionError | ks_exc.RetriableConnectionFailure):
        return TransientError(f"{operation}: cannot reach the cloud: {exc}", code="Connection")
    if isinstance(exc, ks_exc.HttpError):  # raised by the auth plugin (Keystone's answer)
        status = int(exc.http_status or 0)
        if status >= 500 or status == 429:
            return TransientError(f"{operation}: identity service: {exc}", code=f"HTTP{status}")
        return PermanentError(f"{operation}: authentication failed: {exc}", code="AuthFailed")
    if isinstance(exc, ks_exc.EndpointNotFound | ks_exc.EmptyCatalog):
        return PermanentError(f"{operation}: no compute endpoint in the service catalog: {exc}",
                              code="EndpointNotFound")
    return PermanentError(f"{operation}: {exc}", code=type(exc).__name__)


# --- the connection -------------------------------------------------------------------------
class NovaApi:
    """Counted, translated REST calls to one cloud's compute endpoint (thread-safe)."""

    def __init__(self, settings: OpenStackSettings, count: Callable[[str], None]) -> None:
        self.settings = settings
        self._count = count
        self._lock = threading.Lock()
        self._adapters: dict[str, Any] = {}
        self._session: Any = None
        self._region: Any = None

    def _connect(self) -> Any:
        """The keystoneauth session made from clouds.yaml or from auth_url (no request yet)."""
        s = self.settings
        try:
            loader = os_config.OpenStackConfig(load_yaml_config=s.cloud is not None,
                                               load_envvars=s.cloud is not None)
            overrides: dict[str, Any] = {"region_name": s.region}
            if s.verify_tls is not None:
                overrides["verify"] = s.verify_tls
            if s.interface is not None:
                overrides["interface"] = s.interface
            if s.cloud is not None:
                region = loader.get_one(cloud=s.cloud, **overrides)
            else:
                region = loader.get_one(**overrides, **s.auth_options())
            session = region.get_session()
        except (os_exc.ConfigException, ks_exc.ClientException) as exc:
            raise UserError(f"provider {s.provider}: cannot configure the OpenStack connection: {exc}"
                            ) from None
        session.session.hooks.setdefault("response", []).append(self._count_identity)
        self._region = region
        return session

    def _count_identity(self, response: Any, *args: Any, **kwargs: Any) -> None:
        request = response.request
        if request.method == "POST" and request.path_url.rstrip("/").endswith("/auth/tokens"):
            self._count("identity.token")

    def adapter(self, service_type: str = "compute") -> Any:
        with self._lock:
            if self._session is None:
                self._session = self._connect()
            if service_type not in self._adapters:
                region = self._region
                self._adapters[service_type] = ks_adapter.Adapter(
                    session=self._session, service_type=service_type,
                    interface=region.get_interface(service_type) or "public",
                    region_name=region.get_region_name(service_type),
                    endpoint_override=region.get_endpoint(service_type),
                    user_agent="gitops-reconciler", connect_retries=0, status_code_retries=0,
                    raise_exc=False,
                )
            return self._adapters[service_type]

    def request(self, operation: str, method: str, path: str, *, body: Any = None,
                params: Mapping[str, Any] | None = None, microversion: str | None = COMPUTE_MICROVERSION,
                service_type: str = "compute") -> Any:
        """One counted call; returns the decoded JSON body ({} when there is none)."""
        adapter = self.adapter(service_type)
        self._count(operation)
        kwargs: dict[str, Any] = {"params": dict(params or {})}
        if body is not None:
            kwargs["json"] = body
        if microversion is not None:
            kwargs["microversion"] = microversion
        try:
            response = adapter.request(path, method, **kwargs)
        except (ks_exc.ClientException, ks_exc.RetriableConnectionFailure) as exc:
            raise translate_exception(exc, operation) from None
        if response.status_code >= 400:
            raise translate_response(response, operation)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise TransientError(f"{operation}: the cloud answered with something that is not JSON",
                                 code="BadResponse") from None

    def pages(self, operation: str, path: str, item_key: str, params: Mapping[str, Any], *,
              microversion: str = COMPUTE_MICROVERSION) -> Iterator[list[dict[str, Any]]]:
        """Each page of a listing, ``page_size`` at a time, each page one counted call."""
        query = {**params, "limit": self.settings.page_size}
        while True:
            body = self.request(operation, "GET", path, params=query, microversion=microversion)
            items: list[dict[str, Any]] = list(body.get(item_key) or [])
            yield items
            links = body.get(f"{item_key}_links") or []
            if not items or not any(link.get("rel") == "next" for link in links):
                return
            query = {**query, "marker": items[-1]["id"]}

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.session.close()
            self._session = None
            self._adapters.clear()
