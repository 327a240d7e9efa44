"""What would these rules have fired on these mentions? Pure, in memory, no side effects.

The same ``RuleEngine`` the worker uses runs over historical mentions in
event-time order; signals are then grouped into incidents by the escalation
engine's own rule (``monitor.escalation.grouping.decide``: merge, inhibition,
key within the grouping window), so "alerts per day" is what a responder would
really have received, not the raw signal count. This is the one detect module
that reaches into escalation: a backtest simulates the stages after it.

Assumption, stated because it matters for the load estimate: nobody
acknowledges or resolves anything in the past and no tick runs, so an incident
counts as open until a day passes with no new post, as the worker expires one
nobody answers (see ``SimulatedIncidents``). Silences are not applied either.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from monitor.classify.thresholds import NegativeThresholds
from monitor.detect.engine import RuleEngine
from monitor.detect.schema import Rule
from monitor.escalation.grouping import Join, SimulatedIncident, SimulatedIncidents, decide
from monitor.models import Signal, StoredMention

if TYPE_CHECKING:
    from monitor.classify import SentimentModel


@dataclass(slots=True)
class RuleReport:
    rule: str
    severity: str
    signals: int = 0
    mentions: set[int] = field(default_factory=set)
    incidents: int = 0
    suppressed: int = 0  # repeats silenced by realert
    inhibited: int = 0  # single-post signals absorbed by an open volume incident
    merged: int = 0  # signals about posts already in an open incident (another rule fired on them first)
    alerts_per_day: Counter[date] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


@dataclass(slots=True)
class BacktestResult:
    mentions: int
    first: datetime | None
    last: datetime | None
    rules: dict[str, RuleReport]
    incidents: list[SimulatedIncident] = field(default_factory=list)  # what a responder would have been sent

    @property
    def days(self) -> int:
        if self.first is None or self.last is None:
            return 0
        return (self.last.date() - self.first.date()).days + 1

    @property
    def total_incidents(self) -> int:
        return sum(r.incidents for r in self.rules.values())


def backtest(
    rules: Iterable[Rule],
    mentions: Iterable[StoredMention],
    *,
    grouping_window: timedelta,
    timezone: str = "Europe/Brussels",
    progress: Callable[[int], None] | None = None,
    negative_thresholds: NegativeThresholds | None = None,
) -> BacktestResult:
    """Replay ``mentions`` (sorted by time) through the rules and the incident grouping.

    ``negative_thresholds``: what ``negative_above: default`` means for the model that scored the posts
    (``thresholds_of(model)``, as the worker's engine gets it); None: the shipped head's own set.
    """
    rule_list = [r for r in rules if r.enabled]
    engine = RuleEngine(rule_list, negative_thresholds)
    zone = ZoneInfo(timezone)
    reports = {r.name: RuleReport(r.name, r.severity.value) for r in rule_list}
    incidents = SimulatedIncidents()
    count = 0
    first: datetime | None = None
    last: datetime | None = None
    for sm in mentions:
        count += 1
        when = sm.mention.created_at
        first = when if first is None else first
        last = when
        for signal in engine.process(sm, follow_ups=True):
            group_signal(signal, reports[signal.rule], incidents, grouping_window, zone)
        if progress is not None and count % 10_000 == 0:
            progress(count)
    for name, n in engine.suppressed.items():
        reports[name].suppressed = n
    if progress is not None:
        progress(count)
    return BacktestResult(count, first, last, reports, incidents.incidents)


def group_signal(signal: Signal, report: RuleReport, incidents: SimulatedIncidents, window: timedelta,
                 zone: ZoneInfo) -> SimulatedIncident | None:
    """Group one signal as the escalation engine would, and count what happened to it.

    A follow-up (a post that matched without firing) only adds its post to an open incident: it is
    no signal of its own, so it is not counted; None when it found no open incident.
    """
    if signal.follow_up:
        return incidents.apply(decide(signal, incidents, window), signal)
    report.signals += 1
    report.mentions.update(signal.mention_ids)
    decision = decide(signal, incidents, window)
    incident = incidents.apply(decision, signal)
    if decision.how is Join.MERGED:
        report.merged += 1
    elif decision.how is Join.INHIBITED:
        report.inhibited += 1
    elif decision.how is Join.NEW:
        when = signal.fired_at.astimezone(zone)
        report.incidents += 1
        report.alerts_per_day[when.date()] += 1
        if len(report.examples) < 3:
            report.examples.append(f"{when:%a %d %b %H:%M}: {signal.reason}")
    return incident


def score_missing(items: Iterable[StoredMention], model: SentimentModel | None, batch: int = 256
                  ) -> Iterator[StoredMention]:
    """Score what the store has not scored yet, in memory only (a backtest writes nothing).

    ``monitor backtest`` and the console's rule comparison both feed ``backtest`` through this.
    """
    it = iter(items)
    while chunk := list(itertools.islice(it, batch)):
        missing = [i for i, sm in enumerate(chunk) if sm.sentiment is None]
        if missing and model is not None:
            scores = model.predict([chunk[i].mention.text for i in missing])
            for i, s in zip(missing, scores, strict=True):
                chunk[i] = StoredMention(chunk[i].id, chunk[i].mention, s)
        yield from chunk


def busiest_day(result: BacktestResult) -> tuple[date | None, int]:
    per_day: defaultdict[date, int] = defaultdict(int)
    for report in result.rules.values():
        for day, n in report.alerts_per_day.items():
            per_day[day] += n
    if not per_day:
        return None, 0
    day = max(per_day, key=lambda d: per_day[d])
    return day, per_day[day]
