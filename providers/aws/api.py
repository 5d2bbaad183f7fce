"""providers.aws.api: the EC2 provider's one door to EC2 and CloudWatch — clients, counted calls, waits.

Kept apart from ``providers.aws.provider`` (which holds the provider's decisions: ownership,
idempotent creates and restores, type changes, tags, backups, metrics) because nothing
here decides anything about a server:

* **One botocore session per provider**, made on first use and shared by its EC2 and
  CloudWatch clients, so both use the profile and the credentials it resolved first; the
  service models (EC2's is several MB of JSON) are read once per process. botocore's
  ``standard`` retry mode (``max_attempts``) absorbs short throttling before our own retries.
* **Every call is counted** (the provider's ``count_call``) under its API operation name,
  each page of a paginated call as one call, and failures leave as the error tree
  (``providers.aws.common.translate_error``); a CloudWatch failure also says how to turn
  sampling off where an endpoint has none.
* **The reads the provider builds on**: live instances by filter, 1000 per page unless
  ``page_size`` says less (``instances``); one instance by id, None once it is gone
  (``describe``); our own AMIs by filter (``images``); and a poll for an instance state,
  bounded by ``wait_timeout`` (``wait``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from providers.aws.common import LIVE_STATES, STATUS_BY_STATE, AwsSettings, method_name, translate_error
from reconciler.core.clock import Clock
from reconciler.core.errors import NotFoundError, TransientError

# botocore's service models, read once per process and shared by every provider's session;
# each session still resolves its own profile and credentials.
_LOADER = botocore.loaders.create_loader()

_FAILURES = (ClientError, BotoCoreError, ResponseParserError)


class AwsApi:
    """The EC2 and CloudWatch clients of one provider, and every call made through them."""

    def __init__(
        self, settings: AwsSettings, *, max_parallel: int, count_call: Callable[[str], None], clock: Clock
    ) -> None:
        self.settings = settings
        self._max_parallel = max_parallel
        self._count = count_call
        self._clock = clock
        self._client: Any = None
        self._cloudwatch: Any = None
        self._session: botocore.session.Session | None = None
        self._lock = threading.Lock()

    # --- clients -------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The botocore EC2 client (created on first use; thread-safe once made)."""
        with self._lock:
            if self._client is None:
                self._client = self._new_client("ec2", self.settings.endpoint_url)
            return self._client

    @property
    def cloudwatch(self) -> Any:
        """The botocore CloudWatch client (on ``cloudwatch_endpoint_url``, else the EC2 endpoint)."""
        with self._lock:
            if self._cloudwatch is None:
                s = self.settings
                self._cloudwatch = self._new_client("cloudwatch", s.cloudwatch_endpoint_url or s.endpoint_url)
            return self._cloudwatch

    def _new_client(self, service: str, endpoint_url: str | None) -> Any:
        """A client of the one botocore session (called under ``_lock``)."""
        s = self.settings
        try:
            if self._session is None:
                self._session = botocore.session.Session(profile=s.profile)
                self._session.register_component("data_loader", _LOADER)
            return self._session.create_client(
                service,
                region_name=s.region,
                endpoint_url=endpoint_url,
                config=Config(
                    retries={"mode": "standard", "total_max_attempts": s.max_attempts},
                    max_pool_connections=max(10, self._max_parallel),
                    user_agent_extra="gitops-reconciler",
                ),
            )
        except BotoCoreError as exc:
            raise translate_error(exc, "connect") from exc

    def close(self) -> None:
        with self._lock:
            for client in (self._client, self._cloudwatch):
                if client is not None:
                    client.close()
            self._client = self._cloudwatch = None

    # --- calls ---------------------------------------------------------------------------
    def call(self, operation: str, *, not_found: bool = False, **params: Any) -> Any:
        """One counted EC2 call; failures leave as TransientError / PermanentError (NotFoundError
        for a missing resource when ``not_found``)."""
        method = getattr(self.client, method_name(operation))
        self._count(operation)
        try:
            return method(**params)
        except _FAILURES as exc:
            raise translate_error(exc, operation, not_found=not_found) from exc

    def pages(self, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page of a paginated EC2 call, each page counted as one call."""
        pages = iter(self.client.get_paginator(method_name(operation)).paginate(**params))
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except _FAILURES as exc:
                self._count(operation)
                raise translate_error(exc, operation) from exc
            self._count(operation)
            yield page

    def cloudwatch_call(self, operation: str, **params: Any) -> Any:
        """One counted CloudWatch call; failures say how to turn sampling off where there is none."""
        method = getattr(self.cloudwatch, method_name(operation))
        self._count(operation)
        try:
            return method(**params)
        except _FAILURES as exc:
            error = translate_error(exc, f"CloudWatch {operation}")
            hint = ("; usage metrics for measured billing come from CloudWatch (set "
                    "cloudwatch_endpoint_url, or cloudwatch: false where the endpoint has none)")
            raise type(error)(f"{error}{hint}", code=error.code) from exc

    # --- reads ---------------------------------------------------------------------------
    def instances(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every live instance (pending, running, stopping, stopped) matching ``filters``."""
        filters = [*filters, {"Name": "instance-state-name", "Values": list(LIVE_STATES)}]
        found: list[dict[str, Any]] = []
        paging = {"PageSize": self.settings.page_size}
        for page in self.pages("DescribeInstances", Filters=filters, PaginationConfig=paging):
            for reservation in page.get("Reservations", ()):
                instances = reservation.get("Instances", ())
                found.extend(i for i in instances if i["State"]["Name"] in STATUS_BY_STATE)
        return found

    def describe(self, instance_id: str) -> dict[str, Any] | None:
        """One instance by id, or None when it is gone (unknown or terminated)."""
        try:
            reply = self.call("DescribeInstances", not_found=True, InstanceIds=[instance_id])
        except NotFoundError:
            return None
        for reservation in reply.get("Reservations", ()):
            for instance in reservation.get("Instances", ()):
                if instance["State"]["Name"] != "terminated":
                    return dict(instance)
        return None

    def images(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The account's own AMIs matching ``filters`` (deregistered ones left out)."""
        found: list[dict[str, Any]] = []
        for page in self.pages("DescribeImages", Owners=["self"], Filters=filters,
                               PaginationConfig={"PageSize": self.settings.page_size}):
            found.extend(i for i in page.get("Images", ()) if i.get("State") != "deregistered")
        return found

    def wait(self, instance_id: str, states: tuple[str, ...], *, gone_ok: bool = False) -> dict[str, Any]:
        """Poll until the instance reaches one of ``states`` (bounded by ``wait_timeout``); with
        ``gone_ok`` an instance that is gone counts as arrived (and ``{}`` is returned)."""
        deadline = self._clock.monotonic() + self.settings.wait_timeout
        while True:
            instance = self.describe(instance_id)
            state = "terminated" if instance is None else instance["State"]["Name"]
            if state in states or (instance is None and gone_ok):
                return instance or {}
            if instance is None:
                raise NotFoundError(f"instance {instance_id} disappeared while waiting", code="Gone")
            if self._clock.monotonic() >= deadline:
                raise TransientError(
                    f"instance {instance_id} still {state} after {self.settings.wait_timeout:g}s "
                    f"(waiting for {'/'.join(states)})",
                    code="WaitTimeout",
                )
            time.sleep(self.settings.poll_interval)
