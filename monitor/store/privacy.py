"""Where personal data sits in the store, and the statements that remove or rewrite it.

``privacy/retention.py`` (the nightly purge) and ``privacy/erasure.py`` (``monitor
forget``) decide *what* goes and what a copy becomes (``privacy/scrub.py``); this
module holds every query they need: the posts past a retention period or by one
author, the copies of a post in our own rows (incident reasons, timeline notes,
signal reasons, silence reasons, outbox payloads), and the deletes that take a
post or a closed incident with everything that hangs off it. Like the other
store modules, each function takes a ``Connection`` so a caller keeps one chunk
of work in one transaction.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)

from monitor import reasons
from monitor.models import AlertPayload
from monitor.store.mentions import text_hash
from monitor.store.outbox import SentNotification
from monitor.store.tables import (
    incident_events,
    incident_mentions,
    incident_notes,
    incidents,
    labels,
    mentions,
    outbox,
    sentiments,
    signals,
    silences,
)

PURGED_HASH_PREFIX = "purged:"  # + the row id: matches no real text, so no score is ever reused from it
_CHUNK = 500  # ids per IN (...) list


class Sentence(enum.StrEnum):
    """Where our own sentences live (they may name a person); the value is the table, as reports count it."""

    INCIDENT_REASON = "incidents"
    TIMELINE_NOTE = "incident_events"
    SIGNAL_REASON = "signals"
    SILENCE_REASON = "silences"
    INCIDENT_NOTE = "incident_notes"  # the team's notes and hand-overs in the console


_SENTENCE_COLUMNS = {
    Sentence.INCIDENT_REASON: incidents.c.reason,
    Sentence.TIMELINE_NOTE: incident_events.c.note,
    Sentence.SIGNAL_REASON: signals.c.reason,
    Sentence.SILENCE_REASON: silences.c.reason,
    Sentence.INCIDENT_NOTE: incident_notes.c.text,
}


@dataclass(frozen=True, slots=True)
class PostRef:
    """A stored post as the purge sees it: who wrote it, its link, when it was published."""

    id: int
    author_handle: str | None
    url: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SignalReason:
    id: int
    reason: str
    mention_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class IncidentsDeleted:
    """Rows removed with a batch of closed incidents, per kind."""

    notifications: int = 0
    events: int = 0
    signals: int = 0
    incidents: int = 0


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start : start + _CHUNK])


def _contains(column: ColumnElement[Any], needles: Sequence[str]) -> ColumnElement[bool]:
    """A case-insensitive prefilter for any spelling; the caller's regex decides. ``_`` is a LIKE wildcard: harmless."""
    return or_(*(func.lower(column).contains(n.lower(), autoescape=True) for n in needles))


# --- posts ----------------------------------------------------------------------------------------

def author_handles(conn: Connection, source: str | None = None) -> list[str]:
    """Every distinct stored ``author_handle`` (on one platform or all).

    Erasure folds them in Python: no database folds case as ``privacy.scrub.normalise_handle``
    does (SQLite's ``lower`` is ASCII only, and none turns ``ß`` into ``ss``).
    """
    stmt = select(mentions.c.author_handle).distinct().where(mentions.c.author_handle.is_not(None))
    if source:
        stmt = stmt.where(mentions.c.source == source)
    return [str(h) for h in conn.execute(stmt).scalars()]


def posts_by_author(conn: Connection, spellings: Sequence[str], source: str | None = None) -> dict[int, str | None]:
    """Post id -> stored handle of every post whose handle is exactly one of ``spellings``."""
    wanted: list[ColumnElement[bool]] = [mentions.c.author_handle.in_(list(spellings))]
    if source:
        wanted.append(mentions.c.source == source)
    return {int(i): a for i, a in conn.execute(select(mentions.c.id, mentions.c.author_handle)
                                               .where(and_(*wanted)))}


def posts_naming(conn: Connection, needles: Sequence[str],
                 source: str | None = None) -> list[tuple[int, str, str | None]]:
    """(id, text, url) of posts whose text or link may contain a needle (a prefilter: the caller checks)."""
    where: list[ColumnElement[bool]] = [or_(_contains(mentions.c.text, needles), _contains(mentions.c.url, needles))]
    if source:
        where.append(mentions.c.source == source)
    return [(int(i), t, u) for i, t, u in conn.execute(select(mentions.c.id, mentions.c.text, mentions.c.url)
                                                        .where(and_(*where))).all()]


