"""Incidents and their state machine, driven by signals and by time.

Every decision is written to the store in the same transaction as the
notifications it queues, and timers are a stored ``next_action_at`` that each
tick recomputes from: a restart loses no deadline and fires none twice.
Each change starts from the incident's row locked in the store
(``store.incidents.lock``/``claim_due``), so a click and a tick, in one worker or
in two, never both act on the same state: the later one sees the earlier's result.

States: open -> notified (level n) -> acknowledged -> resolved,
or false_positive, or expired. Who, when and why of every change is logged.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from monitor.durations import format_duration
from monitor.escalation import plan as planning
from monitor.escalation.grouping import EXPIRE_AFTER, decide
from monitor.escalation.schema import EscalationConfig, Policy
from monitor.models import (
    AlertPayload,
    GuidelineText,
    Incident,
    IncidentState,
    PersonRef,
    PostSummary,
    Review,
    Signal,
)
from monitor.notes import Note
from monitor.privacy.scrub import normalise_handle
from monitor.store import incidents as repo
from monitor.store import mentions as mention_repo
from monitor.store import outbox
from monitor.store import silences as silence_repo
from monitor.store.silences import Silence

log = logging.getLogger(__name__)
SYSTEM = "system"


class ActionResult(enum.StrEnum):
    APPLIED = "applied"
    ALREADY = "already"  # the incident had already moved past this action
    NOT_FOUND = "not_found"


class StoreIncidents:
    """``grouping.OpenIncidents`` from the store: what ticks and people closed is closed."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def holding_all(self, mention_ids: Sequence[int], at: dt.datetime) -> Incident | None:
        return repo.find_open_with_mentions(self.conn, mention_ids)

    def active_volume(self, brand: str, since: dt.datetime, at: dt.datetime) -> Incident | None:
        return repo.find_open_window(self.conn, brand, since)

    def active_with_key(self, key: str, since: dt.datetime, at: dt.datetime) -> Incident | None:
        return repo.find_open(self.conn, key, since)


