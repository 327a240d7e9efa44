"""Per-source health: last success and error, failure streak, deferral and the daily budget.

Written by the poller in the same transaction as the mentions and the cursor,
so what ``monitor sources`` shows is exactly what was stored. The request
budget counts per UTC day (the day X bills by), here rather than in memory so
that a restart neither resets nor forgets it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from monitor.redact import redact
from monitor.store.dialect import insert_on_conflict
from monitor.store.tables import source_health

ERROR_LIMIT = 500  # the column's length


@dataclass(frozen=True, slots=True)
class SourceHealth:
    source: str
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    deferred_until: datetime | None = None
    budget_day: date | None = None
    budget_used: int = 0
    # The last failure means "we cannot see" (a token, a permission, a refused login or key): it will not heal
    # by itself, so the source-health alert does not wait for ``source_unhealthy_after``.
    blind: bool = False

    def unhealthy(self, now: datetime, grace: timedelta) -> bool:
        """The one rule of ``monitor sources``, ``/healthz`` and the source-health incident: failing for longer
        than ``grace`` (``source_unhealthy_after``: a blip or a rate limit is not worth a page), or failing
        blind, which will not heal by itself."""
        if not self.consecutive_failures or self.failing_since is None:
            return False
        return self.blind or now - self.failing_since > grace

    def used_on(self, day: date) -> int:
        """Requests already spent on ``day`` (0 when the stored count is for another day)."""
        return self.budget_used if self.budget_day == day else 0

    def budget_left(self, budget: int | None, day: date) -> int | None:
        """Requests still allowed on ``day``; None when the source has no budget."""
        if budget is None:
            return None
        return max(0, budget - self.used_on(day))


def _from_row(row: Any) -> SourceHealth:
    m = row._mapping
    return SourceHealth(
        source=m["source"], last_success_at=m["last_success_at"], last_error_at=m["last_error_at"],
        last_error=m["last_error"], consecutive_failures=m["consecutive_failures"] or 0,
        failing_since=m["failing_since"], deferred_until=m["deferred_until"], budget_day=m["budget_day"],
        budget_used=m["budget_used"] or 0, blind=bool(m["blind"]),
    )


def get(conn: Connection, source: str) -> SourceHealth | None:
    row = conn.execute(select(source_health).where(source_health.c.source == source)).first()
    return _from_row(row) if row else None


def all_health(conn: Connection) -> dict[str, SourceHealth]:
    return {h.source: h for h in (_from_row(r) for r in conn.execute(select(source_health)))}


def _save(conn: Connection, health: SourceHealth) -> SourceHealth:
    values = {
        "last_success_at": health.last_success_at,
        "last_error_at": health.last_error_at,
        "last_error": health.last_error,
        "consecutive_failures": health.consecutive_failures,
        "failing_since": health.failing_since,
        "deferred_until": health.deferred_until,
        "budget_day": health.budget_day,
        "budget_used": health.budget_used,
        "blind": health.blind,
    }
    stmt = insert_on_conflict(conn, source_health).values(source=health.source, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["source"], set_=values))
    return health


def _spend(health: SourceHealth, now: datetime, requests: int) -> SourceHealth:
    day = now.date()
    return replace(health, budget_day=day, budget_used=health.used_on(day) + max(0, requests))


def record_success(conn: Connection, source: str, now: datetime, *, requests: int = 0) -> SourceHealth:
    """A poll completed: the failure streak and any deferral end; the last error stays for display."""
    current = get(conn, source) or SourceHealth(source)
    updated = replace(_spend(current, now, requests), last_success_at=now, consecutive_failures=0,
                      failing_since=None, deferred_until=None, blind=False)
    return _save(conn, updated)


def record_failure(conn: Connection, source: str, now: datetime, error: str, *, requests: int = 0,
                   deferred_until: datetime | None = None, blind: bool = False) -> SourceHealth:
    """A poll did not complete (an error, a long rate limit, a spent budget). ``error`` is redacted here too.

    ``blind``: the error means the source cannot see (``PollResult.blind``)."""
    current = get(conn, source) or SourceHealth(source)
    updated = replace(
        _spend(current, now, requests),
        last_error_at=now,
        last_error=redact(error, limit=ERROR_LIMIT),
        consecutive_failures=current.consecutive_failures + 1,
        failing_since=current.failing_since or now,
        deferred_until=deferred_until,
        blind=blind,
    )
    return _save(conn, updated)
