"""The notification outbox: written in the transaction that decided to notify, sent after.

A notification exists exactly once (unique ``dedupe_key``) whatever replays
happen upstream; ``sent_at`` and ``external_ref`` record delivery. ``status`` says
where an undelivered one stands: *pending* (due, or deferred until
``next_attempt_at`` because the receiver asked us to wait), *blocked* (refused
for a reason only a person can fix: tried again slowly and at every start, never
given up) or *superseded* (overtaken before it could go out: recorded, not sent).

Several workers may deliver from one outbox: each notification is *claimed*
(``claim``: a conditional UPDATE of ``claimed_by``/``claimed_until``) before it
is sent, so exactly one of them sends it. Every end of an attempt (sent,
deferred, blocked, superseded) lets the claim go; a worker that dies mid-send
leaves it to lapse (after the worker's lease, ``CLAIM_TTL`` without one), and
whoever takes it then sees ``attempts > 0`` and looks in Slack before posting
again. Claims are *fenced*: each carries a token (``claim_token``, raised by
every claim), the sender renews its claim right before each post, and the
statement that records the outcome checks the token, so a worker frozen past its
claim neither posts nor records what another worker took over meanwhile.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, or_, select, update

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


PENDING, SENT, BLOCKED, SUPERSEDED = "pending", "sent", "blocked", "superseded"
# A sending claim lapses after this: longer than the slowest send (the Slack client's retries included).
CLAIM_TTL = timedelta(minutes=3)
_FREE = {"claimed_by": None, "claimed_until": None}


def this_process() -> str:
    """Who claims, when the caller names nobody: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claim taken: the notification's ``attempts`` so far, and the fencing ``token`` of this claim.

    Every later write about this try (attempt, sent, deferred, blocked) names the
    token: a worker frozen past its claim, whose notification another worker took
    over meanwhile (a higher token), changes nothing when it wakes up.
    """

    claimant: str
    token: int
    attempts: int


def claim(conn: Connection, notification_id: int, claimant: str, now: datetime, *, ttl: timedelta = CLAIM_TTL,
          unemailed: bool = False) -> Claimed | None:
    """Take the notification for sending; None when someone else has it.

    One conditional UPDATE: still undelivered, and unclaimed, or its claim lapsed, or
    the claim is ``claimant``'s own: a worker runs one delivery loop, so a claim of its
    own is one its previous run left when it died (the same id restarted). Of two
    workers claiming at once exactly one gets it; the claim's token is one higher than
    any before it. ``unemailed``: only if its e-mail fallback has not gone out yet.
    """
    condition = ((outbox.c.id == notification_id) & outbox.c.status.in_(UNDELIVERED)
                 & or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until <= now,
                       outbox.c.claimed_by == claimant[:128]))
    if unemailed:
        condition &= outbox.c.email_sent_at.is_(None)
    row = conn.execute(update(outbox).where(condition)
                       .values(claimed_by=claimant[:128], claimed_until=now + ttl,
                               claim_token=outbox.c.claim_token + 1)
                       .returning(outbox.c.attempts, outbox.c.claim_token)).first()
    return None if row is None else Claimed(claimant[:128], int(row[1]), int(row[0]))


def renew(conn: Connection, notification_id: int, held: Claimed, now: datetime, ttl: timedelta) -> bool:
    """Extend ``held`` to ``now + ttl`` if it is still this claim (same claimant, same token, undelivered).

    False: the claim was freed or taken over (another worker has, or had, the
    notification): the caller must not post nor record anything about it.
    """
    row = conn.execute(update(outbox).where(_is_held(notification_id, held) & outbox.c.status.in_(UNDELIVERED))
                       .values(claimed_until=now + ttl).returning(outbox.c.id)).first()
    return row is not None


def _is_held(notification_id: int, held: Claimed | None) -> Any:
    """The row, and (with ``held``) only while that claim is the current one: the fence of every write."""
    condition = outbox.c.id == notification_id
    if held is not None:
        condition &= (outbox.c.claimed_by == held.claimant) & (outbox.c.claim_token == held.token)
    return condition


def release(conn: Connection, notification_id: int) -> None:
    """Let a claim go without changing anything else (the e-mail fallback is done with it)."""
    conn.execute(update(outbox).where(outbox.c.id == notification_id).values(**_FREE))


def claimants_among(conn: Connection, workers: Collection[str]) -> set[str]:
    """Which of ``workers`` hold a sending claim now (so that only those are named as freed)."""
    return set(conn.execute(select(outbox.c.claimed_by).distinct().where(
        outbox.c.claimed_by.in_([w[:128] for w in workers]))).scalars())


def release_claims_by(conn: Connection, claimants: Collection[str] | None = None) -> int:
    """Free the claims of workers known to be gone (None: every claim, for a store only one worker uses).

    Their notifications are then sent at once instead of when the claims lapse; the
    ``attempts`` they left say "maybe sent", so Slack is looked at before posting again.
    """
    stmt = update(outbox).where(outbox.c.claimed_by.is_not(None))
    if claimants is not None:
        stmt = stmt.where(outbox.c.claimed_by.in_([c[:128] for c in claimants]))
    return int(conn.execute(stmt.values(**_FREE)).rowcount)
UNDELIVERED = (PENDING, BLOCKED)
DELIVERED_NOTE = "delivered"  # how the timeline line of a delivered level call starts (the digest looks for it)


@dataclass(frozen=True, slots=True)
class Queued:
    """An undelivered notification and where its delivery stands."""

    notification: Notification
    status: str
    next_attempt_at: datetime | None
    blocked_since: datetime | None
    email_sent_at: datetime | None
    last_error: str | None


def _notification(r: Any) -> Notification:
    return Notification(id=r.id, incident_id=r.incident_id, kind=r.kind, recipients=tuple(r.recipients),
                        channel=r.channel, payload=AlertPayload.from_json(r.payload), created_at=r.created_at,
                        attempts=r.attempts)


def pending(conn: Connection, limit: int = 100) -> list[Notification]:
    """Undelivered notifications (pending or blocked), oldest first."""
    return [q.notification for q in undelivered(conn, limit)]


def undelivered(conn: Connection, limit: int = 100) -> list[Queued]:
    rows = conn.execute(select(outbox).where(outbox.c.status.in_(UNDELIVERED)).order_by(outbox.c.id).limit(limit))
    return [Queued(_notification(r), r.status, r.next_attempt_at, r.blocked_since, r.email_sent_at, r.last_error)
            for r in rows]


def listing(conn: Connection, statuses: Collection[str], limit: int = 200) -> list[dict[str, Any]]:
    """Rows of these statuses, oldest first, as plain dicts (``monitor outbox``)."""
    rows = conn.execute(select(outbox.c.id, outbox.c.incident_id, outbox.c.kind, outbox.c.status,
                               outbox.c.created_at, outbox.c.attempts, outbox.c.last_error, outbox.c.note,
                               outbox.c.next_attempt_at, outbox.c.blocked_since, outbox.c.email_sent_at,
                               outbox.c.channel, outbox.c.recipients)
                        .where(outbox.c.status.in_(list(statuses))).order_by(outbox.c.id).limit(limit))
    return [dict(r._mapping) for r in rows]


def count_by_status(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
    return {str(status): int(n) for status, n in rows}


def defer(conn: Connection, notification_id: int, error: str, until: datetime | None, *,
          held: Claimed | None = None) -> bool:
    """A failure that time can fix: stays pending; ``until`` (e.g. Slack's Retry-After) holds it back.

    ``held``: only while that claim is current (False: another worker has it now)."""
    return bool(conn.execute(update(outbox).where(_is_held(notification_id, held))
                             .values(last_error=error[:1000], next_attempt_at=until, **_FREE)).rowcount)


def mark_blocked(conn: Connection, notification_id: int, error: str, now: datetime, retry_at: datetime, *,
                 held: Claimed | None = None) -> bool:
    """Refused for a reason a person must fix: kept, with the error, and tried again at ``retry_at``."""
    return bool(conn.execute(update(outbox).where(_is_held(notification_id, held)).values(
        status=BLOCKED, last_error=error[:1000], next_attempt_at=retry_at,
        blocked_since=func.coalesce(outbox.c.blocked_since, now), **_FREE)).rowcount)


def mark_superseded(conn: Connection, notification_id: int, reason: str, *, held: Claimed | None = None) -> bool:
    return bool(conn.execute(update(outbox).where(_is_held(notification_id, held))
                             .values(status=SUPERSEDED, note=reason[:1000], next_attempt_at=None, **_FREE)).rowcount)


def release_blocked(conn: Connection) -> int:
    """At start: every blocked notification is due again now (the cause may have been fixed meanwhile)."""
    return int(conn.execute(update(outbox).where(outbox.c.status == BLOCKED).values(next_attempt_at=None)).rowcount)


def mark_emailed(conn: Connection, notification_id: int, now: datetime) -> None:
    conn.execute(update(outbox).where(outbox.c.id == notification_id).values(email_sent_at=now))


def delivered_recipients(conn: Connection, incident_id: int) -> set[str]:
    """Everyone a level call of this incident actually reached (by Slack or by e-mail)."""
    rows = conn.execute(select(outbox.c.recipients).where(
        (outbox.c.incident_id == incident_id) & outbox.c.kind.in_(["alert", "escalation"])
        & or_(outbox.c.status == SENT, outbox.c.email_sent_at.is_not(None))))
    return {str(r) for row in rows for r in (row[0] or ())}


def later(conn: Connection, notification: Notification) -> list[tuple[str, AlertPayload]]:
    """The incident's notifications queued after this one and not superseded: (kind, payload), oldest first."""
    rows = conn.execute(select(outbox.c.kind, outbox.c.payload).where(
        (outbox.c.incident_id == notification.incident_id) & (outbox.c.id > notification.id)
        & (outbox.c.status != SUPERSEDED)).order_by(outbox.c.id))
    return [(str(kind), AlertPayload.from_json(payload)) for kind, payload in rows]


def first_channel(conn: Connection, incident_id: int) -> str | None:
    """The channel of the incident's first level call that names one (where its card belongs)."""
    return conn.execute(select(outbox.c.channel).where(
        (outbox.c.incident_id == incident_id) & outbox.c.channel.is_not(None)).order_by(outbox.c.id).limit(1)
    ).scalar_one_or_none()


def mark_attempt(conn: Connection, notification_id: int, *, held: Claimed | None = None) -> bool:
    """Recorded (and committed) before each send: after a crash, attempts > 0 says 'maybe sent'."""
    return bool(conn.execute(update(outbox).where(_is_held(notification_id, held))
                             .values(attempts=outbox.c.attempts + 1)).rowcount)


def mark_sent(conn: Connection, notification_id: int, now: datetime, external_ref: str | None,
              via: str | None = None, *, held: Claimed | None = None) -> bool:
    """Record the delivery; with ``held``, only if that claim is still the current one (the fence: one
    statement checks the token and records the send). False: another worker took it over meanwhile."""
    return bool(conn.execute(update(outbox).where(_is_held(notification_id, held))
                             .values(sent_at=now, external_ref=external_ref, last_error=None, status=SENT,
                                     delivered_via=via, next_attempt_at=None, **_FREE)).rowcount)


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
    """Notifications still to deliver (pending or blocked; superseded ones are done)."""
    return int(conn.execute(select(func.count()).select_from(outbox).where(outbox.c.status.in_(UNDELIVERED)))
               .scalar_one())



def sent_or_pending_recipients(conn: Connection, incident_id: int) -> list[list[str]]:
    """Recipient lists of every alert/escalation queued for an incident."""
    rows = conn.execute(select(outbox.c.recipients).where(
        (outbox.c.incident_id == incident_id) & outbox.c.kind.in_(["alert", "escalation"])))
    return [list(r[0]) for r in rows]
