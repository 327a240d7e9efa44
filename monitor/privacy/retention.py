"""Retention per data class, enforced by a nightly purge (GDPR storage limitation).

Each class has its own period, counted from the post's publication time
(``created_at``; for incidents, from when they closed), because each serves a
different purpose for a different time:

* **author handles** (30 days): who posted matters while an incident is live
  and shortly after; the handle becomes NULL, the reach stays as a number;
* **post text and link** (90 days): text becomes ``''`` and the link NULL; the
  sentiment scores and counts stay, so the digest of an old week still counts
  its volume and its sentiment;
* **closed incidents** (365 days): deleted with their timeline, signals,
  links to posts and notifications;
* **whole mentions** (400 days): rows and scores deleted;
* **author silences** (``monitor silence add --author``) that ended more than
  the author period ago: deleted, as they name a person and mute nothing any more;
* **quarantined posts** (``store.quarantine``: ids and a reason) older than the
  author period: deleted, as an id leads back to a post and its author;
* **the audit trail** (``store.audit``): the client address of a console sign-in is
  cleared after the author period; rows tied to no incident (sign-ins, silences) are
  deleted after the incident period; an incident's rows go with the incident.

The purge rewrites the copies of each post in the same transaction as the post
(``monitor.privacy.scrub``): an outbox payload never keeps a text or a handle the
mentions table has already let go. Work is done in chunks of ``chunk`` posts,
one transaction each, so a purge of a large backlog never holds the store for
long and a crash loses at most one chunk (the next run picks it up: every step
selects what is still left to do). ``dry_run`` runs the very same statements in
one transaction and rolls it back, so its counts are exactly what a real run
would do (on SQLite the worker's writes wait for it meanwhile).

This module decides what goes when; the statements themselves are
``monitor.store.privacy``'s.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from monitor.clock import Clock
from monitor.membership import PeriodClaims, schedule_once_per_period
from monitor.privacy.scrub import AUTHOR_REMOVED, CopyRules, handle_pattern, url_without_handle
from monitor.redact import describe
from monitor.settings import Settings
from monitor.store import audit as audit_repo
from monitor.store import privacy as privacy_repo
from monitor.store import quarantine as quarantine_repo
from monitor.store.privacy import Sentence

log = logging.getLogger(__name__)
CHUNK = 1000
PURGE_JOB = "retention-purge"  # its name in the store's period claims

Unit = Callable[[], AbstractContextManager[Connection]]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days each class is kept; 0 keeps it forever. Defaults and reasons: ``Settings.retention_*``."""

    author_days: int = 30
    text_days: int = 90
    incident_days: int = 365
    mention_days: int = 400

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(author_days=settings.retention_author_days, text_days=settings.retention_text_days,
                   incident_days=settings.retention_incident_days, mention_days=settings.retention_mention_days)

    @staticmethod
    def cutoff(days: int, now: datetime) -> datetime | None:
        """Data older than this goes; None when the class is kept forever."""
        return now - timedelta(days=days) if days > 0 else None


