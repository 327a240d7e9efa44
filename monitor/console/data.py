"""What each page shows, read from the store through the store's own functions.

Plain functions over a ``Connection`` returning dataclasses: the templates only
format, and the tests can check the data without a browser. Every store call
the console makes for reading lives here, so a change in a store module's
signature touches one file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection

from monitor.console.plain import describe_rule
from monitor.detect import Rule, load_rules
from monitor.models import Incident, IncidentEvent, IncidentState, Notification, StoredMention
from monitor.store import audit as audit_repo
from monitor.store import health as health_repo
from monitor.store import history as history_repo
from monitor.store import incidents as incident_repo
from monitor.store import mentions as mention_repo
from monitor.store import outbox as outbox_repo
from monitor.store import silences as silence_repo
from monitor.store.audit import AuditEntry, Note
from monitor.store.health import SourceHealth
from monitor.store.silences import Silence
from monitor.store.stats import incident_overview
from monitor.yamlconfig import ConfigError, ConfigInvalid


@dataclass(frozen=True, slots=True)
class IncidentView:
    incident: Incident
    events: list[IncidentEvent]  # the timeline: level calls, acknowledgements, clicks, snoozes, closing
    posts: list[StoredMention]
    queued: list[Notification]  # its notifications not delivered yet


@dataclass(frozen=True, slots=True)
class NowView:
    incidents: list[IncidentView]
    health: list[SourceHealth]
    outbox: list[outbox_repo.Queued]  # pending and blocked, with the status and the last error
    backlog: int


def now_view(conn: Connection, *, posts_per_incident: int = 10) -> NowView:
    """Open incidents (newest first) with their timelines, source health and the undelivered outbox."""
    queued = outbox_repo.undelivered(conn, limit=200)
    views = []
    for incident in reversed(incident_repo.open_incidents(conn)):
        ids = incident_repo.mention_ids(conn, incident.id)[:posts_per_incident]
        views.append(IncidentView(incident, incident_repo.events(conn, incident.id),
                                  mention_repo.get_mentions(conn, ids),
                                  [q.notification for q in queued if q.notification.incident_id == incident.id]))
    health = sorted(health_repo.all_health(conn).values(), key=lambda h: h.source)
    return NowView(views, health, queued, outbox_repo.backlog(conn))


def get_incident(conn: Connection, incident_id: int) -> Incident | None:
    return incident_repo.get(conn, incident_id)


@dataclass(frozen=True, slots=True)
class IncidentPage:
    item: IncidentView
    notes: list[Note]
    audit: list[AuditEntry]  # who did what through Slack, e-mail or the console, refused attempts too
    post_count: int


def incident_page(conn: Connection, incident_id: int, *, posts: int = 50) -> IncidentPage | None:
    """Everything on one incident, open or closed: posts, timeline, notes, and its audit rows."""
    incident = incident_repo.get(conn, incident_id)
    if incident is None:
        return None
    ids = incident_repo.mention_ids(conn, incident_id)
    queued = [q.notification for q in outbox_repo.undelivered(conn, limit=200)
              if q.notification.incident_id == incident_id]
    item = IncidentView(incident, incident_repo.events(conn, incident_id), mention_repo.get_mentions(conn, ids[:posts]),
                        queued)
    return IncidentPage(item, audit_repo.notes(conn, incident_id), audit_repo.for_incident(conn, incident_id),
                        len(ids))


def history(conn: Connection, filters: history_repo.Filters, *, limit: int = 100,
            offset: int = 0) -> tuple[list[Incident], int]:
    return history_repo.search(conn, filters, limit=limit, offset=offset)


def audit_rows(conn: Connection, *, limit: int = 300) -> list[AuditEntry]:
    return audit_repo.recent(conn, limit=limit)


@dataclass(frozen=True, slots=True)
class Choices:
    """The brands and rules a person may pick (silences, history, plan): the configured ones, not free text,
    so a typo cannot make a silence that mutes nothing."""

    brands: list[str]
    rules: list[str]
    problems: list[ConfigError]


def configured_choices(rules_dir: Path, brands_from: list[str]) -> Choices:
    """Rule names from the rules folder; brands from ``monitor.yaml`` (given) and those the rules name."""
    problems: list[ConfigError] = []
    rules: list[str] = []
    brands = set(brands_from)
    try:
        rule_set = load_rules(rules_dir)
        rules = sorted({r.name for r in rule_set.rules})
        brands.update(b for r in rule_set.rules for b in (r.brands or ()))
    except ConfigInvalid as exc:
        problems = exc.errors
    return Choices(sorted(brands, key=str.casefold), rules, problems)


@dataclass(frozen=True, slots=True)
class SilenceRow:
    silence: Silence
    state: str  # "active", "future" or "ended"


def silence_rows(conn: Connection, now: datetime) -> list[SilenceRow]:
    rows = []
    for s in reversed(silence_repo.all_silences(conn)):
        state = "active" if s.starts_at <= now < s.ends_at else "ended" if s.ends_at <= now else "future"
        rows.append(SilenceRow(s, state))
    return rows


@dataclass(frozen=True, slots=True)
class RuleRow:
    rule: Rule
    sentence: str
    file: str
    alerts_30d: int
    resolved: int  # closed as real, from the responders' feedback (all time)
    false_positive: int

    @property
    def precision(self) -> float | None:
        judged = self.resolved + self.false_positive
        return self.resolved / judged if judged else None


@dataclass(frozen=True, slots=True)
class RulesView:
    rows: list[RuleRow]
    errors: list[ConfigError]


def rules_view(conn: Connection, rules_dir: Path, now: datetime) -> RulesView:
    try:
        rule_set = load_rules(rules_dir)
    except ConfigInvalid as exc:
        return RulesView([], exc.errors)
    overview = incident_overview(conn)
    since = now - timedelta(days=30)
    rows = []
    for rule in rule_set.rules:
        mine = [o for o in overview if o.rule == rule.name]
        file = next((p.name for p in rule_set.files if f"name: {rule.name}" in p.read_text(encoding="utf-8")), "")
        rows.append(RuleRow(
            rule, describe_rule(rule), file,
            alerts_30d=sum(1 for o in mine if o.opened_at >= since),
            resolved=sum(1 for o in mine if o.state == IncidentState.RESOLVED.value),
            false_positive=sum(1 for o in mine if o.state == IncidentState.FALSE_POSITIVE.value)))
    return RulesView(rows, [])
