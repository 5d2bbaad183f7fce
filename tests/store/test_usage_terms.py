"""Billing terms kept with every usage interval, in SQLite and PostgreSQL alike.

A usage interval records the rate, its currency and the PriceList's terms (granularity,
billing mode) in force when it opened; a database written by schema version 1 (no terms)
is upgraded when it is opened, its old intervals keeping "terms not recorded"; the signed
checkpoints cover the terms, so re-terming a closed interval is caught by ``audit verify``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from reconciler.core.clock import isoformat
from reconciler.core.errors import UserError
from reconciler.core.model import BillingMode, Granularity, Size
from reconciler.core.records import UsageInterval
from reconciler.run import anchor
from reconciler.store.base import Store
from reconciler.store.postgres_schema import SCHEMA_VERSION as PG_VERSION
from reconciler.store.sqlite import SCHEMA_VERSION
from tests.store.conftest import Backend
from tests.store.helpers import T0, record
from tests.store.schema_v1 import interval_row_v1, statements_v1

H = timedelta(hours=1)


def _interval(resource_id: str = "i-1", **terms: object) -> UsageInterval:
    base = UsageInterval(
        deployment="prod", provider="sim", resource_id=resource_id, key="shop/web/0", flavor="sim.small",
        size=Size(1, 1024, 10), start=T0, hourly_rate=Decimal("0.10"), currency="USD", price_list="prices",
        granularity=Granularity.HOUR, billing=BillingMode.INSTANCE_HOURS,
    )
    return dataclasses.replace(base, **terms)  # type: ignore[arg-type]


def _version(backend: Backend) -> str:
    store = backend.open()
    try:
        rows = store._query("SELECT value FROM meta WHERE name = 'schema_version'")  # type: ignore[attr-defined]
    finally:
        store.close()
    return str(rows[0][0])


def test_both_stores_are_at_the_same_schema_version() -> None:
    assert SCHEMA_VERSION == PG_VERSION == 3


@pytest.mark.parametrize(
    ("granularity", "billing"),
    [
        (Granularity.HOUR, BillingMode.INSTANCE_HOURS),
        (Granularity.MINUTE, BillingMode.MEASURED),
        (Granularity.SECOND, BillingMode.INSTANCE_HOURS),
        (None, None),  # nothing priced it
    ],
)
def test_the_terms_are_kept_with_the_rate(
    store: Store, granularity: Granularity | None, billing: BillingMode | None
) -> None:
    wanted = _interval(granularity=granularity, billing=billing)
    if granularity is None:
        wanted = dataclasses.replace(wanted, hourly_rate=None, currency="", price_list="")
    opened = store.open_interval(wanted)
    assert (opened.granularity, opened.billing) == (granularity, billing)
    assert opened.terms_recorded
    store.close_interval("sim", "i-1", end=T0 + H)
    [closed] = store.intervals()
    assert closed == dataclasses.replace(wanted, end=T0 + H, id=closed.id)


def test_a_version_1_database_is_upgraded_and_its_intervals_say_their_terms_are_not_recorded(
    backend: Backend, db_path: Path
) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    backend.tamper(*statements_v1(
        backend.name,
        interval_row_v1("i-old", "2026-11-01T12:00:00.000000Z", "2026-11-01T12:30:00.000000Z"),
        interval_row_v1("i-run", "2026-11-01T12:00:00.000000Z", None),
        interval_row_v1("i-free", "2026-11-01T12:00:00.000000Z", "2026-11-01T13:00:00.000000Z", rate=None),
    ))
    store = backend.open()
    try:
        old, running, free = store.intervals()
        assert (old.resource_id, old.hourly_rate, old.currency) == ("i-old", Decimal("0.10"), "USD")
        assert (old.granularity, old.billing) == (None, None)
        assert not old.terms_recorded and not running.terms_recorded
        assert old.billed_granularity is Granularity.SECOND  # billed as it always was
        assert free.terms_recorded  # nothing priced it: there are no terms to miss
        # the open interval closes and a new one opens with terms, in the upgraded table
        store.close_interval("sim", "i-run", end=T0 + H)
        store.open_interval(_interval("i-new"))
        new = next(i for i in store.intervals() if i.resource_id == "i-new")
        assert (new.granularity, new.billing) == (Granularity.HOUR, BillingMode.INSTANCE_HOURS)
    finally:
        store.close()
    assert _version(backend) == str(SCHEMA_VERSION)
    assert _version(backend) == str(SCHEMA_VERSION)  # opening again changes nothing


def test_terms_this_reconciler_does_not_know_are_an_error(store: Store, tamper: Callable[..., None]) -> None:
    store.open_interval(_interval())
    tamper("UPDATE usage_interval SET granularity = 'fortnight'")
    with pytest.raises(UserError, match="usage_interval row 1 cannot be read .*'fortnight'"):
        store.intervals()


def _old_digest(intervals: list[UsageInterval], at: object) -> str:
    """``usage_digest`` as schema 1 computed it (no terms), so its checkpoints still verify."""
    rows = sorted(
        (i.provider, i.resource_id, i.key, i.deployment, i.flavor or "", str(i.size), isoformat(i.start),
         isoformat(i.end), str(i.hourly_rate), i.currency, i.price_list)
        for i in intervals if i.end is not None
    )
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode("utf-8")).hexdigest()


def test_intervals_without_terms_digest_as_they_did_before_terms_were_recorded() -> None:
    old = dataclasses.replace(_interval(), granularity=None, billing=None, end=T0 + H)
    assert anchor.usage_digest([old], T0 + 2 * H) == (_old_digest([old], T0 + 2 * H), 1)
    termed = dataclasses.replace(old, granularity=Granularity.SECOND)
    assert anchor.usage_digest([termed], T0 + 2 * H)[0] != _old_digest([old], T0 + 2 * H)


RETERMING = {
    "granularity changed": "UPDATE usage_interval SET granularity = 'second'",
    "granularity erased (passed off as an old interval)": "UPDATE usage_interval SET granularity = NULL, "
    "billing = NULL",
    "billing mode changed": "UPDATE usage_interval SET billing = 'measured'",
    "rate changed": "UPDATE usage_interval SET hourly_rate = '0.01'",
    "currency changed": "UPDATE usage_interval SET currency = 'EUR'",
}


@pytest.mark.parametrize("name", sorted(RETERMING))
def test_a_closed_interval_re_termed_behind_the_store_is_caught_by_the_checkpoints(
    backend: Backend, tamper: Callable[..., None], name: str
) -> None:
    location = f"{backend.name}-terms"
    store = backend.open()
    try:
        store.open_interval(_interval())
        store.close_interval("sim", "i-1", end=T0 + H)
        store.append(record(), at=T0 + H)
        assert anchor.checkpoint(store, location, T0 + 2 * H) is not None
        assert anchor.verify(store, location).ok
        tamper(RETERMING[name])
        report = anchor.verify(store, location)
    finally:
        store.close()
    assert not report.ok, name
    assert "usage" in report.problem