@dataclass(slots=True)
class PurgeReport:
    """What one purge did (or, with ``dry_run``, would do), per class; ``scrubbed`` counts rewritten copies."""

    now: datetime
    dry_run: bool = False
    author_handles_removed: int = 0
    mention_texts_removed: int = 0
    mentions_deleted: int = 0
    incidents_deleted: int = 0
    signals_deleted: int = 0
    events_deleted: int = 0
    notifications_deleted: int = 0
    silences_deleted: int = 0
    quarantined_deleted: int = 0
    audit_addresses_removed: int = 0
    audit_rows_deleted: int = 0
    scrubbed: Counter[str] = field(default_factory=Counter)  # table -> rows whose copies were rewritten

    @property
    def total(self) -> int:
        return (self.author_handles_removed + self.mention_texts_removed + self.mentions_deleted
                + self.incidents_deleted + self.signals_deleted + self.events_deleted
                + self.notifications_deleted + self.silences_deleted + self.quarantined_deleted
                + self.audit_addresses_removed + self.audit_rows_deleted
                + sum(self.scrubbed.values()))

    def lines(self) -> list[str]:
        """One line per class, then the copies rewritten per table (``monitor purge`` prints these)."""
        out = [
            f"{self.author_handles_removed:>7}  author handles removed (older than the author period)",
            f"{self.mention_texts_removed:>7}  post texts and links removed (older than the text period)",
            f"{self.mentions_deleted:>7}  mentions deleted with their scores",
            f"{self.incidents_deleted:>7}  closed incidents deleted",
            f"{self.events_deleted:>7}  incident timeline entries deleted",
            f"{self.signals_deleted:>7}  signals deleted",
            f"{self.notifications_deleted:>7}  notifications deleted from the outbox",
            f"{self.silences_deleted:>7}  ended author silences deleted",
            f"{self.quarantined_deleted:>7}  quarantined post records deleted",
            f"{self.audit_addresses_removed:>7}  sign-in addresses removed from the audit trail",
            f"{self.audit_rows_deleted:>7}  audit rows of no incident deleted (sign-ins, silences)",
        ]
        names = {"incidents": "incident reasons", "incident_events": "incident timeline notes",
                 "signals": "signal reasons", "outbox": "notifications"}
        for table in sorted(self.scrubbed):
            out.append(f"{self.scrubbed[table]:>7}  {names.get(table, table)} rewritten (copies of removed data)")
        return out

    def summary(self) -> str:
        return (f"{self.author_handles_removed} handles, {self.mention_texts_removed} texts removed; "
                f"{self.mentions_deleted} mentions, {self.incidents_deleted} incidents deleted; "
                f"{sum(self.scrubbed.values())} copies rewritten")


# --- units of work --------------------------------------------------------------------------------


@contextlib.contextmanager
def _units(engine: Engine, dry_run: bool, lock: AbstractContextManager[Any] | None) -> Iterator[Unit]:
    """A factory of transactions: one per chunk for real, one shared and rolled back for a dry run.

    ``lock`` (the worker's pass lock) is held per chunk, so an escalation pass never copies a
    post into a payload between the moment the purge reads it and the moment it commits.
    """
    guard: AbstractContextManager[Any] = lock if lock is not None else contextlib.nullcontext()
    if not dry_run:
        @contextlib.contextmanager
        def unit() -> Iterator[Connection]:
            with guard, engine.begin() as conn:
                yield conn
        yield unit
        return
    with engine.connect() as shared:
        outer = shared.begin()
        try:
            @contextlib.contextmanager
            def dry_unit() -> Iterator[Connection]:
                with guard:
                    yield shared
            yield dry_unit
        finally:
            outer.rollback()


# --- copies -------------------------------------------------------------------------------------


def scrub_copies(conn: Connection, posts: Mapping[int, str | None], *, drop_text: bool, drop_author: bool,
                 marker: str = AUTHOR_REMOVED, author_marker: str | None = None,
                 report: Counter[str] | None = None, since: datetime | None = None) -> Counter[str]:
    """Rewrite every copy of these posts (id -> author handle): reasons, notes, payloads.

    Copies are found through the posts' ids: the incidents that hold them, those
    incidents' timelines and notifications, and the signals that name them. In
    reasons and notes, the handles of these posts are replaced by ``marker`` only
    when ``drop_author``; post texts never appear there. ``since`` (the oldest
    post's time) narrows the search for signals outside any incident: a signal
    never fires before the posts it names.
    """
    counts = report if report is not None else Counter()
    ids = list(posts)
    if not ids:
        return counts
    held = privacy_repo.incidents_holding(conn, ids)

    def rules_for(mids: set[int]) -> CopyRules:
        pattern = handle_pattern([posts[m] for m in mids]) if drop_author else None
        return CopyRules(drop_text=frozenset(mids) if drop_text else frozenset(),
                         drop_author=frozenset(mids) if drop_author else frozenset(),
                         author_marker=author_marker, own_pattern=pattern, marker=marker,
                         authors={m: posts[m] for m in mids})

    for incident_id, mids in sorted(held.items()):
        rewrite_incident(conn, incident_id, rules_for(mids), counts)
    # Signals whose incident is gone (its link was set to NULL) still name their posts.
    wanted = set(ids)
    for signal in privacy_repo.signal_reasons(conn, without_incident=True, fired_since=since):
        mine = {m for m in signal.mention_ids if m in wanted}
        if mine:
            new = rules_for(mine).own_text(signal.reason)
            if new != signal.reason:
                privacy_repo.set_sentence(conn, Sentence.SIGNAL_REASON, signal.id, new,
                                          rules_for(mine).own_text)
                counts["signals"] += 1
    return counts


