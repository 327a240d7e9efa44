"""Source-health signals: the worker must not go silently blind.

A source that keeps failing (API down, token revoked, rate limited for hours,
budget spent by noon) produces no mentions, which looks exactly like a quiet
day. ``health_signals`` turns "failing for longer than
``source_unhealthy_after``" into a ``Signal`` that the escalation engine
handles like any other, grouped per brand and source so it pages once per
outage rather than once per poll. The reason is written once, in the team's
language and time zone (``t``: the escalation file's ``locale`` and ``timezone``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection

from monitor.i18n import Translator, translator
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
                   unhealthy_after: timedelta, t: Translator | None = None) -> list[Signal]:
    """One WARNING signal per source that has been failing for longer than ``unhealthy_after``."""
    t = t or translator()
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
        since_success = (t._("last success {time}", time=t.datetime_zone(health.last_success_at))
                         if health.last_success_at else t._("no success recorded yet"))
        reason = t.ngettext(
            "Source {source} has been failing for {duration} ({n} poll in a row; {since}): {error}. New {brand} "
            "mentions from this source are not being collected until it recovers.",
            "Source {source} has been failing for {duration} ({n} polls in a row; {since}): {error}. New {brand} "
            "mentions from this source are not being collected until it recovers.",
            health.consecutive_failures, source=source.name, duration=t.duration(down_for), since=since_success,
            error=health.last_error or t._("unknown error"), brand=brand)
        signals.append(Signal(
            rule=RULE, severity=Severity.WARNING, brand=brand, group_key=f"{brand}|source:{source.name}",
            reason=reason, fired_at=now, mention_ids=(), kind="source",
        ))
    return signals