def platform_ids(conn: Connection, ids: Sequence[int]) -> list[str]:
    """The platform ids (``source_id``) of these posts: what links, keys and replies copy."""
    found: list[str] = []
    for chunk in _chunks(ids):
        found += [str(s) for s in conn.execute(select(mentions.c.source_id).where(mentions.c.id.in_(chunk))).scalars()]
    return found


def conversations_in(conn: Connection, needles: Sequence[str], source: str | None) -> list[tuple[int, str]]:
    """(id, conversation_id) of posts whose conversation id may contain a needle (the replies to an erased post)."""
    where: list[ColumnElement[bool]] = [_contains(mentions.c.conversation_id, needles)]
    if source:
        where.append(mentions.c.source == source)
    return [(int(i), str(c)) for i, c in conn.execute(select(mentions.c.id, mentions.c.conversation_id)
                                                       .where(and_(*where))).all()]


def set_conversation(conn: Connection, mention_id: int, conversation_id: str) -> None:
    conn.execute(update(mentions).where(mentions.c.id == mention_id).values(conversation_id=conversation_id))


_KEY_COLUMNS = {"incidents": incidents.c.key, "signals": signals.c.group_key}


def keys_containing(conn: Connection, needles: Sequence[str]) -> list[tuple[str, int, str]]:
    """(table, id, key) of incident keys and signal group keys that may contain a needle."""
    out: list[tuple[str, int, str]] = []
    for where, column in _KEY_COLUMNS.items():
        out += [(where, int(i), str(k)) for i, k in conn.execute(select(column.table.c.id, column)
                                                                 .where(_contains(column, needles)))]
    return out


def set_key(conn: Connection, where: str, row_id: int, key: str) -> None:
    column = _KEY_COLUMNS[where]
    conn.execute(update(column.table).where(column.table.c.id == row_id).values({column.name: key}))


def rewrite_post(conn: Connection, mention_id: int, text: str, url: str | None) -> None:
    """Replace a post's text and link; ``text_hash`` follows, so a score is reused for the new text only."""
    conn.execute(update(mentions).where(mentions.c.id == mention_id)
                 .values(text=text, url=url, text_hash=text_hash(text)))


def _posts_before(conn: Connection, cutoff: datetime, limit: int, *left: ColumnElement[bool]) -> list[PostRef]:
    rows = conn.execute(select(mentions.c.id, mentions.c.author_handle, mentions.c.url, mentions.c.created_at)
                        .where(and_(mentions.c.created_at < cutoff, *left)).order_by(mentions.c.id).limit(limit))
    return [PostRef(int(r.id), r.author_handle, r.url, r.created_at) for r in rows]


def posts_before(conn: Connection, cutoff: datetime, limit: int) -> list[PostRef]:
    """Up to ``limit`` posts published before ``cutoff``, lowest id first."""
    return _posts_before(conn, cutoff, limit)


def posts_with_text_before(conn: Connection, cutoff: datetime, limit: int) -> list[PostRef]:
    """Like ``posts_before``, only those that still have a text or a link."""
    return _posts_before(conn, cutoff, limit, or_(mentions.c.text != "", mentions.c.url.is_not(None)))


def posts_with_author_before(conn: Connection, cutoff: datetime, limit: int) -> list[PostRef]:
    """Like ``posts_before``, only those that still have an author handle."""
    return _posts_before(conn, cutoff, limit, mentions.c.author_handle.is_not(None))


def remove_texts(conn: Connection, ids: Sequence[int]) -> int:
    """Empty the text and link of these posts; their hash becomes one no real text has. Returns rows changed."""
    changed = 0
    for chunk in _chunks(ids):
        changed += conn.execute(update(mentions).where(mentions.c.id.in_(chunk)).values(
            text="", url=None, text_hash=literal(PURGED_HASH_PREFIX).concat(cast(mentions.c.id, String)))).rowcount
    return changed


def remove_authors(conn: Connection, new_urls: Mapping[int, str | None]) -> None:
    """Drop the author handle of these posts (id -> the link without the handle in it)."""
    if new_urls:
        conn.execute(
            update(mentions).where(mentions.c.id == bindparam("mid")).values(author_handle=None,
                                                                             url=bindparam("new_url")),
            [{"mid": mid, "new_url": url} for mid, url in new_urls.items()])


