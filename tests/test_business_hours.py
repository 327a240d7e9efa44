"""Business time elapsed (``Hours.between``): the clock the digest measures acknowledgements with.

``between`` is the inverse of ``Hours.add``, the clock the engine sets deadlines
with, so "acknowledged within target" in the digest means "acknowledged before
the engine escalated". Boundaries: the closing minute, holidays, and the
Brussels DST weekends, when a day has 23 or 25 hours.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.escalation.hours import Hours
from monitor.escalation.schema import BusinessHours

ZONE = ZoneInfo("Europe/Brussels")
OFFICE = Hours(BusinessHours(days=["mon", "tue", "wed", "thu", "fri"], start=time(8), end=time(20),
                             holidays=[date(2026, 12, 25)]), ZONE)


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=ZONE).astimezone(UTC)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (local(2026, 11, 20, 19, 59), local(2026, 11, 23, 8), timedelta(minutes=1)),  # the last minute of Friday
        (local(2026, 11, 20, 20), local(2026, 11, 23, 8), timedelta(0)),  # closed from 20:00 on
        (local(2026, 11, 23, 7, 59), local(2026, 11, 23, 8, 1), timedelta(minutes=1)),  # opens at 08:00
        (local(2026, 11, 23, 9), local(2026, 11, 23, 9), timedelta(0)),
        (local(2026, 11, 23, 10), local(2026, 11, 23, 9), timedelta(0)),  # an end before the start counts nothing
        (local(2026, 11, 23, 8), local(2026, 11, 28, 8), timedelta(hours=60)),  # a working week: 5 x 12 h
        # Thursday 24 Dec 19:30 to Monday 28th 08:30: Friday 25th is a holiday, then the weekend.
        (local(2026, 12, 24, 19, 30), local(2026, 12, 28, 8, 30), timedelta(hours=1)),
        # The spring (Sun 29 March) and autumn (Sun 25 October) weekends: 61 and 63 h of real time.
        (local(2026, 3, 27, 19), local(2026, 3, 30, 9), timedelta(hours=2)),
        (local(2026, 10, 23, 19), local(2026, 10, 26, 9), timedelta(hours=2)),
    ],
)
def test_business_time_between_two_instants(start: datetime, end: datetime, expected: timedelta) -> None:
    assert OFFICE.between(start, end) == expected


def test_a_dst_day_counts_its_opening_hours_in_real_time() -> None:
    # Open 01:00-04:00 every day: on 29 March 02:00 does not exist (2 real hours), on 25 October
    # 02:00-03:00 happens twice (4 real hours). Elapsed time and deadlines agree on both.
    night = Hours(BusinessHours(days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"], start=time(1), end=time(4)),
                  ZONE)
    for day, real in ((29, timedelta(hours=2)), (28, timedelta(hours=3))):
        opens, closes = local(2026, 3, day, 1), local(2026, 3, day, 4)
        assert night.between(local(2026, 3, day, 0), local(2026, 3, day, 12)) == real == closes - opens
        assert night.add(opens, real) == closes
    autumn = night.between(datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 10, tzinfo=UTC))
    assert autumn == timedelta(hours=4)


def test_between_undoes_add_around_the_dst_changes_and_a_holiday() -> None:
    # Every 37 minutes through the weeks of both DST changes and of Christmas, for deadlines of
    # 15 min to 20 h: the business time from a start to its deadline is the time that was added.
    deltas = [timedelta(minutes=15), timedelta(hours=1), timedelta(hours=11, minutes=59), timedelta(hours=20)]
    for first in (local(2026, 3, 26, 0), local(2026, 10, 22, 0), local(2026, 12, 23, 0)):
        at = first
        while at < first + timedelta(days=6):
            for delta in deltas:
                assert OFFICE.between(at, OFFICE.add(at, delta)) == delta, (at, delta)
            at += timedelta(minutes=37)