def rewrite_incident(conn: Connection, incident_id: int, rules: CopyRules, counts: Counter[str]) -> None:
    """Apply ``rules`` to one incident's reason, timeline notes, signals and outbox payloads."""
    reason = privacy_repo.incident_reason(conn, incident_id)
    if reason is not None:
        new = rules.own_text(reason)
        if new != reason:
            privacy_repo.set_sentence(conn, Sentence.INCIDENT_REASON, incident_id, new, rules.own_text)
            counts["incidents"] += 1
    if rules.own_pattern is not None:
        for eid, note in privacy_repo.timeline_notes(conn, incident_id):
            new = rules.own_text(note)
            if new != note:
                privacy_repo.set_sentence(conn, Sentence.TIMELINE_NOTE, eid, new, rules.own_text)
                counts["incident_events"] += 1
        for sid, text in privacy_repo.incident_signal_reasons(conn, incident_id):
            new = rules.own_text(text)
            if new != text:
                privacy_repo.set_sentence(conn, Sentence.SIGNAL_REASON, sid, new, rules.own_text)
                counts["signals"] += 1
    for oid, payload in privacy_repo.incident_payloads(conn, incident_id):
        if not isinstance(payload, dict):
            continue
        rewritten = rules.payload(payload)
        if rewritten is not None:
            privacy_repo.set_payload(conn, oid, rewritten)
            counts["outbox"] += 1


# --- the classes --------------------------------------------------------------------------------


def _delete_incidents(unit: Unit, cutoff: datetime, report: PurgeReport, chunk: int) -> None:
    while True:
        with unit() as conn:
            ids = privacy_repo.closed_incidents_before(conn, cutoff, chunk)
            if not ids:
                break
            deleted = privacy_repo.delete_incidents(conn, ids)
            report.notifications_deleted += deleted.notifications
            report.events_deleted += deleted.events
            report.signals_deleted += deleted.signals
            report.incidents_deleted += deleted.incidents
    with unit() as conn:  # signals left without an incident (SET NULL) age out with the incidents
        report.signals_deleted += privacy_repo.delete_unlinked_signals_before(conn, cutoff)
        report.audit_rows_deleted += audit_repo.delete_unlinked_before(conn, cutoff)


def _delete_mentions(unit: Unit, cutoff: datetime, report: PurgeReport, chunk: int) -> None:
    while True:
        with unit() as conn:
            rows = privacy_repo.posts_before(conn, cutoff, chunk)
            if not rows:
                break
            posts = {r.id: r.author_handle for r in rows}
            scrub_copies(conn, posts, drop_text=True, drop_author=True, report=report.scrubbed,
                         since=min(r.created_at for r in rows))
            report.mentions_deleted += privacy_repo.delete_posts(conn, list(posts))


def _remove_texts(unit: Unit, cutoff: datetime, report: PurgeReport, chunk: int) -> None:
    while True:
        with unit() as conn:
            rows = privacy_repo.posts_with_text_before(conn, cutoff, chunk)
            if not rows:
                break
            posts = {r.id: r.author_handle for r in rows}
            scrub_copies(conn, posts, drop_text=True, drop_author=False, report=report.scrubbed,
                         since=min(r.created_at for r in rows))
            report.mention_texts_removed += privacy_repo.remove_texts(conn, list(posts))