def delete_posts(conn: Connection, ids: Sequence[int]) -> int:
    """Delete posts with their scores and incident links; returns the posts deleted."""
    deleted = 0
    for chunk in _chunks(ids):
        conn.execute(delete(sentiments).where(sentiments.c.mention_id.in_(chunk)))
        conn.execute(delete(labels).where(labels.c.mention_id.in_(chunk)))  # what the team said about them
        conn.execute(delete(incident_mentions).where(incident_mentions.c.mention_id.in_(chunk)))
        deleted += conn.execute(delete(mentions).where(mentions.c.id.in_(chunk))).rowcount
    return deleted


# --- copies in our own rows -----------------------------------------------------------------------

def incidents_holding(conn: Connection, mention_ids: Sequence[int]) -> dict[int, set[int]]:
    """Incident id -> which of these posts it holds."""
    held: dict[int, set[int]] = {}
    for chunk in _chunks(mention_ids):
        for incident_id, mention_id in conn.execute(
                select(incident_mentions.c.incident_id, incident_mentions.c.mention_id)
                .where(incident_mentions.c.mention_id.in_(chunk))):
            held.setdefault(int(incident_id), set()).add(int(mention_id))
    return held


def incident_reason(conn: Connection, incident_id: int) -> str | None:
    return conn.execute(select(incidents.c.reason).where(incidents.c.id == incident_id)).scalar_one_or_none()


def timeline_notes(conn: Connection, incident_id: int) -> list[tuple[int, str]]:
    """(event id, note) of an incident's timeline entries that have a note."""
    return [(int(i), n) for i, n in conn.execute(select(incident_events.c.id, incident_events.c.note).where(
        and_(incident_events.c.incident_id == incident_id, incident_events.c.note.is_not(None))))]


def incident_signal_reasons(conn: Connection, incident_id: int) -> list[tuple[int, str]]:
    """(signal id, reason) of the signals filed under an incident."""
    return [(int(i), r) for i, r in conn.execute(select(signals.c.id, signals.c.reason)
                                                 .where(signals.c.incident_id == incident_id))]


def signal_reasons(conn: Connection, *, without_incident: bool = False,
                   fired_since: datetime | None = None) -> list[SignalReason]:
    """Signals with the posts they name: all, or only those left without an incident, fired since a time."""
    where: list[ColumnElement[bool]] = []
    if without_incident:
        where.append(signals.c.incident_id.is_(None))
    if fired_since is not None:
        where.append(signals.c.fired_at >= fired_since)
    stmt = select(signals.c.id, signals.c.reason, signals.c.mention_ids)
    rows = conn.execute(stmt.where(and_(*where)) if where else stmt)
    return [SignalReason(int(i), r, tuple(int(m) for m in (ids or []))) for i, r, ids in rows.all()]


def sentences_containing(conn: Connection, where: Sentence, needles: Sequence[str]) -> list[tuple[int, str]]:
    """(row id, text) of the sentences of one kind that may contain a needle (a prefilter: the caller checks)."""
    column = _SENTENCE_COLUMNS[where]
    return [(int(i), t) for i, t in conn.execute(select(column.table.c.id, column)
                                                 .where(_contains(column, needles))).all()]


# The facts stored beside a sentence (``monitor.reasons``, ``monitor.notes``): they name the same author.
_SENTENCE_DATA = {Sentence.INCIDENT_REASON: incidents.c.reason_data, Sentence.SIGNAL_REASON: signals.c.reason_data,
                  Sentence.TIMELINE_NOTE: incident_events.c.note_data}


def _rewrite_data(where: Sentence, data: Any, rewrite: Callable[[str], str | None] | None) -> Any:
    if rewrite is None:
        return None
    if where is not Sentence.TIMELINE_NOTE:
        return reasons.rewrite_json(data, rewrite)
    if not isinstance(data, Mapping) or data.get("reason") is None:
        return data  # the engine's notes name responders, not the people who posted
    return {**data, "reason": reasons.rewrite_json(data["reason"], rewrite)}


def set_sentence(conn: Connection, where: Sentence, row_id: int, text: str | None,
                 rewrite: Callable[[str], str | None] | None = None) -> None:
    """Store a rewritten sentence. The facts beside it (``reason_data``, ``note_data``) name the same author:
    ``rewrite`` (what made ``text``) is applied to them too; without it they are dropped, and the rewritten
    sentence is shown instead."""
    column = _SENTENCE_COLUMNS[where]
    table = column.table
    values: dict[str, Any] = {column.name: text}
    data_column = _SENTENCE_DATA.get(where)
    if data_column is not None:
        data = conn.execute(select(data_column).where(table.c.id == row_id)).scalar_one_or_none()
        if data is not None:
            values[data_column.name] = _rewrite_data(where, data, rewrite)
    conn.execute(update(table).where(table.c.id == row_id).values(values))


