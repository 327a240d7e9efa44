"""The escalation engine's timeline notes as facts, written out in the reader's language at the edge.

The engine logs each step of an incident ("level 2 notified: karim", "snoozed: no
escalation before …", "quiet for 2 h; resolved automatically"). The English
sentence stays in ``incident_events.note`` (the log, the history, the digest's
older rows); beside it ``note_data`` holds a :class:`Note`, which the console,
the Slack and e-mail updates and the digest render with :func:`text` in their
reader's language, times in the team's zone. A note a person wrote (a
resolution note) has no facts and is shown as written, as is any row from before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast, get_args

from monitor import reasons
from monitor.i18n import Translator

NoteKind = Literal["opened", "after_hours", "notified", "acknowledged", "snoozed", "exhausted", "expired",
                   "auto_resolved"]
FORMAT = 1


@dataclass(frozen=True, slots=True)
class Note:
    """One step the engine logged.

    ``opened``: ``reason`` (``monitor.reasons`` JSON) is why. ``after_hours``: delivery waits until ``at``.
    ``notified``: ``level`` called, ``who`` (responder ids) or else ``channel``. ``snoozed``: no escalation
    before ``at``. ``expired`` / ``auto_resolved``: closed after ``quiet`` without new posts.
    """

    kind: NoteKind
    level: int = 0
    who: tuple[str, ...] = ()
    channel: str | None = None
    at: datetime | None = None
    quiet: timedelta | None = None
    reason: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": FORMAT, "kind": self.kind}
        if self.level:
            out["level"] = self.level
        if self.who:
            out["who"] = list(self.who)
        if self.channel is not None:
            out["channel"] = self.channel
        if self.at is not None:
            out["at"] = self.at.isoformat()
        if self.quiet is not None:
            out["quiet_s"] = self.quiet.total_seconds()
        if self.reason is not None:
            out["reason"] = dict(self.reason)
        return out


def load(data: Any) -> Note | None:
    """A stored ``note_data`` as a Note; None when there is none or this version cannot read it."""
    if not isinstance(data, Mapping) or data.get("v") != FORMAT or data.get("kind") not in get_args(NoteKind):
        return None
    try:
        at, quiet, reason = data.get("at"), data.get("quiet_s"), data.get("reason")
        return Note(kind=cast(NoteKind, data["kind"]), level=int(data.get("level") or 0),
                    who=tuple(str(w) for w in data.get("who") or ()),
                    channel=str(data["channel"]) if data.get("channel") is not None else None,
                    at=datetime.fromisoformat(at) if at else None,
                    quiet=timedelta(seconds=float(quiet)) if quiet is not None else None,
                    reason=reason if isinstance(reason, Mapping) else None)
    except (TypeError, ValueError):
        return None


def render(note: Note, t: Translator, names: Mapping[str, str] | None = None, stored: str = "") -> str:
    """The note in ``t``'s language; ``names``: responder ids to the names people know them by."""
    names = names or {}
    if note.kind == "opened":
        return reasons.text(note.reason, stored, t)
    if note.kind == "after_hours":
        return t._("outside business hours: delivery at {time}", time=_time(note.at, t))
    if note.kind == "notified":
        who = ", ".join(names.get(w, w) for w in note.who) or note.channel or "?"
        return t._("level {level} notified: {who}", level=note.level, who=who)
    if note.kind == "acknowledged":
        return t._("acknowledged")
    if note.kind == "snoozed":
        return t._("snoozed: no escalation before {time}", time=_time(note.at, t))
    if note.kind == "exhausted":
        return t._("nobody acknowledged; every level has been called")
    if note.kind == "expired":
        return t._("nobody acknowledged and no new posts for {quiet}", quiet=t.duration(note.quiet))
    return t._("quiet for {quiet}; resolved automatically", quiet=t.duration(note.quiet))


def _time(when: datetime | None, t: Translator) -> str:
    return t.datetime_zone(when) if when is not None else "–"


def text(data: Any, stored: str | None, t: Translator, names: Mapping[str, str] | None = None) -> str:
    """What a reader sees for a timeline note: its facts in their language, else the stored words."""
    note = data if isinstance(data, Note) else load(data)
    if note is None:
        return stored or ""
    return render(note, t, names, stored or "")
