"""The notification outbox: written in the transaction that decided to notify, sent after.

A notification exists exactly once (unique ``dedupe_key``) whatever replays
happen upstream; ``sent_at`` and ``external_ref`` record delivery.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, update

from monitor.models import AlertPayload, Notification
from monitor.store.dialect import insert_on_conflict
from monitor.store.tables import outbox


def enqueue(conn: Connection, *, incident_id: int, dedupe_key: str, kind: str, channel: str | None,
            recipients: Sequence[str], payload: AlertPayload, now: datetime,
            config_version: str | None = None) -> bool:
    """Queue a notification; returns False if the same one was queued before."""
    result = conn.execute(
        insert_on_conflict(conn, outbox).on_conflict_do_nothing(index_elements=["dedupe_key"]).values(
            incident_id=incident_id, dedupe_key=dedupe_key, kind=kind, channel=channel,
            recipients=list(recipients), payload=payload.to_json(), created_at=now, attempts=0,
            config_version=config_version,
        )
    )
    return bool(result.rowcount)


def pending(conn: Connection, limit: int = 100) -> list[Notification]:
    rows = conn.execute(select(outbox).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id).limit(limit))
    return [
        Notification(id=r.id, incident_id=r.incident_id, kind=r.kind, recipients=tuple(r.recipients),
                     channel=r.channel, payload=AlertPayload.from_json(r.payload), created_at=r.created_at,
                     attempts=r.attempts)
        for r in rows
    ]


def mark_attempt(conn: Connection, notification_id: int) -> None:
    """Recorded (and committed) before each send: after a crash, attempts > 0 says 'maybe sent'."""
    conn.execute(update(outbox).where(outbox.c.id == notification_id).values(attempts=outbox.c.attempts + 1))


def mark_sent(conn: Connection, notification_id: int, now: datetime, external_ref: str | None) -> None:
    conn.execute(update(outbox).where(outbox.c.id == notification_id)
                 .values(sent_at=now, external_ref=external_ref, last_error=None))


def mark_failed(conn: Connection, notification_id: int, error: str) -> None:
    conn.execute(update(outbox).where(outbox.c.id == notification_id).values(last_error=error[:1000]))


def external_ref(conn: Connection, incident_id: int, kind: str = "alert") -> str | None:
    """The receiver's id (e.g. Slack ts) of an incident's first message of this kind."""
    return conn.execute(select(outbox.c.external_ref).where(
        (outbox.c.incident_id == incident_id) & (outbox.c.kind == kind) & outbox.c.sent_at.is_not(None))
        .order_by(outbox.c.id).limit(1)).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class SentNotification:
    """What a delivered notification said: enough to draw its card again."""

    kind: str
    payload: AlertPayload
    recipients: tuple[str, ...]


def last_sent(conn: Connection, incident_id: int, kinds: Collection[str]) -> SentNotification | None:
    """The incident's most recently queued notification of one of ``kinds`` that was delivered."""
    row = conn.execute(select(outbox.c.kind, outbox.c.payload, outbox.c.recipients).where(
        (outbox.c.incident_id == incident_id) & outbox.c.sent_at.is_not(None) & outbox.c.kind.in_(list(kinds)))
        .order_by(outbox.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    return SentNotification(kind=row.kind, payload=AlertPayload.from_json(row.payload),
                            recipients=tuple(row.recipients or ()))


def sent_external_refs(conn: Connection, incident_id: int) -> list[str]:
    """The receiver's ids of every delivered notification of an incident, oldest first."""
    return [str(ref) for ref in conn.execute(select(outbox.c.external_ref).where(
        (outbox.c.incident_id == incident_id) & outbox.c.sent_at.is_not(None) & outbox.c.external_ref.is_not(None))
        .order_by(outbox.c.id)).scalars()]


def sent_per_kind(conn: Connection) -> dict[str, int]:
    """How many notifications of each kind were delivered, by kind name."""
    rows = conn.execute(select(outbox.c.kind, func.count()).where(outbox.c.sent_at.is_not(None))
                        .group_by(outbox.c.kind).order_by(outbox.c.kind))
    return {str(kind): int(n) for kind, n in rows}


def backlog(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None)))
               .scalar_one())



def sent_or_pending_recipients(conn: Connection, incident_id: int) -> list[list[str]]:
    """Recipient lists of every alert/escalation queued for an incident."""
    rows = conn.execute(select(outbox.c.recipients).where(
        (outbox.c.incident_id == incident_id) & outbox.c.kind.in_(["alert", "escalation"])))
    return [list(r[0]) for r in rows]
