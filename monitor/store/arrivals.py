"""When each configured source brought posts: the per-source history behind "last 24 h" and the absence alert.

The mentions table cannot say it: a post is stored once under its platform
(``mastodon``), whichever of two instances brought it, and a Google News
edition's items carry the publisher, not the edition. The poller adds one row
here per poll that delivered posts, in the transaction that stores them, so
the history never disagrees with the store. Nothing personal: a name, a time
and two counts. Rows older than ``KEPT`` are pruned as new ones are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, delete, func, select

from monitor.store.dialect import insert_on_conflict
from monitor.store.tables import source_arrivals

KEPT = timedelta(days=35)


@dataclass(frozen=True, slots=True)
class Arrival:
    at: datetime
    fetched: int
    new: int


def record(conn: Connection, source: str, at: datetime, *, fetched: int, new: int) -> None:
    """One poll of ``source`` that delivered ``fetched`` posts (``new`` of them not stored before)."""
    if fetched <= 0:
        return
    stmt = insert_on_conflict(conn, source_arrivals).values(source=source, at=at, fetched=fetched, new=new)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["source", "at"]))
    conn.execute(delete(source_arrivals).where(and_(source_arrivals.c.source == source,
                                                    source_arrivals.c.at < at - KEPT)))


def since(conn: Connection, source: str, start: datetime) -> list[Arrival]:
    """``source``'s arrivals from ``start`` on, oldest first."""
    rows = conn.execute(select(source_arrivals.c.at, source_arrivals.c.fetched, source_arrivals.c.new)
                        .where(and_(source_arrivals.c.source == source, source_arrivals.c.at >= start))
                        .order_by(source_arrivals.c.at)).all()
    return [Arrival(r.at, r.fetched, r.new) for r in rows]


def delivered_since(conn: Connection, start: datetime) -> dict[str, tuple[int, int]]:
    """Per source: (posts delivered, posts new) since ``start``."""
    rows = conn.execute(select(source_arrivals.c.source, func.sum(source_arrivals.c.fetched),
                               func.sum(source_arrivals.c.new))
                        .where(source_arrivals.c.at >= start).group_by(source_arrivals.c.source)).all()
    return {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in rows}
