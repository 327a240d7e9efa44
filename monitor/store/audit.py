"""The audit trail: who did what, through which channel, refused attempts included; and an incident's notes.

Why a table and not a log line: a log line depends on the log level
(``MONITOR_LOG_LEVEL=WARNING`` dropped every silence added and expired) and on
where logs are kept. A row is written in the same transaction as the change it
records, so a change without its audit row cannot happen, and the incident's
record (``for_incident``) shows who acted on it from Slack, e-mail or the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, delete, insert, select, update

from monitor.store.tables import audit, incident_notes

Channel = Literal["console", "slack", "email", "cli"]
Outcome = Literal["done", "refused", "failed"]
MAX_NOTE = 4000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    channel: str
    action: str
    outcome: str
    incident_id: int | None
    detail: str | None
    address: str | None


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    incident_id: int
    at: datetime
    by: str
    text: str


def record(conn: Connection, *, at: datetime, actor: str, channel: Channel, action: str, outcome: Outcome = "done",
           incident_id: int | None = None, detail: str | None = None, address: str | None = None) -> None:
    """One row; long values are cut to the column's size rather than failing the action they record."""
    conn.execute(insert(audit).values(
        at=at, actor=actor[:128] or "?", channel=channel, action=action[:64], outcome=outcome,
        incident_id=incident_id, detail=detail[:500] if detail else None, address=address[:64] if address else None))


def forget_addresses_before(conn: Connection, cutoff: datetime) -> int:
    """Clear the client address of sign-in rows older than ``cutoff`` (the author period): an address is
    personal data, needed only while a run of guesses is being looked into; who acted and when stay."""
    result = conn.execute(update(audit).where(audit.c.address.is_not(None), audit.c.at < cutoff).values(address=None))
    return int(result.rowcount or 0)


def delete_unlinked_before(conn: Connection, cutoff: datetime) -> int:
    """Delete rows tied to no incident (sign-ins, silences) older than ``cutoff`` (the incident period); rows
    of an incident go with it (``ON DELETE CASCADE``)."""
    result = conn.execute(delete(audit).where(audit.c.incident_id.is_(None), audit.c.at < cutoff))
    return int(result.rowcount or 0)


def recent(conn: Connection, *, limit: int = 200, actor: str | None = None) -> list[AuditEntry]:
    """Newest first."""
    query = select(audit).order_by(audit.c.at.desc(), audit.c.id.desc()).limit(limit)
    if actor:
        query = query.where(audit.c.actor == actor)
    return [AuditEntry(**dict(r._mapping)) for r in conn.execute(query)]


def for_incident(conn: Connection, incident_id: int) -> list[AuditEntry]:
    """Oldest first: the incident's record of who did what."""
    rows = conn.execute(select(audit).where(audit.c.incident_id == incident_id).order_by(audit.c.at, audit.c.id))
    return [AuditEntry(**dict(r._mapping)) for r in rows]


def add_note(conn: Connection, incident_id: int, *, by: str, text: str, at: datetime) -> int:
    """A note or hand-over; ValueError (a readable one) when it is empty or too long."""
    text = text.strip()
    if not text:
        raise ValueError("write something: the note is empty")
    if len(text) > MAX_NOTE:
        raise ValueError(f"a note holds at most {MAX_NOTE} characters (this one has {len(text)})")
    result = conn.execute(insert(incident_notes).values(incident_id=incident_id, at=at, by=by[:128], text=text))
    pk = result.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def notes(conn: Connection, incident_id: int) -> list[Note]:
    rows = conn.execute(select(incident_notes).where(incident_notes.c.incident_id == incident_id)
                        .order_by(incident_notes.c.at, incident_notes.c.id))
    return [Note(**dict(r._mapping)) for r in rows]


def seen_since(conn: Connection, *, action: str, address: str, since: datetime) -> bool:
    """Whether ``action`` was recorded for ``address`` at or after ``since`` (to coalesce repeated refusals)."""
    row = conn.execute(select(audit.c.id).where(audit.c.action == action, audit.c.address == address[:64],
                                                audit.c.at >= since).limit(1)).first()
    return row is not None
