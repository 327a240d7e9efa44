"""Business hours in an IANA zone, computed on local wall-clock dates.

Opening and closing times are built per local date and converted to UTC, so
the Sundays when Brussels changes between CET and CEST neither skip nor
repeat a deadline: 08:00 is 08:00 local on both sides of the change.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from monitor.escalation.schema import WEEKDAYS, BusinessHours
from monitor.models import utc

_HORIZON_DAYS = 400  # a year of holidays cannot hide every working day


class Hours:
    def __init__(self, spec: BusinessHours, zone: ZoneInfo) -> None:
        self.spec = spec
        self.zone = zone
        self._days = {WEEKDAYS.index(d) for d in spec.days}
        self._holidays = set(spec.holidays)

    def _interval(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        if day.weekday() not in self._days or day in self._holidays:
            return None
        start = dt.datetime.combine(day, self.spec.start, tzinfo=self.zone).astimezone(dt.UTC)
        end = dt.datetime.combine(day, self.spec.end, tzinfo=self.zone).astimezone(dt.UTC)
        return start, end

    def is_open(self, when: dt.datetime) -> bool:
        when = utc(when)
        span = self._interval(when.astimezone(self.zone).date())
        return span is not None and span[0] <= when < span[1]

    def next_open(self, when: dt.datetime) -> dt.datetime:
        """``when`` itself if open, else the next opening time."""
        when = utc(when)
        day = when.astimezone(self.zone).date()
        for offset in range(_HORIZON_DAYS):
            span = self._interval(day + dt.timedelta(days=offset))
            if span is None:
                continue
            if when < span[1]:
                return max(when, span[0])
        raise ValueError("no business hours in the next year: check 'days' and 'holidays'")

    def add(self, when: dt.datetime, delta: dt.timedelta) -> dt.datetime:
        """``when`` plus ``delta`` of business time (the clock stops outside hours)."""
        current = self.next_open(when)
        remaining = delta
        while True:
            span = self._interval(current.astimezone(self.zone).date())
            assert span is not None
            available = span[1] - current
            if remaining <= available:
                return current + remaining
            remaining -= available
            current = self.next_open(span[1])

    def local(self, when: dt.datetime) -> dt.datetime:
        return utc(when).astimezone(self.zone)
