"""How the digest reads an incident's timeline: who acted, when, and how long it took.

``queries`` returns an incident's row and its ``incident_events`` in order;
``Timelines`` turns them into one ``IncidentFigures``: the first
notification, acknowledgement and closing transitions, the levels reached,
the time to acknowledge on the policy's own clock (business time from
``escalation.hours`` for policies that wait) and the first post as the digest
may quote it (handles of people masked and links made handle-free by the
rules in ``privacy.scrub``, the same rules the purge applies).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from monitor import notes, reasons
from monitor.escalation.hours import Hours
from monitor.escalation.schema import EscalationConfig, Policy
from monitor.links import web_link
from monitor.models import IncidentState, Severity
from monitor.notes import Note
from monitor.privacy.scrub import mask_handles, url_without_handle
from monitor.store.outbox import DELIVERED_NOTE
from monitor.text import shorten

from .format import human_text
from .model import AUTOMATIC, AckFigures, IncidentFigures, PostRef, ResolveFigures, median, resolve_figures

CLOSING_STATES = (IncidentState.RESOLVED.value, IncidentState.FALSE_POSITIVE.value, IncidentState.EXPIRED.value)
SYSTEM_ACTOR = "system"
TEXT_LIMIT = 160  # characters of a quoted post


def safe_text(text: str, brand: str, author: str | None, limit: int = TEXT_LIMIT) -> str:
    """A post as the digest quotes it: handles of people masked, then shortened."""
    return shorten(mask_handles(text, brand, author), limit)


def safe_url(url: str | None, handle: str | None, named: bool) -> str | None:
    """A post's link as the digest publishes it: as stored for a named author, else without their handle.

    The rule for "without their handle" is the purge's (``url_without_handle``):
    only a handle in the link's *path* names the person, so a news site whose
    handle is its own domain keeps its article link.
    """
    return web_link(url if named else url_without_handle(url, handle))


def quote_post(raw: dict[str, Any] | None, threshold: int) -> PostRef | None:
    """The first post of an incident, made safe to publish for an author below ``threshold``."""
    if raw is None:
        return None
    handle: str | None = raw["author_handle"]
    reach = int(raw["author_reach"] or 0)
    named = handle is not None and reach >= threshold
    return PostRef(
        source=raw["source"], created_at=raw["created_at"],
        text=safe_text(raw["text"], raw["brand"], handle if named else None),
        url=safe_url(raw["url"], handle, named), author=handle if named else None, reach=reach if named else None,
        language=_lang(raw.get("language")),
    )


def _lang(code: str | None) -> str | None:
    """A stored language code fit for an HTML ``lang`` attribute; None for unknown ("und", "?", junk)."""
    if not code:
        return None
    tag = code.strip().replace("_", "-")
    if tag.casefold() in ("und", "unknown") or not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", tag):
        return None
    return tag


class People:
    """Who acted, in names a reader knows: responder ids and Slack user ids (a button click) to full names.

    Actors that the escalation config does not know stay as recorded.
    """

    def __init__(self, config: EscalationConfig | None) -> None:
        self.names: dict[str, str] = {}
        for key, person in (config.responders.items() if config else ()):
            self.names[key] = person.name
            if person.slack:
                self.names[person.slack] = person.name

    def note(self, note: str) -> str:
        """'level 2 notified: karim, an' with the responders' names: 'level 2 notified: Karim El Amrani, an'."""
        head, sep, tail = note.partition(" notified: ")
        if not sep:
            return note
        return f"{head}{sep}" + ", ".join(self.names.get(w, w) for w in tail.split(", "))

    def name(self, actor: str | None) -> str | None:
        if actor is None:
            return None
        if actor == SYSTEM_ACTOR:
            return AUTOMATIC
        return self.names.get(actor, actor)


def _first(events: Iterable[dict[str, Any]], states: Sequence[str]) -> dict[str, Any] | None:
    return next((e for e in events if e["to_state"] in states and e["from_state"] != e["to_state"]), None)


