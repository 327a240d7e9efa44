"""The digest's SQL: every read of the store for one week, portable between SQLite and PostgreSQL.

Mentions are only ever *counted in SQL* (``GROUP BY`` brand, local day,
source and sentiment bucket over an indexed ``created_at`` range): a week can
hold hundreds of thousands of rows and Python never sees them one by one.
Incidents are few (tens to hundreds a week), so their rows and timelines are
returned whole, for ``timeline`` to interpret. Functions return rows, not
figures: ``figures`` turns them into the dataclasses of ``model``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, null, select
from sqlalchemy.sql.elements import ColumnElement

from monitor.store.tables import incident_events, incident_mentions, incidents, mentions, sentiments, signals

from .model import NEGATIVE_THRESHOLD
from .week import IsoWeek

# --- SQL building blocks ----------------------------------------------------------------------------------


def sentiment_bucket() -> ColumnElement[str]:
    """The documented threshold as one SQL ``CASE``: portable between SQLite and PostgreSQL."""
    s = sentiments.c
    return case(
        (s.negative.is_(None), "unscored"),
        (s.negative >= NEGATIVE_THRESHOLD, "negative"),
        (and_(s.positive >= s.neutral, s.positive >= s.negative), "positive"),
        else_="neutral",
    )


def is_negative() -> ColumnElement[int]:
    """1 for a mention in the negative bucket, else 0: summed for negative counts."""
    return case((sentiments.c.negative >= NEGATIVE_THRESHOLD, 1), else_=0)


def bucket_index(column: Any, bounds: Sequence[datetime]) -> ColumnElement[int]:
    """Index ``i`` with ``bounds[i] <= column < bounds[i + 1]``, for rows already inside the bounds.

    Boundaries are computed in Python per local date (so DST is right) and
    compared as UTC values: no database time-zone functions, which SQLite lacks.
    """
    inner = bounds[1:-1]
    if not inner:
        return literal(0)
    return case(*[(column < b, i) for i, b in enumerate(inner)], else_=len(bounds) - 2)



# --- queries ----------------------------------------------------------------------------------------------


def brand_filter(column: Any, brands: Sequence[str] | None) -> ColumnElement[bool]:
    """``column IN brands``, or no condition at all when no brands are given."""
    return column.in_(list(brands)) if brands else literal(True)


def stored_brands(conn: Connection) -> list[str]:
    """Every brand in the mentions table, by a loose index scan: one index seek per brand, not per row.

    The mention queries then filter on ``brand IN (...)``, an equality on the
    leading column of ``ix_mentions_brand_week``: the planner picks that
    index (brand, then the time range, covering every column the week's
    counts and voices read) even in a store that was never ``ANALYZE``d, where
    a bare time range would walk ``ix_mentions_created_at`` and fetch every
    row from the table for its brand. The week's reviews take the partial
    ``ix_mentions_reviews`` (reviews only) by the same equality.
    """
    m = mentions.c
    found = select(func.min(m.brand).label("brand")).cte("brands", recursive=True)
    following = select(func.min(m.brand)).where(m.brand > found.c.brand).scalar_subquery()
    found = found.union_all(select(following).where(found.c.brand.is_not(None)))
    return list(conn.execute(select(found.c.brand).where(found.c.brand.is_not(None))).scalars())


def week_counts(conn: Connection, week: IsoWeek, brands: Sequence[str]) -> list[Any]:
    """One pass over the week's mentions: counts per brand, local day, source, bucket and model.

    The computed columns are named in a subquery and grouped by name: PostgreSQL
    would not match a ``GROUP BY`` of the same ``CASE`` with its own bound
    parameters; SQLite flattens the subquery, so it costs nothing there.
    """
    m, s = mentions.c, sentiments.c
    rows = (
        select(m.brand.label("brand"), bucket_index(m.created_at, week.day_bounds).label("day"),
               m.source.label("source"), sentiment_bucket().label("bucket"), s.model.label("model"),
               s.model_version.label("version"))
        .select_from(mentions.outerjoin(sentiments, s.mention_id == m.id))
        .where(m.brand.in_(list(brands)), m.created_at >= week.start, m.created_at < week.end)
        .subquery()
    )
    r = rows.c
    keys = (r.brand, r.day, r.source, r.bucket, r.model, r.version)
    return list(conn.execute(select(*keys, func.count().label("n")).group_by(*keys)))


def trend_counts(conn: Connection, week: IsoWeek, brands: Sequence[str]) -> list[Any]:
    """Volume and negative counts per brand for one earlier week.

    One query per week grouped by brand alone: rows arrive in index order, so
    SQLite aggregates them as they stream instead of sorting every row by a
    computed week number first (twice as fast on a million rows).
    """
    m, s = mentions.c, sentiments.c
    stmt = (
        select(m.brand, func.count().label("n"), func.coalesce(func.sum(is_negative()), 0).label("neg"),
               func.count(s.mention_id).label("scored"))
        .select_from(mentions.outerjoin(sentiments, s.mention_id == m.id))
        .where(m.brand.in_(list(brands)), m.created_at >= week.start, m.created_at < week.end)
        .group_by(m.brand)
    )
    return list(conn.execute(stmt))


REACH_STEPS = (100, 1_000)  # class bounds below the reach threshold: a handful of followers, a few hundred, more


def reach_bounds(threshold: int) -> tuple[int, ...]:
    """Upper bounds of the reach classes: the fixed steps under the threshold, then the threshold itself."""
    return (*(b for b in REACH_STEPS if b < threshold), threshold)


def voices(conn: Connection, week: IsoWeek, threshold: int, brands: Sequence[str]) -> list[Any]:
    """Authors per brand; handles of below-threshold authors collapse into one row inside SQL.

    The handles of people under the threshold never leave the database: the
    outer ``GROUP BY`` replaces them with NULL before rows are returned. Each
    row carries its reach class (an index into ``reach_bounds``), so the report
    can say how far the posts reached without naming anyone.
    """
    m = mentions.c
    per_author = (
        select(m.brand.label("brand"), m.author_handle.label("handle"), func.max(m.author_reach).label("reach"),
               func.count().label("posts"), func.coalesce(func.sum(is_negative()), 0).label("negative"))
        .select_from(mentions.outerjoin(sentiments, sentiments.c.mention_id == m.id))
        .where(m.brand.in_(list(brands)), m.created_at >= week.start, m.created_at < week.end)
        .group_by(m.brand, m.author_handle)
        .subquery()
    )
    a = per_author.c
    named = and_(a.handle.is_not(None), a.reach >= threshold)
    bounds = reach_bounds(threshold)
    reach_class = case(*[(func.coalesce(a.reach, 0) < b, i) for i, b in enumerate(bounds)], else_=len(bounds))
    shown = select(a.brand, case((named, a.handle), else_=null()).label("shown"),
                   case((named, a.reach), else_=null()).label("shown_reach"), reach_class.label("reach_class"),
                   a.handle, a.posts, a.negative).subquery()
    v = shown.c
    stmt = (
        select(v.brand, v.shown, v.shown_reach, v.reach_class, func.sum(v.posts).label("posts"),
               func.sum(v.negative).label("negative"), func.count(v.handle).label("authors"))
        .group_by(v.brand, v.shown, v.shown_reach, v.reach_class)
    )
    return list(conn.execute(stmt))


def incident_rows(conn: Connection, start: datetime, end: datetime,
                  brands: Sequence[str] | None) -> list[dict[str, Any]]:
    """Incidents opened in ``[start, end)``, oldest first."""
    i = incidents.c
    stmt = (
        select(i.id, i.brand, i.rule, i.kind, i.severity, i.state, i.policy, i.level, i.opened_at, i.reason,
               i.reason_data)
        .where(i.opened_at >= start, i.opened_at < end, brand_filter(i.brand, brands))
        .order_by(i.opened_at, i.id)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def timeline_events(conn: Connection, start: datetime, end: datetime,
                    brands: Sequence[str] | None) -> dict[int, list[dict[str, Any]]]:
    """The timeline of every incident opened in ``[start, end)``, per incident id, in order."""
    e, i = incident_events.c, incidents.c
    stmt = (
        select(e.incident_id, e.at, e.from_state, e.to_state, e.level, e.actor, e.note, e.note_data)
        .join(incidents, i.id == e.incident_id)
        .where(i.opened_at >= start, i.opened_at < end, brand_filter(i.brand, brands))
        .order_by(e.incident_id, e.at, e.id)
    )
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in conn.execute(stmt):
        out[int(r.incident_id)].append(dict(r._mapping))
    return out


def mention_counts(conn: Connection, ids: Sequence[int]) -> dict[int, int]:
    """Posts linked to each incident (ids in chunks of 500: SQLite's bound-parameter limit)."""
    if not ids:
        return {}
    im = incident_mentions.c
    found: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        stmt = select(im.incident_id, func.count()).where(im.incident_id.in_(chunk)).group_by(im.incident_id)
        found.update({int(k): int(v) for k, v in conn.execute(stmt)})
    return found


def incident_reach(conn: Connection, ids: Sequence[int]) -> dict[int, int]:
    """The widest author reach among each incident's posts: how far it travelled (one number, no one named)."""
    if not ids:
        return {}
    im, m = incident_mentions.c, mentions.c
    found: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        stmt = (select(im.incident_id, func.max(m.author_reach)).join(mentions, m.id == im.mention_id)
                .where(im.incident_id.in_(chunk)).group_by(im.incident_id))
        found.update({int(k): int(v or 0) for k, v in conn.execute(stmt)})
    return found


def first_posts(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The earliest mention of each incident (window function: one row per incident)."""
    if not ids:
        return {}
    im, m = incident_mentions.c, mentions.c
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        rank = func.row_number().over(partition_by=im.incident_id, order_by=(m.created_at, m.id)).label("rank")
        ranked = (
            select(im.incident_id, m.source, m.brand, m.text, m.url, m.author_handle, m.author_reach,
                   m.language, m.created_at, rank)
            .join(mentions, m.id == im.mention_id)
            .where(im.incident_id.in_(chunk))
            .subquery()
        )
        for r in conn.execute(select(ranked).where(ranked.c.rank == 1)):
            found[int(r.incident_id)] = dict(r._mapping)
    return found


def signal_counts(conn: Connection, week: IsoWeek, brands: Sequence[str] | None) -> list[Any]:
    """Signals fired this week per brand and rule: the denominator of "how noisy is this rule"."""
    g = signals.c
    stmt = (
        select(g.brand, g.rule, func.count().label("n"))
        .where(g.fired_at >= week.start, g.fired_at < week.end, brand_filter(g.brand, brands))
        .group_by(g.brand, g.rule)
    )
    return list(conn.execute(stmt))


def week_reviews(conn: Connection, week: IsoWeek, brands: Sequence[str]) -> list[Any]:
    """The week's reviews of the business (every version), for ``ReviewFigures``: few rows, read whole."""
    m = mentions.c
    return list(conn.execute(
        select(m.brand, m.conversation_id, m.source_id, m.review_rating, m.created_at, m.review_reply_at)
        .where(m.brand.in_(list(brands)), m.review_rating.is_not(None), m.created_at >= week.start,
               m.created_at < week.end)
        .order_by(m.created_at, m.id)))