def incident_payloads(conn: Connection, incident_id: int) -> list[tuple[int, Any]]:
    """(notification id, payload) of an incident's notifications, as stored."""
    return [(int(i), p) for i, p in conn.execute(select(outbox.c.id, outbox.c.payload)
                                                 .where(outbox.c.incident_id == incident_id))]


def payloads_containing(conn: Connection, needles: Sequence[str]) -> list[tuple[int, int, Any]]:
    """(notification id, incident id, payload) of notifications that may contain a needle.

    The payload is searched as JSON text, where SQLite keeps ``ß`` escaped (``\\u00df``): both forms are looked for.
    """
    in_json = sorted({*needles, *(json.dumps(n)[1:-1] for n in needles)})
    return [(int(i), int(inc), p) for i, inc, p in conn.execute(
        select(outbox.c.id, outbox.c.incident_id, outbox.c.payload)
        .where(_contains(cast(outbox.c.payload, Text), in_json))).all()]


def set_payload(conn: Connection, notification_id: int, payload: dict[str, Any]) -> None:
    conn.execute(update(outbox).where(outbox.c.id == notification_id).values(payload=payload))


# --- incidents and silences -----------------------------------------------------------------------

def closed_incidents_before(conn: Connection, cutoff: datetime, limit: int) -> list[int]:
    """Up to ``limit`` incidents closed before ``cutoff``, lowest id first."""
    return [int(i) for i in conn.execute(select(incidents.c.id).where(
        and_(incidents.c.closed_at.is_not(None), incidents.c.closed_at < cutoff))
        .order_by(incidents.c.id).limit(limit)).scalars()]


def delete_incidents(conn: Connection, ids: Sequence[int]) -> IncidentsDeleted:
    """Delete incidents with their notifications, timeline, post links and signals.

    Children first and explicitly: the store's cascades need SQLite's foreign_keys pragma.
    """
    notifications = events = signal_rows = incident_rows = 0
    for chunk in _chunks(ids):
        notifications += conn.execute(delete(outbox).where(outbox.c.incident_id.in_(chunk))).rowcount
        events += conn.execute(delete(incident_events).where(incident_events.c.incident_id.in_(chunk))).rowcount
        conn.execute(delete(incident_mentions).where(incident_mentions.c.incident_id.in_(chunk)))
        signal_rows += conn.execute(delete(signals).where(signals.c.incident_id.in_(chunk))).rowcount
        incident_rows += conn.execute(delete(incidents).where(incidents.c.id.in_(chunk))).rowcount
    return IncidentsDeleted(notifications=notifications, events=events, signals=signal_rows,
                            incidents=incident_rows)


def delete_unlinked_signals_before(conn: Connection, cutoff: datetime) -> int:
    """Signals left without an incident (their incident was deleted: SET NULL) fired before ``cutoff``."""
    return int(conn.execute(delete(signals).where(
        and_(signals.c.incident_id.is_(None), signals.c.fired_at < cutoff))).rowcount)


def silence_authors(conn: Connection) -> list[tuple[int, str]]:
    """(silence id, author) of every author silence; the caller folds them (see ``author_handles``)."""
    return [(int(i), str(a)) for i, a in conn.execute(select(silences.c.id, silences.c.author)
                                                      .where(silences.c.author.is_not(None))).all()]


def delete_silences(conn: Connection, ids: Sequence[int]) -> int:
    if not ids:
        return 0
    return int(conn.execute(delete(silences).where(silences.c.id.in_(list(ids)))).rowcount)


def delete_ended_author_silences(conn: Connection, cutoff: datetime) -> int:
    """Author silences that ended before ``cutoff``: they name a person and mute nothing any more."""
    return int(conn.execute(delete(silences).where(
        and_(silences.c.author.is_not(None), silences.c.ends_at < cutoff))).rowcount)


def sent_notification(conn: Connection, notification_id: int) -> SentNotification | None:
    """A delivered notification as it is stored now (after an erasure: rewritten), to redraw its message."""
    row = conn.execute(select(outbox.c.kind, outbox.c.payload, outbox.c.recipients).where(
        (outbox.c.id == notification_id) & outbox.c.sent_at.is_not(None))).first()
    if row is None:
        return None
    return SentNotification(kind=row.kind, payload=AlertPayload.from_json(row.payload),
                            recipients=tuple(row.recipients or ()))
