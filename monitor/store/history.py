"""The incidents' history for the console: every incident, open or closed, filtered by what the team asks.

Closed incidents used to vanish from the console; the history is the store's
incidents table itself, newest first, with filters on brand, rule, the handle of
an author among its posts, a period of opening, a state and words of its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, exists, func, select

from monitor.models import Incident
from monitor.privacy.scrub import normalise_handle
from monitor.store.incidents import _incident
from monitor.store.tables import incident_mentions, incidents, mentions


@dataclass(frozen=True, slots=True)
class Filters:
    brand: str | None = None
    rule: str | None = None
    author: str | None = None  # a handle among the incident's posts
    state: str | None = None
    opened_from: datetime | None = None  # inclusive
    opened_before: datetime | None = None  # exclusive
    words: str | None = None  # in the reason, any case


def search(conn: Connection, f: Filters, *, limit: int = 100, offset: int = 0) -> tuple[list[Incident], int]:
    """The page of incidents matching every given filter (newest first) and how many match in all."""
    where = []
    if f.brand:
        where.append(func.lower(incidents.c.brand) == f.brand.casefold())
    if f.rule:
        where.append(incidents.c.rule == f.rule)
    if f.state:
        where.append(incidents.c.state == f.state)
    if f.opened_from is not None:
        where.append(incidents.c.opened_at >= f.opened_from)
    if f.opened_before is not None:
        where.append(incidents.c.opened_at < f.opened_before)
    if f.words:
        where.append(func.lower(incidents.c.reason).contains(f.words.casefold(), autoescape=True))
    if f.author:
        handle = normalise_handle(f.author)
        where.append(exists(select(incident_mentions.c.mention_id)
                            .join(mentions, mentions.c.id == incident_mentions.c.mention_id)
                            .where(incident_mentions.c.incident_id == incidents.c.id,
                                   func.lower(mentions.c.author_handle) == handle)))
    total = int(conn.execute(select(func.count()).select_from(incidents).where(*where)).scalar_one())
    rows = conn.execute(select(incidents).where(*where).order_by(incidents.c.opened_at.desc(), incidents.c.id.desc())
                        .limit(limit).offset(offset))
    return [_incident(r) for r in rows], total
