"""Counts across the store for summaries: how much was stored, scored, opened and sent.

Read-only and cheap (``COUNT`` queries, one row per incident); ``monitor demo``
prints them as its closing summary. The weekly digest has its own, per-week
figures in ``digest/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, select

from monitor.store.mentions import count_mentions
from monitor.store.outbox import sent_per_kind
from monitor.store.tables import incident_mentions, incidents, sentiments


@dataclass(frozen=True, slots=True)
class StoreTotals:
    mentions: int
    scored: int
    negative: int  # scored with a negative probability of at least the threshold asked for
    sent: dict[str, int] = field(default_factory=dict)  # notification kind -> delivered


@dataclass(frozen=True, slots=True)
class IncidentOverview:
    """One incident as a summary table shows it."""

    id: int
    severity: str
    rule: str
    opened_at: datetime
    state: str
    level: int
    posts: int  # mentions linked to it


def totals(conn: Connection, *, negative_at_least: float) -> StoreTotals:
    scored = conn.execute(select(func.count()).select_from(sentiments)).scalar_one()
    negative = conn.execute(select(func.count()).select_from(sentiments)
                            .where(sentiments.c.negative >= negative_at_least)).scalar_one()
    return StoreTotals(mentions=count_mentions(conn), scored=int(scored), negative=int(negative),
                       sent=sent_per_kind(conn))


def incident_overview(conn: Connection) -> list[IncidentOverview]:
    """Every incident, oldest first, with how many posts it holds."""
    posts: dict[int, int] = {int(i): int(n) for i, n in conn.execute(
        select(incident_mentions.c.incident_id, func.count()).group_by(incident_mentions.c.incident_id))}
    rows = conn.execute(select(incidents.c.id, incidents.c.severity, incidents.c.rule, incidents.c.opened_at,
                               incidents.c.state, incidents.c.level).order_by(incidents.c.id))
    return [IncidentOverview(id=int(r.id), severity=r.severity, rule=r.rule, opened_at=r.opened_at, state=r.state,
                             level=int(r.level), posts=posts.get(int(r.id), 0)) for r in rows]
