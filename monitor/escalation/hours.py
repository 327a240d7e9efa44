"""Business hours in an IANA zone, computed on local wall-clock dates.

Opening and closing times are built per local date and converted to UTC, so
the Sundays when Brussels changes between CET and CEST neither skip nor
repeat a deadline: 08:00 is 08:00 local on both sides of the change.

Both directions live here: ``add`` (a deadline: the engine's clock for
policies that wait) and ``between`` (time elapsed: the digest's time to
acknowledge for those policies). One set of opening intervals serves both, so
"acknowledged within target" in the digest means exactly "acknowledged before
the engine escalated".
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

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Business time from ``start`` to ``end``: zero when ``end`` is not later.

        The inverse of ``add``: ``between(t, add(t, d)) == d``. Each local date
        contributes the overlap of its opening interval with the span, so a
        23- or 25-hour DST day counts its opening hours exactly once.
        """
        start, end = utc(start), utc(end)
        total = dt.timedelta(0)
        if end <= start:
            return total
        day, last = start.astimezone(self.zone).date(), end.astimezone(self.zone).date()
        while day <= last:
            span = self._interval(day)
            if span is not None:
                lo, hi = max(span[0], start), min(span[1], end)
                if hi > lo:
                    total += hi - lo
            day += dt.timedelta(days=1)
        return total

    def local(self, when: dt.datetime) -> dt.datetime:
        return utc(when).astimezone(self.zone)
