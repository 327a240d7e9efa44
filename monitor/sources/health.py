"""Source-health signals: the worker must not go silently blind.

A source that keeps failing (API down, token revoked, rate limited for hours,
budget spent by noon) produces no mentions, which looks exactly like a quiet
day. ``health_signals`` turns "failing for longer than
``source_unhealthy_after``" into a ``Signal`` that the escalation engine
handles like any other, grouped per brand and source so it pages once per
outage rather than once per poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection

from monitor.durations import format_duration
from monitor.models import Severity, Signal
from monitor.sources.base import Source
from monitor.store import health as health_repo

RULE = "source-health"


def brand_of(source: Source) -> str:
    """The brand a source collects for: its ``brand`` attribute, else the part after ``kind:``."""
    brand = getattr(source, "brand", None)
    if isinstance(brand, str) and brand:
        return brand
    parts = source.name.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else source.name


def health_signals(conn: Connection, sources: Sequence[Source], now: datetime,
                   unhealthy_after: timedelta) -> list[Signal]:
    """One WARNING signal per source that has been failing for longer than ``unhealthy_after``."""
    rows = health_repo.all_health(conn)
    signals: list[Signal] = []
    for source in sources:
        health = rows.get(source.name)
        if health is None or health.consecutive_failures == 0 or health.failing_since is None:
            continue
        down_for = now - health.failing_since
        if down_for <= unhealthy_after:
            continue
        brand = brand_of(source)
        since_success = (f"last success {health.last_success_at:%Y-%m-%d %H:%M} UTC"
                         if health.last_success_at else "no success recorded yet")
        reason = (f"Source {source.name} has been failing for {format_duration(down_for)} "
                  f"({health.consecutive_failures} poll(s) in a row; {since_success}): "
                  f"{health.last_error or 'unknown error'}. New {brand} mentions from this source "
                  f"are not being collected until it recovers.")
        signals.append(Signal(
            rule=RULE, severity=Severity.WARNING, brand=brand, group_key=f"{brand}|source:{source.name}",
            reason=reason, fired_at=now, mention_ids=(), kind="source",
        ))
    return signals