def _remove_authors(unit: Unit, cutoff: datetime, report: PurgeReport, chunk: int) -> None:
    while True:
        with unit() as conn:
            rows = privacy_repo.posts_with_author_before(conn, cutoff, chunk)
            if not rows:
                break
            posts = {r.id: r.author_handle for r in rows}
            scrub_copies(conn, posts, drop_text=False, drop_author=True, report=report.scrubbed,
                         since=min(r.created_at for r in rows))
            privacy_repo.remove_authors(conn, {r.id: url_without_handle(r.url, r.author_handle) for r in rows})
            report.author_handles_removed += len(rows)
    with unit() as conn:
        report.silences_deleted += privacy_repo.delete_ended_author_silences(conn, cutoff)
        report.quarantined_deleted += quarantine_repo.delete_before(conn, cutoff)
        report.audit_addresses_removed += audit_repo.forget_addresses_before(conn, cutoff)


def purge(engine: Engine, settings_or_policy: Settings | RetentionPolicy, now: datetime, *, dry_run: bool = False,
          chunk: int = CHUNK, lock: AbstractContextManager[Any] | None = None) -> PurgeReport:
    """Apply every retention period at ``now``; idempotent (a second run finds nothing left to do).

    Order: incidents first (their copies then need no rewriting), then whole
    mentions, then texts, then handles. ``lock`` is taken per chunk (see ``_units``).
    """
    policy = (settings_or_policy if isinstance(settings_or_policy, RetentionPolicy)
              else RetentionPolicy.from_settings(settings_or_policy))
    report = PurgeReport(now=now, dry_run=dry_run)
    steps: list[tuple[int, Callable[[Unit, datetime, PurgeReport, int], None]]] = [
        (policy.incident_days, _delete_incidents),
        (policy.mention_days, _delete_mentions),
        (policy.text_days, _remove_texts),
        (policy.author_days, _remove_authors),
    ]
    with _units(engine, dry_run, lock) as unit:
        for days, step in steps:
            cutoff = policy.cutoff(days, now)
            if cutoff is not None:
                step(unit, cutoff, report, chunk)
    return report


# --- the schedule -------------------------------------------------------------------------------


def schedule_purge(scheduler: BaseScheduler, engine: Engine, policy: Settings | RetentionPolicy, clock: Clock,
                   timezone: str, *, hour: int = 3, minute: int = 30,
                   lock: AbstractContextManager[Any] | None = None,
                   periods: PeriodClaims | None = None) -> Job:
    """Run ``purge`` daily at 03:30 local time (the quietest hour, before the PR team's morning).

    ``coalesce`` and ``max_instances=1``: a purge never overlaps another or piles
    up after a pause. A failure is logged as one line and the next night retries
    (the purge resumes where it stopped). Pass the worker's ``pass_lock`` as ``lock``.
    ``periods``, several workers: ``Membership``, so one worker purges each night
    (the local date is the period; ``schedule_once_per_period``).
    """
    def run(now: datetime) -> PurgeReport | None:
        try:
            report = purge(engine, policy, now, lock=lock)
        except Exception as exc:  # the next run picks up where this one stopped
            # The driver's own message: SQLAlchemy's would add the statement's parameters, i.e. handles and texts.
            cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
            log.error("retention purge failed: %s", describe(cause))
            return None
        log.info("retention purge: %s", report.summary())
        return report

    return schedule_once_per_period(
        scheduler, job_id=PURGE_JOB, name="retention purge",
        trigger=CronTrigger(hour=hour, minute=minute, timezone=ZoneInfo(timezone)),
        period_of=lambda now: now.astimezone(ZoneInfo(timezone)).date().isoformat(), run=run, clock=clock,
        periods=periods, grace=timedelta(hours=1))