class Timelines:
    """Interprets incident timelines against one escalation config (None: no targets, real time only)."""

    def __init__(self, config: EscalationConfig | None) -> None:
        self.config = config
        self.people = People(config)
        self.hours = Hours(config.business_hours, config.zone) if config else None

    def policy(self, name: str) -> Policy | None:
        if self.config is None:
            return None
        return next((p for p in self.config.policies if p.name == name), None)

    def incident(self, row: dict[str, Any], events: list[dict[str, Any]], mention_count: int,
                 post: PostRef | None, reach: int = 0) -> IncidentFigures:
        """One incident's figures from its row and its timeline (oldest event first)."""
        policy = self.policy(row["policy"])
        business = policy is not None and policy.after_hours == "wait"
        notified = _first(events, (IncidentState.NOTIFIED.value,))
        ack = _first(events, (IncidentState.ACKNOWLEDGED.value,))
        close = _first(events, CLOSING_STATES)
        opened: datetime = row["opened_at"]
        # Time to acknowledge counts from the first delivery (a call Slack took an hour to carry is not
        # an hour of slow response); incidents from before delivery was logged count from the call.
        delivered = next((e for e in events if (e["note"] or "").startswith(DELIVERED_NOTE)), None)
        alerted = delivered["at"] if delivered else notified["at"] if notified else None
        tta: timedelta | None = None
        if ack is not None:
            start = alerted if alerted is not None and alerted <= ack["at"] else opened
            tta = self.hours.between(start, ack["at"]) if business and self.hours else ack["at"] - start
        levels = [int(e["level"] or 0) for e in events] + [int(row["level"] or 0)]
        escalation_notes: list[str] = []
        escalation_facts: list[Note | None] = []
        previous_level = 0
        for e in events:  # a call to a higher level is a step in level; same-level log lines are not escalations
            level = int(e["level"] or 0)
            if e["to_state"] == IncidentState.NOTIFIED.value and level >= 2 and level != previous_level and e["note"]:
                note = self.people.note(human_text(e["note"]))
                if note not in escalation_notes:  # a second cycle calls the same people: one line says it
                    escalation_notes.append(note)
                    fact = notes.load(e.get("note_data"))
                    escalation_facts.append(replace(fact, who=tuple(self.people.names.get(w, w) for w in fact.who))
                                            if fact is not None else None)
            previous_level = level
        people = self.people
        keep = post.author if post else None
        detail = reasons.load(row.get("reason_data"))
        return IncidentFigures(
            id=int(row["id"]), brand=row["brand"], rule=row["rule"], kind=row["kind"],
            reason=human_text(mask_handles(row["reason"] or "", row["brand"], keep)),
            reason_data=detail.rewrite_who(lambda who: mask_handles(who, row["brand"], keep)) if detail else None,
            severity=Severity(row["severity"]), state=IncidentState(row["state"]), policy=row["policy"],
            opened_at=opened, alerted_at=alerted, mention_count=mention_count, first_post=post,
            acknowledged_by=people.name(ack["actor"]) if ack else None, acknowledged_at=ack["at"] if ack else None,
            time_to_ack=tta, ack_target=policy.levels[0].ack_within if policy else None, business_clock=business,
            closed_state=IncidentState(close["to_state"]) if close else None,
            closed_by=people.name(close["actor"]) if close else None, closed_at=close["at"] if close else None,
            time_to_resolve=close["at"] - opened if close else None,
            resolution_note=human_text(mask_handles(close["note"], row["brand"])) if close and close["note"] else None,
            max_level=max(levels), escalation_notes=tuple(escalation_notes), escalation_facts=tuple(escalation_facts),
            resolution_facts=notes.load(close.get("note_data")) if close else None,
            resolve_target=policy.resolve_within if policy else None, reach=reach,
        )

    def by_policy(self, items: Sequence[IncidentFigures]) -> list[tuple[str, list[IncidentFigures]]]:
        """Incidents per policy, in the config's policy order (unknown policies last)."""
        groups: dict[str, list[IncidentFigures]] = defaultdict(list)
        for i in items:
            groups[i.policy].append(i)
        order = [p.name for p in self.config.policies] if self.config else []
        names = sorted(groups, key=lambda n: (order.index(n) if n in order else len(order), n))
        return [(name, groups[name]) for name in names]

    def resolve_figures(self, items: Sequence[IncidentFigures]) -> tuple[ResolveFigures, ...]:
        """Time to resolve per policy, against each policy's ``resolve_within``."""
        return tuple(resolve_figures(name, group) for name, group in self.by_policy(items))

    def ack_figures(self, items: Sequence[IncidentFigures]) -> tuple[AckFigures, ...]:
        """Time to acknowledge per policy, in the config's policy order (unknown policies last)."""
        out = []
        for name, group in self.by_policy(items):
            times = [i.time_to_ack for i in group if i.time_to_ack is not None]
            target = group[0].ack_target
            out.append(AckFigures(
                policy=name, target=target, business_clock=group[0].business_clock, incidents=len(group),
                acknowledged=len(times), median=median(times), worst=max(times) if times else None,
                over_target=sum(1 for i in group if i.met_target is False),
            ))
        return tuple(out)