class EscalationEngine:
    def __init__(self, config: EscalationConfig, version: str | None = None) -> None:
        self.config = config
        self.hours = planning.hours_of(config)
        # sha256 of the escalation.yaml in force: every event and notification records it (monitor.reload).
        self.version = version

    # --- a changed procedure ----------------------------------------------------------------
    def replace_config(self, conn: Connection, config: EscalationConfig, version: str | None,
                       now: dt.datetime) -> list[str]:
        """Put a new procedure in force; open incidents follow it from their next step.

        The rule (README, "Changing the procedure while the worker runs"):

        * levels already notified stay notified: nobody is called again because the file changed;
        * the next step follows the new procedure: the policy of the same name, or the one the
          new file would choose when that name is gone; recipients are read from the new file at
          call time, so a removed responder is never called again;
        * the running acknowledgement window is recomputed from when its level was notified
          with the new ``ack_within``; a shortened window whose end has already passed moves the
          deadline to now, so the next level is called at once, never silently skipped;
        * a level that no longer exists (fewer levels) ends the window now: the next step is the
          next cycle, or the end of escalation.

        Returns one line per incident that changed, also written to its timeline.
        """
        self.config = config
        self.hours = planning.hours_of(config)
        self.version = version
        changes: list[str] = []
        names = {p.name for p in config.policies}
        repo.lock_grouping(conn)  # before the rows, as ``ingest`` does: the two never wait on each other
        for row in repo.open_incidents(conn, for_update=True):
            notes: list[str] = []
            policy_name = row.policy
            if row.policy not in names:
                policy_name = config.policy_for(row.severity, row.brand, row.rule).name
                repo.update_fields(conn, row.id, policy=policy_name)
                notes.append(f"policy '{row.policy}' is gone; follows '{policy_name}'")
            policy = self._policy(policy_name)
            if row.state is IncidentState.NOTIFIED and row.next_action_at is not None:
                started = repo.level_notified_at(conn, row.id, row.level)
                if row.level > len(policy.levels):
                    due = now
                elif started is not None:
                    due = max(planning.deadline(policy, self.hours, started, row.level), now)
                else:
                    due = row.next_action_at
                if due != row.next_action_at:
                    repo.update_fields(conn, row.id, next_action_at=due)
                    when = "now" if due <= now else f"{self.hours.local(due):%a %d %b %H:%M %Z}"
                    notes.append(f"level {row.level} acknowledgement deadline moved to {when}")
            if notes:
                note = f"procedure changed ({(version or '?')[:12]}): " + "; ".join(notes)
                self._event(conn, row.id, at=now, state=row.state.value, level=row.level, actor=SYSTEM, note=note)
                changes.append(f"#{row.id}: " + "; ".join(notes))
        return changes

    def _event(self, conn: Connection, incident_id: int, **fields: Any) -> None:
        repo.log_event(conn, incident_id, config_version=self.version, **fields)

    def _transition(self, conn: Connection, incident_id: int, **fields: Any) -> None:
        repo.transition(conn, incident_id, config_version=self.version, **fields)

    def _enqueue(self, conn: Connection, **fields: Any) -> None:
        outbox.enqueue(conn, config_version=self.version, **fields)

    # --- signals -> incidents -------------------------------------------------------------
    def ingest(self, conn: Connection, signals: Sequence[Signal], now: dt.datetime) -> list[int]:
        """Group signals into incidents; returns ids of incidents opened by this call."""
        opened: list[int] = []
        if signals:
            repo.lock_grouping(conn)  # a second detector (a lease hand-over) waits, then sees what this one opened
        muted = silence_repo.active(conn, now) if signals else []
        for signal in signals:
            if signal.follow_up:
                self._follow_up(conn, signal, now)
                continue
            silence = self._silenced(conn, muted, signal)
            if silence is not None:
                # Kept for the record (and the digest's signal counts), but nobody is called.
                repo.record_signal(conn, signal, None)
                log.info("signal %s for %s silenced by #%d (%s, set by %s)", signal.rule, signal.brand, silence.id,
                         silence.reason, silence.created_by)
                continue
            key, target = self._locked_target(conn, signal)
            if target is not None:
                self._join(conn, target, signal, now)
                continue
            policy = self.config.policy_for(signal.severity, signal.brand, signal.rule)
            incident_id = repo.create(conn, key=key, signal=signal, policy=policy.name, now=now)
            repo.record_signal(conn, signal, incident_id)
            repo.attach_mentions(conn, incident_id, signal.mention_ids, now)
            self._event(conn, incident_id, at=now, state=IncidentState.OPEN.value, level=0, actor=SYSTEM,
                        note=signal.reason, note_data=Note("opened", reason=signal.detail.to_json()
                                                           if signal.detail is not None else None).to_json())
            opened.append(incident_id)
            start = planning.first_delivery(policy, self.hours, now)
            if start <= now:
                self._notify_level(conn, incident_id, policy, cycle=0, level=1, now=now)
            else:
                local = self.hours.local(start)
                repo.update_fields(conn, incident_id, next_action_at=start)
                self._event(conn, incident_id, at=now, state=IncidentState.OPEN.value, level=0, actor=SYSTEM,
                            note=f"outside business hours: delivery at {local:%a %d %b %H:%M %Z}",
                            note_data=Note("after_hours", at=start).to_json())
        return opened

    def _follow_up(self, conn: Connection, signal: Signal, now: dt.datetime) -> None:
        """A repeat inside the rule's realert pause (``grouping``, step 0): its posts join the open incident.

        Quietly: realert means nobody hears about each further post (no thread line), and the repeat is
        no firing of its own (no ``signals`` row: the digest's signal counts and the realert state a
        restart restores stay as they were). The newer post time keeps the incident from expiring or
        auto-resolving while its story still runs.
        """
        _, target = self._locked_target(conn, signal)
        if target is None:
            return
        repo.attach_mentions(conn, target.id, signal.mention_ids, now)
        repo.update_fields(conn, target.id, last_mention_at=max(target.last_mention_at, signal.fired_at),
                           updated_at=now)

    def _locked_target(self, conn: Connection, signal: Signal) -> tuple[str, Incident | None]:
        """The incident key and the open incident to join, locked; one closed meanwhile (a click) is not joined."""
        while True:
            decision = decide(signal, StoreIncidents(conn), self.config.grouping.window)
            if decision.target is None:
                return decision.key, None
            target = repo.lock(conn, decision.target.id)
            if target is not None and not target.state.is_closed:
                return decision.key, target

    def _silenced(self, conn: Connection, muted: Sequence[Silence], signal: Signal) -> Silence | None:
        if not muted:
            return None
        authors: set[str] = set()
        if any(s.author for s in muted):
            authors = {normalise_handle(sm.mention.author_handle)
                       for sm in mention_repo.get_mentions(conn, signal.mention_ids) if sm.mention.author_handle}
        return next((s for s in muted if s.matches(signal.brand, signal.rule, authors)), None)

    def _join(self, conn: Connection, target: Incident, signal: Signal, now: dt.datetime) -> None:
        incident_id = target.id
        repo.record_signal(conn, signal, incident_id)
        new = repo.attach_mentions(conn, incident_id, signal.mention_ids, now)
        repo.update_fields(conn, incident_id, last_mention_at=max(target.last_mention_at, signal.fired_at),
                           updated_at=now)
        if new and target.state is not IncidentState.OPEN:
            self._enqueue(conn, incident_id=incident_id, dedupe_key=f"{incident_id}:joined:{min(new)}:{len(new)}",
                           kind="joined", channel=None, recipients=(),
                           payload=replace(self._payload(conn, incident_id), new_mentions=self._mentions(conn, new),
                                           reason=signal.reason),
                           now=now)

    # --- time -> escalation -----------------------------------------------------------------
    def tick(self, conn: Connection, now: dt.datetime) -> int:
        """Carry out every action whose time has come; returns how many were taken."""
        done = 0
        for row in repo.claim_due(conn, now):
            policy = self._policy(row.policy)
            state = row.state
            incident_id = row.id
            if state is IncidentState.OPEN:
                self._notify_level(conn, incident_id, policy, cycle=0, level=1, now=now)
            elif state is IncidentState.NOTIFIED:
                nxt = planning.next_step(policy, row.cycle, row.level)
                if nxt is None:
                    self._exhausted(conn, row, policy, now)
                else:
                    self._notify_level(conn, incident_id, policy, cycle=nxt[0], level=nxt[1], now=now)
            elif state is IncidentState.ACKNOWLEDGED:
                self._acknowledged_due(conn, row, policy, now)
            done += 1
        return done

    def _exhausted(self, conn: Connection, row: Incident, policy: Policy, now: dt.datetime) -> None:
        """Every level was called and nobody acknowledged: wait for quiet, then mark it expired.

        Expired (not resolved) keeps the digest honest: nobody answered this one.
        """
        incident_id = row.id
        quiet = policy.auto_resolve_after or EXPIRE_AFTER
        expires = row.last_mention_at + quiet
        if now >= expires:
            self._close(conn, row, IncidentState.EXPIRED, SYSTEM,
                        f"nobody acknowledged and no new posts for {format_duration(quiet)}", now,
                        Note("expired", quiet=quiet))
            return
        if row.next_action_at is not None and row.next_action_at < expires:
            repo.update_fields(conn, incident_id, next_action_at=expires)
            self._event(conn, incident_id, at=now, state=row.state.value, level=row.level, actor=SYSTEM,
                        note="nobody acknowledged; every level has been called",
                        note_data=Note("exhausted").to_json())

    def _acknowledged_due(self, conn: Connection, row: Incident, policy: Policy, now: dt.datetime) -> None:
        incident_id = row.id
        quiet = policy.auto_resolve_after
        if quiet is not None and now - row.last_mention_at >= quiet:
            self._close(conn, row, IncidentState.RESOLVED, SYSTEM,
                        f"quiet for {format_duration(quiet)}; resolved automatically", now,
                        Note("auto_resolved", quiet=quiet))
            return
        if policy.remind_every is not None:
            holder: tuple[str, ...] = (row.acknowledged_by,) if row.acknowledged_by else ()
            if not self.hours.is_open(now):
                # Reminders follow the policy's hours: a 'wait' policy (or a 'page' one with nobody on
                # call) keeps them for the morning; a 'page' policy reminds only the on-call people.
                if policy.after_hours == "wait" or not policy.on_call:
                    morning = self.hours.next_open(now)
                    later = self._after_ack(policy, row.last_mention_at, now)
                    repo.update_fields(conn, incident_id, next_action_at=min(morning, later) if later else morning)
                    return
                holder = tuple(policy.on_call)
            self._enqueue(conn, incident_id=incident_id, dedupe_key=f"{incident_id}:remind:{now.isoformat()}",
                           kind="reminder", channel=None, recipients=holder,
                           payload=self._payload(conn, incident_id), now=now)
        repo.update_fields(conn, incident_id, next_action_at=self._after_ack(policy, row.last_mention_at, now))

    def _after_ack(self, policy: Policy, last_mention: dt.datetime, now: dt.datetime) -> dt.datetime | None:
        options = []
        if policy.remind_every is not None:
            options.append(now + policy.remind_every)
        if policy.auto_resolve_after is not None:
            options.append(max(now, last_mention + policy.auto_resolve_after))
        return min(options) if options else None

    def _notify_level(self, conn: Connection, incident_id: int, policy: Policy, *, cycle: int, level: int,
                      now: dt.datetime) -> None:
        who, channel = planning.recipients(policy, self.hours, level, now)
        due = planning.deadline(policy, self.hours, now, level)
        before = repo.get(conn, incident_id)
        assert before is not None
        self._transition(conn, incident_id, at=now, from_state=before.state.value,
                         to_state=IncidentState.NOTIFIED.value, level=level, actor=SYSTEM,
                         note=f"level {level} notified: {', '.join(who) or channel}", cycle=cycle,
                         note_data=Note("notified", level=level, who=tuple(who), channel=channel).to_json(),
                         next_action_at=due)
        kind = "alert" if (level == 1 and cycle == 0) else "escalation"
        payload = replace(self._payload(conn, incident_id), level=level, ack_deadline=due,
                          recipients=tuple(self._person(r) for r in who))
        self._enqueue(conn, incident_id=incident_id, dedupe_key=f"{incident_id}:{kind}:{cycle}:{level}",
                       kind=kind, channel=channel, recipients=who, payload=payload, now=now)

    # --- people -> state ----------------------------------------------------------------------
    def acknowledge(self, conn: Connection, incident_id: int, who: str, now: dt.datetime) -> ActionResult:
        row = repo.lock(conn, incident_id)
        if row is None:
            return ActionResult.NOT_FOUND
        state = row.state
        if state not in (IncidentState.OPEN, IncidentState.NOTIFIED):
            return ActionResult.ALREADY
        policy = self._policy(row.policy)
        self._transition(conn, incident_id, at=now, from_state=state.value, to_state=IncidentState.ACKNOWLEDGED.value,
                        level=row.level, actor=who, note="acknowledged", note_data=Note("acknowledged").to_json(),
                        acknowledged_by=who,
                        acknowledged_at=now, next_action_at=self._after_ack(policy, row.last_mention_at, now))
        self._enqueue(conn, incident_id=incident_id, dedupe_key=f"{incident_id}:acknowledged", kind="acknowledged",
                       channel=None, recipients=(), payload=replace(self._payload(conn, incident_id), actor=who),
                       now=now)
        return ActionResult.APPLIED

    def resolve(self, conn: Connection, incident_id: int, who: str, now: dt.datetime, *,
                false_positive: bool = False, note: str | None = None) -> ActionResult:
        row = repo.lock(conn, incident_id)
        if row is None:
            return ActionResult.NOT_FOUND
        if row.state.is_closed:
            return ActionResult.ALREADY
        final = IncidentState.FALSE_POSITIVE if false_positive else IncidentState.RESOLVED
        self._close(conn, row, final, who, note or final.value.replace("_", " "), now)
        return ActionResult.APPLIED

    def _close(self, conn: Connection, row: Incident, final: IncidentState, who: str, note: str,
               now: dt.datetime, facts: Note | None = None) -> None:
        """``note``: a person's words, or the engine's in English with ``facts`` to show each reader."""
        incident_id = row.id
        data = facts.to_json() if facts is not None else None
        self._transition(conn, incident_id, at=now, from_state=row.state.value, to_state=final.value, level=row.level,
                        actor=who, note=note, note_data=data, next_action_at=None, closed_at=now)
        # Everyone who was called hears that it is over.
        notified = sorted({r for e in outbox.sent_or_pending_recipients(conn, incident_id) for r in e})
        self._enqueue(conn, incident_id=incident_id, dedupe_key=f"{incident_id}:closed", kind=final.value,
                       channel=None, recipients=notified,
                       payload=replace(self._payload(conn, incident_id), actor=who, note=note, note_data=data), now=now)

    # --- payload --------------------------------------------------------------------------------
    def _policy(self, name: str) -> Policy:
        for p in self.config.policies:
            if p.name == name:
                return p
        # The policy was renamed or removed since the incident opened: fall back to the current choice.
        log.warning("policy %r no longer exists; using the last policy", name)
        return self.config.policies[-1]

    def _person(self, responder_id: str) -> PersonRef:
        r = self.config.responders.get(responder_id)
        if r is None:
            return PersonRef(responder_id, responder_id)
        return PersonRef(responder_id, r.name, r.slack, r.email)

    def _mentions(self, conn: Connection, ids: Sequence[int]) -> tuple[PostSummary, ...]:
        return tuple(
            PostSummary(id=sm.id, source=sm.mention.source, text=sm.mention.text, created_at=sm.mention.created_at,
                        url=sm.mention.url, author=sm.mention.author_handle, reach=sm.mention.author_reach,
                        engagement=sm.mention.engagement, language=sm.mention.language,
                        negative=round(sm.sentiment.negative, 3) if sm.sentiment else None,
                        **_review(sm.mention.review))
            for sm in mention_repo.get_mentions(conn, ids))

    def _payload(self, conn: Connection, incident_id: int) -> AlertPayload:
        incident = repo.get(conn, incident_id)
        assert incident is not None
        ids = repo.mention_ids(conn, incident_id)
        # Lead with the post that matters most: the widest reach, then the most negative.
        mentions = sorted(self._mentions(conn, ids), key=lambda m: (m.reach, m.negative or 0), reverse=True)
        guideline = self.config.guideline_for(incident.severity, incident.brand, incident.rule)
        return AlertPayload(
            incident_id=incident_id,
            brand=incident.brand,
            rule=incident.rule,
            severity=incident.severity,
            reason=incident.reason,
            reason_data=incident.reason_data,
            state=incident.state,
            policy=incident.policy,
            opened_at=incident.opened_at,
            mention_count=len(ids),
            top_mentions=tuple(mentions[:3]),
            guideline=GuidelineText(guideline.first_statement, guideline.who_may_answer,
                                    tuple(guideline.never_say), guideline.statements) if guideline else None,
            timezone=self.config.timezone,
            locale=self.config.locale,
        )

    # --- snooze ---------------------------------------------------------------------------------
    def snooze(self, conn: Connection, incident_id: int, who: str, until: dt.datetime,
               now: dt.datetime) -> ActionResult:
        """Hold back the next escalation step until ``until`` while the incident waits for an ack.

        Only a notified incident has a step to hold back. The deadline only ever moves
        later (``max``), so a double click or a second snooze for the same hour changes
        nothing, and a snooze never calls the next level sooner than planned. A
        "snoozed" notification is queued so the channel shows the new deadline.
        """
        row = repo.lock(conn, incident_id)
        if row is None:
            return ActionResult.NOT_FOUND
        current = row.next_action_at
        if row.state is not IncidentState.NOTIFIED or current is None or until <= current:
            return ActionResult.ALREADY
        repo.update_fields(conn, incident_id, next_action_at=until, updated_at=now)
        self._event(conn, incident_id, at=now, state=row.state.value, level=row.level, actor=who,
                    note=f"snoozed: no escalation before {self.hours.local(until):%a %d %b %H:%M %Z}",
                    note_data=Note("snoozed", at=until).to_json())
        self._enqueue(conn, incident_id=incident_id, dedupe_key=f"{incident_id}:snoozed:{until.isoformat()}",
                       kind="snoozed", channel=None, recipients=(),
                       payload=replace(self._payload(conn, incident_id), actor=who, level=row.level,
                                       snoozed_until=until, ack_deadline=until),
                       now=now)
        return ActionResult.APPLIED


def _review(review: Review | None) -> dict[str, Any]:
    """What an alert shows of a review: its stars, the business's reply, where to answer it."""
    if review is None:
        return {}
    return {"rating": review.rating, "reply": review.reply, "answer_url": review.answer_url}
