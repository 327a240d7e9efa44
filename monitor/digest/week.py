"""ISO weeks as local calendar weeks, turned into UTC ranges the store can filter on.

A digest week is Monday 00:00 to the next Monday 00:00 *local* time, because
the PR team reads "Tuesday" as their Tuesday, not UTC's. The store keeps UTC,
so every boundary is computed per local date and then converted: a week that
contains a daylight-saving change is 167 or 169 hours long, and each of its
days still starts at local midnight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.models import utc

_WEEK = re.compile(r"^\s*(\d{4})-?W(\d{1,2})\s*$", re.IGNORECASE)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class IsoWeek:
    """One ISO week in one time zone, with its seven local days as UTC ranges."""

    year: int
    week: int
    timezone: str

    @classmethod
    def parse(cls, text: str, timezone: str) -> IsoWeek:
        """``2026-W47`` (or ``2026W47``); raises ValueError with the expected format."""
        found = _WEEK.match(text)
        if not found:
            raise ValueError(f"expected an ISO week like 2026-W47, got {text!r}")
        year, week = int(found.group(1)), int(found.group(2))
        try:
            date.fromisocalendar(year, week, 1)
        except ValueError:
            raise ValueError(f"{year} has no ISO week {week}") from None
        ZoneInfo(timezone)  # fail early on an unknown zone
        return cls(year, week, timezone)

    @classmethod
    def containing(cls, when: datetime, timezone: str) -> IsoWeek:
        """The week that the local date of ``when`` falls in."""
        local = utc(when).astimezone(ZoneInfo(timezone)).date()
        iso = local.isocalendar()
        return cls(iso.year, iso.week, timezone)

    @classmethod
    def last_complete(cls, now: datetime, timezone: str) -> IsoWeek:
        """The most recent week that has fully ended at ``now`` (local time): Monday 09:00 gives last week."""
        return cls.containing(now, timezone).shifted(-1)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def days(self) -> tuple[date, ...]:
        return tuple(self.monday + timedelta(days=i) for i in range(7))

    def shifted(self, weeks: int) -> IsoWeek:
        iso = (self.monday + timedelta(weeks=weeks)).isocalendar()
        return IsoWeek(iso.year, iso.week, self.timezone)

    @property
    def day_bounds(self) -> tuple[datetime, ...]:
        """Eight UTC instants: local midnight of each day and of the following Monday."""
        return tuple(_local_midnight(self.monday + timedelta(days=i), self.zone) for i in range(8))

    @property
    def start(self) -> datetime:
        return self.day_bounds[0]

    @property
    def end(self) -> datetime:
        """Exclusive end (next Monday 00:00 local) as UTC."""
        return self.day_bounds[-1]
