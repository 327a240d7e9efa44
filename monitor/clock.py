"""Time as a dependency.

Every stage that needs "now" receives a ``Clock`` instead of calling
``datetime.now()``, so escalation timeouts and windows can be tested by moving a
fake clock instead of sleeping, and the demo can run on the feed's own time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.i18n import N_, Problem
from monitor.models import utc


def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone ``name``, or ``ValueError`` in words (MONITOR_TIMEZONE, escalation.yaml's timezone)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Problem(N_("unknown time zone '{name}'; use an IANA name like 'Europe/Brussels'"), name=name) from None


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to; thread-safe for the worker's jobs."""

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = utc(when)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta

    def advance_to_at_least(self, when: datetime) -> None:
        """Move forward to ``when`` but never backwards (replay of a feed)."""
        with self._lock:
            self._now = max(self._now, utc(when))
