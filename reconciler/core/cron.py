"""core.cron: five-field cron schedules (backup policies, change windows), croniter loaded on first use.

Most plans have no schedule to read; croniter (with dateutil) is imported the first time one
is, not at every start of the command line.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.core.limits import CRON_HORIZON_YEARS


def _croniter() -> Any:
    from croniter import croniter

    return croniter


def valid(schedule: str) -> bool:
    """Whether ``schedule`` is a five-field cron expression (minute hour day month weekday)."""
    return len(schedule.split()) == 5 and bool(_croniter().is_valid(schedule))


# Gregorian dates repeat every 400 years, and a five-field schedule that fires at all fires
# again within 40 years (29 February on a given weekday is the rarest), so searching
# CRON_HORIZON_YEARS (50) ahead of a fixed instant decides "ever", in milliseconds — and the
# scheduler, whose croniter searches as far, then always finds the next and previous tick.
_SEARCH_FROM = datetime(2000, 1, 1, tzinfo=UTC)


def fires(schedule: str) -> bool:
    """Whether a valid cron expression matches any instant at all (``0 2 30 2 *`` never does)."""
    from croniter import CroniterBadDateError

    try:
        _croniter()(schedule, _SEARCH_FROM, max_years_between_matches=CRON_HORIZON_YEARS).get_next(datetime)
    except CroniterBadDateError:
        return False
    return True


@functools.lru_cache(maxsize=4096)  # one plan asks it for every server of a policy, at one ``now``
def latest_tick(schedule: str, now: datetime) -> datetime:
    """The newest tick of a cron schedule at or before ``now`` (UTC)."""
    start = now.astimezone(UTC) + timedelta(seconds=1)  # croniter's prev is strict; include now
    tick: datetime = _croniter()(schedule, start).get_prev(datetime)
    return tick.astimezone(UTC).replace(fold=0)


@functools.lru_cache(maxsize=4096)  # servers backed up at one tick share ``after``
def next_tick(schedule: str, after: datetime) -> datetime:
    """The first tick of a cron schedule strictly after ``after`` (UTC)."""
    tick: datetime = _croniter()(schedule, after.astimezone(UTC)).get_next(datetime)
    return tick.astimezone(UTC).replace(fold=0)
