"""Catch-up delivers the present, not the past.

After an outage the outbox holds what the escalation engine decided while Slack
was away. Sent in order, it would replay history: "you are called at level 2"
in the same second as "false positive, closed". Just before each notification
goes out, ``overtaken`` asks whether something newer already says more, and
``present`` brings what is left up to date (the channel its card belongs in,
only the people who were really called).

The rules, per kind:

* a level call (``alert``, ``escalation``) is overtaken once the incident is no
  longer waiting for an acknowledgement, or when a later round calls the same
  level again. A level call is *not* overtaken by the next level's call: if
  level 1 never got the alert, it is still called first, and when its
  acknowledgement window has passed meanwhile, the engine has already queued
  level 2 and both go out together (see the README, "When Slack fails");
* a ``reminder`` by a newer reminder, or once the incident is no longer acknowledged;
* a state update (``acknowledged``, ``snoozed``) by any newer state or level call:
  the card is redrawn once, in its newest state;
* ``joined`` (new posts) once the incident is closed: its closing card counts them;
* a closing message never: it is the incident's last word.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from monitor.models import IncidentState, Notification
from monitor.store import incidents as repo
from monitor.store import outbox

LEVEL_CALLS = ("alert", "escalation")
STATE_UPDATES = ("acknowledged", "snoozed")
CLOSING = ("resolved", "false_positive", "expired")
NEWER_STATE = (*STATE_UPDATES, *CLOSING, "escalation")


def overtaken(conn: Connection, n: Notification) -> str | None:
    """Why ``n`` should not be sent any more, or None to send it."""
    incident = repo.get(conn, n.incident_id)
    if incident is None:
        return "the incident no longer exists"
    state = incident.state
    later = outbox.later(conn, n)
    if n.kind in LEVEL_CALLS:
        if state not in (IncidentState.OPEN, IncidentState.NOTIFIED):
            return f"the incident was {_said(state)} before level {n.payload.level or 1} could be called"
        if any(kind in LEVEL_CALLS and (p.level or 1) == (n.payload.level or 1) for kind, p in later):
            return f"level {n.payload.level or 1} is called again by a later round"
    elif n.kind == "reminder":
        if any(kind == "reminder" for kind, _ in later):
            return "a newer reminder replaces it"
        if state is not IncidentState.ACKNOWLEDGED:
            return f"the incident was {_said(state)} since"
    elif n.kind in STATE_UPDATES:
        newer = next((kind for kind, _ in later if kind in NEWER_STATE), None)
        if newer is not None:
            return f"a newer state ({newer.replace('_', ' ')}) replaces it"
    elif n.kind == "joined" and state.is_closed:
        return f"the incident was {_said(state)}; its closing message counts the new posts"
    return None


def present(conn: Connection, n: Notification) -> Notification:
    """``n`` as it should go out now.

    A closing message goes to the people a level call actually reached (by Slack
    or e-mail), not to those whose call never went out. A notification of an
    incident that has no delivered message yet (its alert was overtaken or is
    still blocked) takes the channel of the incident's first level call, so
    the incident's card still appears where the team looks for it.
    """
    if n.kind in CLOSING:
        reached = outbox.delivered_recipients(conn, n.incident_id)
        n = replace(n, recipients=tuple(r for r in n.recipients if r in reached))
    if n.channel is None and not outbox.sent_external_refs(conn, n.incident_id):
        n = replace(n, channel=outbox.first_channel(conn, n.incident_id))
    return n


def log_delivered(conn: Connection, n: Notification, now: dt.datetime, via: str) -> None:
    """The timeline line of a level call that reached someone: when it was due and how late it went out."""
    if n.kind not in LEVEL_CALLS:
        return
    incident = repo.get(conn, n.incident_id)
    if incident is None:
        return
    late = now - n.created_at
    delay = f", {_duration(late)} after it was due" if late >= dt.timedelta(minutes=1) else ""
    repo.log_event(conn, n.incident_id, at=now, state=incident.state.value, level=n.payload.level or 1,
                   actor="system", note=f"{outbox.DELIVERED_NOTE}: level {n.payload.level or 1} call via {via} "
                                        f"(due {_local(n)}{delay})")


def log_never_delivered(conn: Connection, n: Notification, now: dt.datetime, reason: str, *,
                        emailed: bool = False) -> None:
    """The timeline line of a level call that will not go out by Slack.

    ``emailed``: the e-mail fallback did reach the level's people, so the line
    says Slack was skipped rather than "never delivered", which would contradict
    the "delivered ... via e-mail" line above it.
    """
    if n.kind not in LEVEL_CALLS:
        return
    incident = repo.get(conn, n.incident_id)
    if incident is None:
        return
    level = n.payload.level or 1
    what = (f"not sent by Slack (went by e-mail): level {level} call due" if emailed
            else f"never delivered: level {level} call due")
    repo.log_event(conn, n.incident_id, at=now, state=incident.state.value, level=level, actor="system",
                   note=f"{what} {_local(n)} ({reason})")


def _said(state: IncidentState) -> str:
    return state.value.replace("_", " ") if state is not IncidentState.FALSE_POSITIVE else "marked a false positive"


def _local(n: Notification) -> str:
    """When a call was due, in the team's zone with its abbreviation ('2026-11-18 10:00 CET'): people read it."""
    return f"{n.created_at.astimezone(ZoneInfo(n.payload.timezone)):%Y-%m-%d %H:%M %Z}"


def _duration(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60:02d} min"
