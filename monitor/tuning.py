"""``monitor tune``: a calibration fitted on the team's labels, judged before it goes live.

The plan (``plan``) is everything the PR team needs to decide: per language, the
precision and recall of "negative" against their labels, before and after, each
post judged by a fit that never saw it (cross-validation); and, through the same
backtest ``monitor backtest`` runs, the alerts per week per rule the stored posts
would have given with the calibration in force now and with the new one (the
alert-fatigue forecast). Nothing is put in force here: ``save`` writes a new,
inactive version; ``apply`` and ``rollback`` switch what the workers use, on the
record (``calibration_changes``), and the workers follow with the next post they score.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from monitor.classify.calibration import (
    MIN_BRAND_LABELS,
    MIN_LABELS,
    Calibration,
    Example,
    Quality,
    Shortfall,
    cross_validated,
    fit,
)
from monitor.detect.backtest import BacktestResult, backtest
from monitor.detect.schema import Rule
from monitor.models import StoredMention
from monitor.store import feedback as feedback_repo
from monitor.store import mentions as mention_repo
from monitor.store.tables import labels, sentiments

DEFAULT_THRESHOLD = 0.5
BACKTEST_DAYS = 28


class TooFewLabels(ValueError):
    """No language has the labels a calibration needs; the message says how many more each one needs."""


@dataclass(frozen=True, slots=True)
class Plan:
    calibration: Calibration
    shortfalls: tuple[Shortfall, ...]
    quality: dict[str, tuple[Quality, Quality]]  # per language: before, after (cross-validated)
    threshold: float
    labels: int
    model: str
    before: BacktestResult | None = None  # the stored posts with the calibration in force now
    after: BacktestResult | None = None  # ... and with this one

    def summary(self) -> dict[str, Any]:
        """Numbers only (what the store keeps with the version, and the digest quotes)."""
        return {
            "threshold": self.threshold,
            "labels": self.labels,
            "languages": {code: {"labels": before.labels, "offset": _round(self.calibration.language.get(code)),
                                 "before": before.to_json(), "after": after.to_json()}
                          for code, (before, after) in self.quality.items()},
            "brands": {k: round(v, 4) for k, v in self.calibration.brand.items()},
            "needs": {s.language: s.needed for s in self.shortfalls},
        }

    def alerts_per_week(self) -> list[tuple[str, float, float]]:
        """(rule, alerts per week now, alerts per week with this calibration)."""
        if self.before is None or self.after is None:
            return []
        weeks = max(self.before.days, 1) / 7
        names = sorted(set(self.before.rules) | set(self.after.rules))
        return [(name, _incidents(self.before, name) / weeks, _incidents(self.after, name) / weeks)
                for name in names]


def _incidents(result: BacktestResult, rule: str) -> int:
    report = result.rules.get(rule)
    return report.incidents if report is not None else 0


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def examples(conn: Connection) -> list[Example]:
    return [Example(p.mention_id, p.language, p.brand, p.scores.negative, p.is_negative)
            for p in feedback_repo.labelled_posts(conn)]


def labelled_model(conn: Connection) -> str:
    """The model (name and version) most labelled posts were scored by: what the calibration sits on."""
    row = conn.execute(select(sentiments.c.model, sentiments.c.model_version, func.count())
                       .join(labels, labels.c.mention_id == sentiments.c.mention_id)
                       .group_by(sentiments.c.model, sentiments.c.model_version)
                       .order_by(func.count().desc()).limit(1)).first()
    return f"{row[0]} {row[1]}" if row is not None else "?"


def plan(conn: Connection, *, threshold: float = DEFAULT_THRESHOLD, min_labels: int = MIN_LABELS,
         min_brand_labels: int = MIN_BRAND_LABELS, rules: Iterable[Rule] | None = None,
         grouping_window: timedelta = timedelta(hours=6), timezone: str = "Europe/Brussels",
         since: datetime | None = None) -> Plan:
    """Fit on every label in the store; raise ``TooFewLabels`` when no language has enough."""
    found = examples(conn)
    calibration, short = fit(found, feedback_repo.next_version(conn), min_labels=min_labels,
                             min_brand_labels=min_brand_labels)
    if not calibration.language:
        raise TooFewLabels(refusal(short, min_labels))
    quality = cross_validated(found, threshold=threshold, min_labels=min_labels, min_brand_labels=min_brand_labels)
    result = Plan(calibration, tuple(short), quality, threshold, len(found), labelled_model(conn))
    if rules is None or since is None:
        return result
    rule_list = list(rules)
    active = feedback_repo.active_version(conn)
    current = feedback_repo.calibrations_by_version(conn, [active]).get(active) if active is not None else None
    posts = list(_base_posts(conn, since))
    before = backtest(rule_list, _calibrated(posts, current), grouping_window=grouping_window, timezone=timezone)
    after = backtest(rule_list, _calibrated(posts, calibration), grouping_window=grouping_window,
                     timezone=timezone)
    return Plan(calibration, tuple(short), quality, threshold, len(found), result.model, before, after)


def refusal(short: Iterable[Shortfall], min_labels: int) -> str:
    needs = "; ".join(f"{s.language}: {s.labels} labelled, {s.needed} more needed" for s in short)
    return (f"not enough labels to tune: each language needs at least {min_labels} posts labelled "
            f"negative or not negative ({needs or 'no labels yet'}); label more with `monitor label` "
            "or the buttons on the alerts")


def _base_posts(conn: Connection, since: datetime) -> Iterator[StoredMention]:
    """Stored, scored posts since ``since`` as the model alone scored them (stored calibrations undone)."""
    posts = [sm for sm in mention_repo.iter_since(conn, since) if sm.sentiment is not None]
    used = feedback_repo.score_calibrations(conn, [sm.id for sm in posts])
    known = feedback_repo.calibrations_by_version(conn, {v for v in used.values() if v is not None})
    for sm in posts:
        version = used.get(sm.id)
        if version is not None and version in known and sm.sentiment is not None:
            sm = StoredMention(sm.id, sm.mention, known[version].unapply(sm.sentiment, sm.mention.language,
                                                                         sm.mention.brand))
        yield sm


def _calibrated(posts: list[StoredMention], calibration: Calibration | None) -> Iterator[StoredMention]:
    for sm in posts:
        if calibration is None or sm.sentiment is None:
            yield sm
        else:
            yield StoredMention(sm.id, sm.mention, calibration.apply(sm.sentiment, sm.mention.language,
                                                                     sm.mention.brand))


def save(conn: Connection, p: Plan, *, by: str, at: datetime) -> int:
    feedback_repo.save_calibration(conn, p.calibration, at=at, by=by, model=p.model, summary=p.summary())
    return p.calibration.version


def apply(conn: Connection, version: int, *, by: str, at: datetime) -> int | None:
    """Put a stored version in force; returns the one it replaced."""
    if feedback_repo.get_calibration(conn, version) is None:
        raise ValueError(f"there is no calibration version {version}")
    return feedback_repo.activate(conn, version, by=by, at=at, action="apply")


def rollback(conn: Connection, *, by: str, at: datetime) -> tuple[int | None, int | None]:
    """Back to the version in force before the current one: (from, to); None is "the model alone"."""
    known, previous = feedback_repo.previous_version(conn)
    if not known:
        raise ValueError("no calibration was ever applied: nothing to roll back")
    current = feedback_repo.activate(conn, previous, by=by, at=at, action="rollback")
    return current, previous
