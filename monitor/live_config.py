"""The configuration in force in a running worker, and how an edit reaches it.

``monitor.reload.Watched`` keeps each file at its last good version; this
module decides what a new version does to the running worker and puts every
version on the record:

* ``escalation.yaml``: the escalation engine switches procedure and open
  incidents follow it from their next step (``EscalationEngine.replace_config``);
* ``rules/*.yaml``: the rule engine swaps its rules (state of unchanged rules stays);
* ``monitor.yaml``: sources are added, removed or rebuilt by name, each keeping
  its cursor and budget (both are stored by source name); a source whose query
  or address changed starts a new cursor, and the log says so.

An invalid edit changes nothing; it is reported once per broken version: the
errors in the log, ``/healthz`` and the metrics, and one alert to the people of
the procedure in force ("escalation.yaml is invalid since 14:02 ..."). Every
worker records the versions it applies in the store (identical bytes give one
row), and ``monitor reload`` reaches every worker through the store.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from monitor.detect import RuleReloader, RuleSet
from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.escalation.schema import load_escalation
from monitor.i18n import translator
from monitor.models import Severity, Signal
from monitor.reload import Outcome, Watched
from monitor.sources.schema import CollectConfig, load_collect
from monitor.store import config_versions, transaction

log = logging.getLogger(__name__)
RULE = "config-invalid"
BRAND = "monitor"  # these alerts are about the worker, not about a brand


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class ConfigState:
    """One configuration as ``/healthz`` shows it."""

    kind: str
    version: str
    since: datetime
    errors: tuple[str, ...] = ()
    invalid_since: datetime | None = None


@dataclass(slots=True)
class ReloadReport:
    applied: list[str] = field(default_factory=list)  # kinds that took a new version
    invalid: list[str] = field(default_factory=list)  # kinds whose files on disk are broken
    incident_changes: list[str] = field(default_factory=list)


class LiveConfig:
    """The three configurations of a running worker; ``run()`` is its reload job."""

    def __init__(self, *, engine: Engine, escalation: EscalationEngine, escalation_file: Path,
                 rules: RuleReloader, on_rules: Callable[[RuleSet], None], now: Callable[[], datetime],
                 collect_file: Path | None = None,
                 on_collect: Callable[[CollectConfig, CollectConfig], None] | None = None,
                 on_escalation: Callable[[EscalationConfig], None] | None = None,
                 worker: str | None = None) -> None:
        self.engine = engine
        self.escalation = escalation
        self.now = now
        self.worker = worker or worker_name()
        self.on_rules = on_rules
        self.on_collect = on_collect
        self.on_escalation = on_escalation
        self.escalation_file = escalation_file
        self.escalation_config: Watched[EscalationConfig] = Watched(
            "escalation", lambda: [escalation_file], lambda: load_escalation(escalation_file), now)
        self.rules = rules
        self.collect: Watched[CollectConfig] | None = None
        if collect_file is not None and on_collect is not None:
            self.collect = Watched("collect", lambda: [collect_file], lambda: load_collect(collect_file), now)
        self.escalation.version = self.escalation_config.version.sha256
        with transaction(engine) as conn:
            self._seen_request = config_versions.last_reload_request(conn)
            for watched in self._all():
                config_versions.record(conn, kind=watched.kind, sha256=watched.version.sha256,
                                       content=watched.version.content, at=watched.since, worker=self.worker)

    def _all(self) -> list[Watched[Any]]:
        found: list[Watched[Any]] = [self.escalation_config, self.rules]
        if self.collect is not None:
            found.append(self.collect)
        return found

    def run(self, *, force: bool = False) -> ReloadReport:
        """Look at every file (re-validate all with ``force``, or when ``monitor reload`` asked)."""
        report = ReloadReport()
        with transaction(self.engine) as conn:
            latest = config_versions.last_reload_request(conn)
        if latest > self._seen_request:
            self._seen_request = latest
            force = True
            log.info("reload requested through the store (monitor reload)")
        previous_collect = self.collect.current if self.collect is not None else None
        for watched in self._all():
            outcome = watched.refresh(force=force)
            if outcome.changed:
                report.applied.append(watched.kind)
                self._apply(watched, previous_collect, report)
            elif outcome.invalid is not None:
                report.invalid.append(watched.kind)
                if outcome.first_report:
                    self._alert(watched, outcome)
        return report

    def _apply(self, watched: Watched[Any], previous_collect: CollectConfig | None, report: ReloadReport) -> None:
        now = self.now()
        with transaction(self.engine) as conn:
            if watched is self.escalation_config:
                report.incident_changes = self.escalation.replace_config(
                    conn, self.escalation_config.current, watched.version.sha256, now)
            config_versions.record(conn, kind=watched.kind, sha256=watched.version.sha256,
                                   content=watched.version.content, at=now, worker=self.worker)
        for line in report.incident_changes:
            log.info("procedure changed: incident %s", line)
        if watched is self.escalation_config and self.on_escalation is not None:
            self.on_escalation(self.escalation_config.current)
        if watched is self.rules:
            self.on_rules(self.rules.current)
        elif watched is self.collect and self.on_collect is not None and previous_collect is not None:
            self.on_collect(previous_collect, watched.current)

    def _alert(self, watched: Watched[Any], outcome: Outcome) -> None:
        """One alert per broken version, through the procedure still in force."""
        assert outcome.invalid is not None
        errors = outcome.invalid.errors
        what = {"escalation": str(self.escalation_file), "rules": "rules/*.yaml",
                "collect": "monitor.yaml"}.get(watched.kind, watched.kind)
        since = watched.error_since or self.now()
        config = self.escalation.config  # the procedure in force: its language and zone
        t = translator(config.locale, config.timezone)
        first = errors[0].text(t) if errors else t._("invalid")
        more = t.ngettext(" (and {n} more problem; `monitor check` lists them)",
                          " (and {n} more problems; `monitor check` lists them)", len(errors) - 1) \
            if len(errors) > 1 else ""
        reason = t._("{file} is invalid since {since}: {first}{more}. The worker keeps the version of {version} "
                     "until the file is fixed.", file=what, since=t.datetime_zone(since), first=first, more=more,
                     version=t.datetime_zone(watched.since))
        signal = Signal(rule=RULE, severity=Severity.WARNING, brand=BRAND,
                        group_key=f"{BRAND}|{watched.kind}|{(watched.bad_version or '')[:12]}",
                        reason=reason, fired_at=self.now(), mention_ids=(), kind="config")
        with transaction(self.engine) as conn:
            self.escalation.ingest(conn, [signal], self.now())

    def states(self) -> list[ConfigState]:
        """For ``/healthz``: each configuration's version in force, and its errors if the files are broken."""
        out = []
        for watched in self._all():
            errors = tuple(str(e) for e in watched.error.errors) if watched.error is not None else ()
            out.append(ConfigState(watched.kind, watched.version.short, watched.since, errors,
                                   watched.error_since))
        return out


def changed_targets(old: CollectConfig, new: CollectConfig) -> list[tuple[str, str, str]]:
    """Sources kept by name whose query, subreddits or address changed: (name, before, after).

    Their stored cursor belongs to what they collected before, so it is dropped and they
    start afresh; a source removed and added back unchanged keeps its cursor.
    """
    from monitor.sources.factory import configured

    before = {spec.name: spec.target for spec in configured(old)}
    return [(spec.name, before[spec.name], spec.target) for spec in configured(new)
            if spec.name in before and before[spec.name] != spec.target]
