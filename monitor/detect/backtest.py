"""What would these rules have fired on these mentions? Pure, in memory, no side effects.

The same ``RuleEngine`` the worker uses runs over historical mentions in
event-time order; signals are then grouped into incidents the way the
escalation engine groups them (same key, grouping window, inhibition of
single-post alerts by an open volume incident), so "alerts per day" is what a
responder would really have received, not the raw signal count.

Assumption, stated because it matters for the load estimate: in a backtest an
incident counts as open until its grouping window passes with no new signal
(nobody resolves anything in the past).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.detect.engine import RuleEngine
from monitor.detect.schema import Rule
from monitor.models import Signal, StoredMention


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

    @property
    def days(self) -> int:
        if self.first is None or self.last is None:
            return 0
        return (self.last.date() - self.first.date()).days + 1

    @property
    def total_incidents(self) -> int:
        return sum(r.incidents for r in self.rules.values())


@dataclass(slots=True)
class _Open:
    rule: str
    kind: str
    last: datetime


def backtest(
    rules: Iterable[Rule],
    mentions: Iterable[StoredMention],
    *,
    grouping_window: timedelta,
    timezone: str = "Europe/Brussels",
    progress: Callable[[int], None] | None = None,
) -> BacktestResult:
    """Replay ``mentions`` (sorted by time) through the rules and the incident grouping."""
    rule_list = [r for r in rules if r.enabled]
    engine = RuleEngine(rule_list)
    zone = ZoneInfo(timezone)
    reports = {r.name: RuleReport(r.name, r.severity.value) for r in rule_list}
    open_by_key: dict[str, _Open] = {}
    open_window_by_brand: dict[str, _Open] = {}
    open_by_mention: dict[int, _Open] = {}
    count = 0
    first: datetime | None = None
    last: datetime | None = None
    for sm in mentions:
        count += 1
        when = sm.mention.created_at
        first = when if first is None else first
        last = when
        for signal in engine.process(sm):
            _group(signal, reports[signal.rule], open_by_key, open_window_by_brand, open_by_mention, grouping_window,
                   zone)
        if progress is not None and count % 10_000 == 0:
            progress(count)
    for name, n in engine.suppressed.items():
        reports[name].suppressed = n
    if progress is not None:
        progress(count)
    return BacktestResult(count, first, last, reports)


def _group(signal: Signal, report: RuleReport, open_by_key: dict[str, _Open],
           open_window_by_brand: dict[str, _Open], open_by_mention: dict[int, _Open], window: timedelta,
           zone: ZoneInfo) -> None:
    """The escalation engine's grouping, in memory, in the same order of checks."""
    report.signals += 1
    report.mentions.update(signal.mention_ids)
    now = signal.fired_at
    holders = [open_by_mention.get(i) for i in signal.mention_ids]
    if signal.mention_ids and all(h is not None and now - h.last <= window for h in holders):
        report.merged += 1
        return
    if signal.kind == "mention":
        spike = open_window_by_brand.get(signal.brand)
        if spike is not None and now - spike.last <= window:
            report.inhibited += 1
            return
    key = f"{signal.rule}|{signal.group_key}"
    current = open_by_key.get(key)
    if current is not None and now - current.last <= window:
        current.last = max(current.last, now)
        open_by_mention.update(dict.fromkeys(signal.mention_ids, current))
        return
    opened = _Open(signal.rule, signal.kind, now)
    open_by_mention.update(dict.fromkeys(signal.mention_ids, opened))
    open_by_key[key] = opened
    if signal.kind == "window":
        open_window_by_brand[signal.brand] = opened
    report.incidents += 1
    report.alerts_per_day[now.astimezone(zone).date()] += 1
    if len(report.examples) < 3:
        report.examples.append(f"{now.astimezone(zone):%a %d %b %H:%M}: {signal.reason}")



def busiest_day(result: BacktestResult) -> tuple[date | None, int]:
    per_day: defaultdict[date, int] = defaultdict(int)
    for report in result.rules.values():
        for day, n in report.alerts_per_day.items():
            per_day[day] += n
    if not per_day:
        return None, 0
    day = max(per_day, key=lambda d: per_day[d])
    return day, per_day[day]
