"""Incidents, their transition log, the signals behind them and their mentions.

Several workers may change one incident at the same moment (a button click on one,
an escalation tick on another). Every state change therefore starts from the row
*locked* (``lock``, ``claim_due``): PostgreSQL's ``SELECT ... FOR NO KEY UPDATE``, the
write lock on SQLite. The check ("still notified? still due?") is made on what the
lock returned, so of two racing actions the second sees the first one's result and
never acts on a state that is gone. Grouping signals into incidents (find an open
one, else create one) takes ``lock_grouping``, so two detectors overlapping during a
hand-over never open the same incident twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, func, insert, select, update

from monitor.models import Incident, IncidentEvent, IncidentState, Severity, Signal
from monitor.store.dialect import insert_on_conflict, write_lock
from monitor.store.tables import incident_events, incident_mentions, incidents, signals

CLOSED = [s.value for s in IncidentState if s.is_closed]
GROUPING_LOCK = 0x6D6F6E69746F7201  # pg_advisory_xact_lock key of ``lock_grouping`` ("monitor" + 1)


def _incident(row: Any) -> Incident:
    m = row._mapping
    return Incident(
        id=int(m["id"]), key=m["key"], brand=m["brand"], rule=m["rule"], kind=m["kind"],
        severity=Severity(m["severity"]), state=IncidentState(m["state"]), policy=m["policy"], level=m["level"],
        cycle=m["cycle"], reason=m["reason"], opened_at=m["opened_at"], updated_at=m["updated_at"],
        last_mention_at=m["last_mention_at"], next_action_at=m["next_action_at"],
        acknowledged_by=m["acknowledged_by"], acknowledged_at=m["acknowledged_at"], closed_at=m["closed_at"],
        reason_data=m["reason_data"],
    )


def get(conn: Connection, incident_id: int) -> Incident | None:
    found = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
    return _incident(found) if found else None


def _for_update(conn: Connection, stmt: Select[Any], *, skip_locked: bool = False) -> Select[Any]:
    """Lock the selected incident rows until the transaction ends (see the module docstring).

    ``FOR NO KEY UPDATE``: the key never changes, so inserting a timeline event or a
    notification that refers to the row (a foreign key check) need not wait for it.
    """
    write_lock(conn)
    return stmt.with_for_update(key_share=True, skip_locked=skip_locked)


def lock(conn: Connection, incident_id: int) -> Incident | None:
    """The incident, locked for a state change: a concurrent change waits until this transaction ends."""
    found = conn.execute(_for_update(conn, select(incidents).where(incidents.c.id == incident_id))).first()
    return _incident(found) if found else None


def lock_grouping(conn: Connection) -> None:
    """Serialise "find the open incident for this signal, else open one" across workers, for this transaction.

    Not a row lock: the row does not exist yet when two detectors both decide to create
    it. A transaction-scoped advisory lock on PostgreSQL (released at commit or
    rollback, also when the worker dies), the write lock on SQLite.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(GROUPING_LOCK)))
    else:
        write_lock(conn)


def mention_ids(conn: Connection, incident_id: int) -> list[int]:
    """The incident's posts, oldest id first."""
    return [int(i) for i in conn.execute(
        select(incident_mentions.c.mention_id)
        .where(incident_mentions.c.incident_id == incident_id)
        .order_by(incident_mentions.c.mention_id)
    ).scalars()]


def find_open(conn: Connection, key: str, active_since: datetime) -> Incident | None:
    """An open incident with this key that had a mention recently enough to join."""
    found = conn.execute(
        select(incidents)
        .where(and_(incidents.c.key == key, incidents.c.state.not_in(CLOSED),
                    incidents.c.last_mention_at >= active_since))
        .order_by(incidents.c.id.desc())
        .limit(1)
    ).first()
    return _incident(found) if found else None


def find_open_window(conn: Connection, brand: str, active_since: datetime) -> Incident | None:
    """An open, still active volume (frequency/spike) incident for a brand: it inhibits single-post alerts."""
    found = conn.execute(
        select(incidents)
        .where(and_(incidents.c.brand == brand, incidents.c.kind == "window",
                    incidents.c.state.not_in(CLOSED), incidents.c.last_mention_at >= active_since))
        .order_by(incidents.c.id.desc())
        .limit(1)
    ).first()
    return _incident(found) if found else None


def find_open_with_mentions(conn: Connection, mention_ids: Sequence[int]) -> Incident | None:
    """The newest open incident that already holds every one of these mentions."""
    if not mention_ids:
        return None
    wanted = set(mention_ids)
    rows = conn.execute(
        select(incident_mentions.c.incident_id, incident_mentions.c.mention_id)
        .join(incidents, incidents.c.id == incident_mentions.c.incident_id)
        .where(and_(incident_mentions.c.mention_id.in_(list(wanted)), incidents.c.state.not_in(CLOSED)))
    ).all()
    held: dict[int, set[int]] = {}
    for incident_id, mention_id in rows:
        held.setdefault(incident_id, set()).add(mention_id)
    for incident_id in sorted(held, reverse=True):
        if held[incident_id] >= wanted:
            return get(conn, incident_id)
    return None


def _reason_data(signal: Signal) -> dict[str, Any] | None:
    return signal.detail.to_json() if signal.detail is not None else None


