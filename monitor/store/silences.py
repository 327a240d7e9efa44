"""Silences: stored so every worker process and the CLI see the same mutes.

A silence is never deleted by hand: ``remove`` *expires* it (its end becomes
now, with who removed it and when), so the record and the weekly digest still
show that a brand was muted, by whom and why. Only an erasure deletes the
silences of the person it erases, and the purge those long ended.

An author silence stores the handle in ``privacy.scrub.normalise_handle``'s form,
the same form an erasure uses to find the silences of the person it erases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy import Connection, and_, insert, select, update

from monitor.privacy.scrub import normalise_handle
from monitor.store.tables import silences


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    brand: str | None
    rule: str | None
    author: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    removed_at: datetime | None = None
    removed_by: str | None = None

    def matches(self, brand: str, rule: str, authors: set[str]) -> bool:
        """Every field given must match; an author silence matches if any of the posts is theirs."""
        return ((self.brand is None or self.brand.casefold() == brand.casefold())
                and (self.rule is None or self.rule == rule)
                and (self.author is None or normalise_handle(self.author) in authors))


def add(conn: Connection, *, brand: str | None, rule: str | None, author: str | None, starts_at: datetime,
        ends_at: datetime, reason: str, created_by: str) -> int:
    if brand is None and rule is None and author is None:
        raise ValueError("a silence needs a brand, a rule or an author (muting everything is not allowed)")
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    result = conn.execute(insert(silences).values(
        brand=brand, rule=rule, author=normalise_handle(author) if author else None, starts_at=starts_at,
        ends_at=ends_at, reason=reason, created_by=created_by))
    pk = result.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def active(conn: Connection, now: datetime) -> list[Silence]:
    rows = conn.execute(select(silences).where(and_(silences.c.starts_at <= now, silences.c.ends_at > now))
                        .order_by(silences.c.id))
    return [Silence(**dict(r._mapping)) for r in rows]


def all_silences(conn: Connection) -> list[Silence]:
    return [Silence(**dict(r._mapping)) for r in conn.execute(select(silences).order_by(silences.c.id))]


def remove(conn: Connection, silence_id: int, *, by: str, now: datetime) -> bool:
    """End a silence at ``now`` and record who did; False when there is no such silence.

    One that has not started yet ends before it begins (start and end both now):
    it never mutes anything, and the row says it was planned and withdrawn.
    A silence that already ended keeps its end; the removal is recorded anyway.
    """
    row = conn.execute(select(silences.c.starts_at, silences.c.ends_at).where(silences.c.id == silence_id)).first()
    if row is None:
        return False
    values: dict[str, object] = {"removed_at": now, "removed_by": by}
    if row.ends_at > now:
        values["ends_at"] = now
        if row.starts_at > now:
            values["starts_at"] = now
    conn.execute(update(silences).where(silences.c.id == silence_id).values(**values))
    return True


def overlapping(conn: Connection, start: datetime, end: datetime) -> list[Silence]:
    """Silences in force at some moment of ``[start, end)``: what the digest lists for a week."""
    rows = conn.execute(select(silences).where(and_(silences.c.starts_at < end, silences.c.ends_at > start))
                        .order_by(silences.c.starts_at, silences.c.id))
    return [Silence(**dict(r._mapping)) for r in rows]


def added_detail(silence_id: int, *, brand: str | None, rule: str | None, author: str | None, ends_at: datetime,
                 zone: tzinfo, reason: str) -> str:
    """What the audit row of a new silence says, wherever it was set (console or CLI).

    The author's handle is not written ("an author"): the audit keeps who acted, and an erasure should not
    have to search free text for the person it erases; the silence row itself holds the handle.
    """
    what = ", ".join(f"{k} {v}" for k, v in (("brand", brand), ("rule", rule)) if v)
    until = ends_at.astimezone(zone)
    return f"#{silence_id} {what}{' an author' if author else ''} until {until:%Y-%m-%d %H:%M %Z}: {reason}"
