"""limits: the largest number each setting of the desired state may hold, written down once.

Every number a user writes is bounded, so that nothing downstream (a cloud API, a SQLite
column, a ``timedelta``, exact decimal arithmetic) is handed a value it cannot take:

* The JSON Schemas in ``reconciler/schemas`` carry these numbers as ``maximum`` (a test
  checks that they agree), so editors flag an oversized value as it is typed.
* ``config.yamlsafe`` refuses, for every kind, a number that is not finite (``.inf``,
  ``.nan``, ``1e999``) and an integer that does not fit in 64 bits (``INT64_MAX``).
* Money (``PriceList`` rates, ``Budget.monthly``) is exact decimal: at most ``MONEY_DIGITS``
  digits before the point and ``MONEY_PLACES`` after it, as a quoted string or a number.
* ``size_problem`` checks a ``Size`` wherever one is built from outside (a saved plan file).
* The daemon's ``--interval`` and ``--git-poll`` are finite and at most a day.
* Each provider type's numeric settings (timeouts, poll intervals, simcloud's latency, page
  size and capacity) have maxima here too, in that provider's spec schema.

README's "Limits" lists the same numbers for people.
"""

from __future__ import annotations

from decimal import Decimal

from reconciler.core.model import Size

INT64_MAX = 2**63 - 1  # every integer of every kind, provider settings and input values included

MAX_CPUS = 1024
MAX_MEMORY_MB = 16 * 1024 * 1024  # 16 TiB
MAX_DISK_GB = 1024 * 1024  # 1 PiB
MAX_COUNT = 1000  # servers per member: count, autoscale min and max
MAX_PARALLEL = 256  # Provider max_parallel: concurrent calls to one cloud
MAX_KEEP = 1000  # each BackupPolicy retention rule (keep_last, keep_daily, keep_weekly, keep_monthly)
MAX_AGE_HOURS = 87_600  # BackupPolicy max_age_hours: ten years
MAX_WAIT_SECONDS = 7 * 24 * 3600  # autoscale cooldown_seconds and failover grace_seconds: a week
MAX_FAILOVERS_PER_HOUR = 1000  # failover max_per_hour
MAX_SCALE_TARGET = 10**12  # autoscale target (percent, or bytes per second for network)
MAX_ALERT_TIMEOUT_SECONDS = 60  # AlertSink timeout_seconds
MAX_ALERT_RETRIES = 10  # AlertSink retries
MAX_INTERVAL_SECONDS = 86_400  # reconciler run --interval and --git-poll: a day

# Provider settings: each provider type's spec schema carries these as "maximum", and the provider
# checks them again for a config that never met the schema (one read back from a plan file).
MAX_WAIT_TIMEOUT_SECONDS = 86_400  # wait_timeout, timeout_seconds, shutdown_timeout_seconds: a day
MAX_POLL_INTERVAL_SECONDS = 3_600  # poll_interval: an hour between two looks
MAX_SIM_LATENCY_MS = 60_000  # simcloud latency_ms: a minute per simulated call
MAX_SIM_PAGE_SIZE = 100_000  # simcloud page_size: servers per listing call
MAX_SIM_CAPACITY = 10_000_000  # simcloud capacity: servers one provider may hold

MONEY_DIGITS = 9  # digits before the decimal point: a rate or budget below one billion
MONEY_PLACES = 9  # digits after it
MONEY_LIMIT = Decimal(10) ** MONEY_DIGITS  # every amount is below this

CRON_HORIZON_YEARS = 50  # a schedule must fire within this many years (croniter's own search span)


def size_problem(size: Size) -> str | None:
    """What is out of range in a size (cpus 1..1024, memory_mb 64..16 TiB, disk_gb 1..1 PiB), or None."""
    for name, value, low, high in (
        ("cpus", size.cpus, 1, MAX_CPUS),
        ("memory_mb", size.memory_mb, 64, MAX_MEMORY_MB),
        ("disk_gb", size.disk_gb, 1, MAX_DISK_GB),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"{name} must be an integer from {low} to {high}, got {value!r}"
    return None


def money_problem(amount: Decimal) -> str | None:
    """Why an amount cannot be money here (negative, not finite, too many digits), or None."""
    if not amount.is_finite():
        return "is not a finite amount"
    if amount < 0:
        return "must be 0 or more"
    if amount >= MONEY_LIMIT:
        return f"must be below {MONEY_LIMIT}"
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MONEY_PLACES:
        return f"has more than {MONEY_PLACES} digits after the decimal point"
    return None