def create(conn: Connection, *, key: str, signal: Signal, policy: str, now: datetime) -> int:
    result = conn.execute(
        insert(incidents).values(
            key=key, brand=signal.brand, rule=signal.rule, kind=signal.kind, severity=signal.severity.value,
            state=IncidentState.OPEN.value, policy=policy, level=0, cycle=0, reason=signal.reason,
            reason_data=_reason_data(signal), opened_at=now, updated_at=now, last_mention_at=signal.fired_at,
        )
    )
    pk = result.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def update_fields(conn: Connection, incident_id: int, **values: Any) -> None:
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))


def transition(conn: Connection, incident_id: int, *, at: datetime, from_state: str | None, to_state: str,
               level: int, actor: str, note: str | None = None, config_version: str | None = None,
               note_data: dict[str, Any] | None = None, **values: Any) -> None:
    """Change state and log who/when/why (and under which procedure) in one go: the log is the history."""
    conn.execute(update(incidents).where(incidents.c.id == incident_id)
                 .values(state=to_state, level=level, updated_at=at, **values))
    conn.execute(insert(incident_events).values(incident_id=incident_id, at=at, from_state=from_state,
                                                to_state=to_state, level=level, actor=actor, note=note,
                                                note_data=note_data, config_version=config_version))


def log_event(conn: Connection, incident_id: int, *, at: datetime, state: str, level: int, actor: str,
              note: str, config_version: str | None = None, note_data: dict[str, Any] | None = None) -> None:
    conn.execute(insert(incident_events).values(incident_id=incident_id, at=at, from_state=state,
                                                to_state=state, level=level, actor=actor, note=note,
                                                note_data=note_data, config_version=config_version))


def attach_mentions(conn: Connection, incident_id: int, mention_ids: Sequence[int], now: datetime) -> list[int]:
    """Link mentions to an incident; returns the ones that were not linked before."""
    if not mention_ids:
        return []
    known = set(conn.execute(select(incident_mentions.c.mention_id).where(
        incident_mentions.c.incident_id == incident_id)).scalars())
    new = [i for i in dict.fromkeys(mention_ids) if i not in known]
    if new:
        conn.execute(
            insert_on_conflict(conn, incident_mentions).on_conflict_do_nothing(),
            [{"incident_id": incident_id, "mention_id": i, "added_at": now} for i in new],
        )
    return new


def record_signal(conn: Connection, signal: Signal, incident_id: int | None) -> None:
    conn.execute(insert(signals).values(
        rule=signal.rule, severity=signal.severity.value, brand=signal.brand, group_key=signal.group_key,
        kind=signal.kind, reason=signal.reason, reason_data=_reason_data(signal), fired_at=signal.fired_at,
        mention_ids=list(signal.mention_ids), incident_id=incident_id,
    ))


def last_signals(conn: Connection, since: datetime) -> list[tuple[str, str, datetime]]:
    """(rule, group, fired_at) of recent signals, to restore realert after a restart."""
    rows = conn.execute(select(signals.c.rule, signals.c.group_key, signals.c.fired_at)
                        .where(signals.c.fired_at >= since))
    return [(r[0], r[1], r[2]) for r in rows]


def _due(now: datetime) -> Select[Any]:
    return (select(incidents)
            .where(and_(incidents.c.next_action_at.is_not(None), incidents.c.next_action_at <= now,
                        incidents.c.state.not_in(CLOSED)))
            .order_by(incidents.c.next_action_at, incidents.c.id))


def due(conn: Connection, now: datetime) -> list[Incident]:
    """Open incidents whose next action (a level, a reminder, an expiry) has come (read only)."""
    return [_incident(r) for r in conn.execute(_due(now))]


def claim_due(conn: Connection, now: datetime) -> list[Incident]:
    """The due incidents, locked for this transaction: what an escalation tick acts on.

    ``SKIP LOCKED``: an incident another worker is ticking, or a person is clicking on
    right now, is left to them; the next tick looks at it again with whatever they did.
    Two ticks therefore never take the same step, and a tick never waits for a click.
    """
    return [_incident(r) for r in conn.execute(_for_update(conn, _due(now), skip_locked=True))]


def events(conn: Connection, incident_id: int) -> list[IncidentEvent]:
    rows = conn.execute(select(incident_events).where(incident_events.c.incident_id == incident_id)
                        .order_by(incident_events.c.id))
    return [IncidentEvent(id=int(r.id), incident_id=int(r.incident_id), at=r.at, from_state=r.from_state,
                          to_state=r.to_state, level=r.level, actor=r.actor, note=r.note, note_data=r.note_data)
            for r in rows]


def open_incidents(conn: Connection, *, for_update: bool = False) -> list[Incident]:
    """Every incident not yet closed, oldest first; ``for_update``: locked (a new procedure is applied)."""
    stmt = select(incidents).where(incidents.c.state.not_in(CLOSED)).order_by(incidents.c.id)
    return [_incident(r) for r in conn.execute(_for_update(conn, stmt) if for_update else stmt)]


def level_notified_at(conn: Connection, incident_id: int, level: int) -> datetime | None:
    """When the incident last moved to ``level`` (the start of that level's acknowledgement window)."""
    return conn.execute(select(incident_events.c.at).where(and_(
        incident_events.c.incident_id == incident_id, incident_events.c.to_state == "notified",
        incident_events.c.level == level, incident_events.c.note.like(f"level {level} notified%")))
        .order_by(incident_events.c.id.desc()).limit(1)).scalar()


def all_incidents(conn: Connection) -> list[Incident]:
    return [_incident(r) for r in conn.execute(select(incidents).order_by(incidents.c.id))]
