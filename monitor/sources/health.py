"""Source-health signals: the worker must not go silently blind.

A source that keeps failing (API down, token revoked, rate limited for hours,
budget spent by noon) produces no mentions, which looks exactly like a quiet
day. ``health_signals`` turns "failing for longer than
``source_unhealthy_after``" into a ``Signal`` that the escalation engine
handles like any other, grouped per brand and source so it pages once per
outage rather than once per poll. A failure that means "we cannot see" (a
token expired, a permission missing, a login or key refused: the source
marks it ``blind``) raises it at once: it will not heal by itself, and the
grace period is there for outages and timeouts that do. Every reason is written
once, in the team's language and time zone (``t``: the escalation file's
``locale`` and ``timezone``).

A source can also go blind without failing: a token that lost a permission
on one listing, a search the platform quietly stopped answering. Like
Alertmanager's ``absent()``, ``absence_signals`` compares how long a source
that usually brings posts has brought none with its usual gap between
arrivals (``store.arrivals``), both in business time (``escalation.hours``,
the same clock as the escalation policies): silent for longer than
``factor`` x the usual gap, and at least ``at_least``, raises a
source-health incident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from statistics import median

from sqlalchemy import Connection

from monitor.escalation.hours import Hours
from monitor.i18n import N_, Translator, translator
from monitor.models import Severity, Signal
from monitor.sources import registry
from monitor.sources.base import Source
from monitor.sources.registry import SourceSpec
from monitor.sources.schema import CollectConfig, brand_specs
from monitor.store import arrivals as arrivals_repo
from monitor.store import health as health_repo

RULE = "source-health"


def brand_of(source: Source) -> str:
    """The brand a source collects for: its ``brand`` attribute, else the part after ``kind:``."""
    brand = getattr(source, "brand", None)
    if isinstance(brand, str) and brand:
        return brand
    parts = source.name.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else source.name


def _signal(brand: str, key: str, reason: str, now: datetime) -> Signal:
    """A source-health signal, grouped per brand and ``key`` (one incident per outage or silence)."""
    return Signal(rule=RULE, severity=Severity.WARNING, brand=brand, group_key=f"{brand}|{key}", reason=reason,
                  fired_at=now, mention_ids=(), kind="source")


def health_signals(conn: Connection, sources: Sequence[Source], now: datetime,
                   unhealthy_after: timedelta, t: Translator | None = None) -> list[Signal]:
    """One WARNING signal per source failing for longer than ``unhealthy_after``, or failing blind (at once)."""
    t = t or translator()
    rows = health_repo.all_health(conn)
    signals: list[Signal] = []
    for source in sources:
        health = rows.get(source.name)
        if health is None or health.failing_since is None or not health.unhealthy(now, unhealthy_after):
            continue
        down_for = now - health.failing_since
        brand = brand_of(source)
        since_success = (t._("last success {time}", time=t.datetime_zone(health.last_success_at))
                         if health.last_success_at else t._("no success recorded yet"))
        if health.blind:
            reason = t.ngettext(
                "Source {source} cannot see: {error} ({n} poll in a row; {since}). This will not recover by itself: "
                "new {brand} mentions from this source are not being collected until it is fixed.",
                "Source {source} cannot see: {error} ({n} polls in a row; {since}). This will not recover by itself: "
                "new {brand} mentions from this source are not being collected until it is fixed.",
                health.consecutive_failures, source=source.name, since=since_success,
                error=health.last_error or t._("access refused"), brand=brand)
        else:
            reason = t.ngettext(
                "Source {source} has been failing for {duration} ({n} poll in a row; {since}): {error}. New {brand} "
                "mentions from this source are not being collected until it recovers.",
                "Source {source} has been failing for {duration} ({n} polls in a row; {since}): {error}. New {brand} "
                "mentions from this source are not being collected until it recovers.",
                health.consecutive_failures, source=source.name, duration=t.duration(down_for), since=since_success,
                error=health.last_error or t._("unknown error"), brand=brand)
        signals.append(_signal(brand, f"source:{source.name}", reason, now))
    return signals


@dataclass(frozen=True, slots=True)
class Absence:
    """When silence is an alert (``source_absence`` in ``monitor.yaml``)."""

    factor: float = 4.0  # silent for longer than this many usual gaps...
    at_least: timedelta = timedelta(hours=6)  # ...and at least this long, both in business time
    lookback: timedelta = timedelta(days=14)  # the history the usual gap is taken from
    min_arrivals: int = 5  # fewer arrivals than this in the lookback: the source does not "usually" bring posts
    # The configured sources by name, so the alert names each as people know it (``described``).
    specs: Mapping[str, SourceSpec] = field(default_factory=dict)


def absence_of(config: CollectConfig) -> Absence:
    """``monitor.yaml``'s ``source_absence``, and its sources' descriptions."""
    specs = {spec.name: spec for name, brand in config.brands.items() for spec in brand_specs(name, brand)}
    return Absence(factor=config.source_absence.factor, at_least=config.source_absence.at_least, specs=specs)


def described(source: Source, spec: SourceSpec | None) -> tuple[str, str]:
    """How an alert names a source and what it brings: ("Facebook Lumora (page 1010)", "comments").

    The registry's display name and ``brings``, the brand, and the target of its
    ``monitor.yaml`` block when known; a source not from ``monitor.yaml`` is named
    by the platform its name starts with.
    """
    kind = spec.kind if spec is not None else source.name.split(":")[0]
    platform = next((p for p in registry.platforms()
                     if (spec is not None and p.key == spec.platform) or (spec is None and p.source == kind)), None)
    display = platform.display if platform is not None else registry.display_name(kind)
    brings = platform.brings if platform is not None else "posts"
    target = f" ({spec.target})" if spec is not None and spec.target else ""
    return f"{display} {brand_of(source)}{target}", brings


# One whole sentence per kind of item a platform brings (``Platform.brings``), so each language can
# agree its words ("geen nieuwe reacties", "aucun nouvel article").
ABSENT = {
    "posts": N_("{title}: no new posts for {silent} of business hours, usually {per_day} a day (one arrival every "
                "{usual} of business hours; last {last}; {source} in monitor sources). It answers without error, so "
                "check that it still sees what it should: the token's permissions, the query, the account or channel."),
    "comments": N_("{title}: no new comments for {silent} of business hours, usually {per_day} a day (one arrival "
                   "every {usual} of business hours; last {last}; {source} in monitor sources). It answers without "
                   "error, so check that it still sees what it should: the token's permissions, the query, the "
                   "account or channel."),
    "articles": N_("{title}: no new articles for {silent} of business hours, usually {per_day} a day (one arrival "
                   "every {usual} of business hours; last {last}; {source} in monitor sources). It answers without "
                   "error, so check that it still sees what it should: the token's permissions, the query, the "
                   "account or channel."),
    "reviews": N_("{title}: no new reviews for {silent} of business hours, usually {per_day} a day (one arrival "
                  "every {usual} of business hours; last {last}; {source} in monitor sources). It answers without "
                  "error, so check that it still sees what it should: the token's permissions, the query, the "
                  "account or channel."),
}


def absence_signals(conn: Connection, sources: Sequence[Source], now: datetime, hours: Hours,
                    absence: Absence, t: Translator | None = None) -> list[Signal]:
    """One WARNING signal per source silent for longer than its usual gap allows (see the module docstring).

    A failing source is left to ``health_signals``: its error says more than its silence.
    """
    t = t or translator()
    rows = health_repo.all_health(conn)
    signals: list[Signal] = []
    for source in sources:
        health = rows.get(source.name)
        if health is not None and health.consecutive_failures:
            continue
        arrivals = arrivals_repo.since(conn, source.name, now - absence.lookback)
        if len(arrivals) < absence.min_arrivals:
            continue
        usual = timedelta(seconds=median(hours.between(a.at, b.at).total_seconds()
                                         for a, b in pairwise(arrivals)))
        silent = hours.between(arrivals[-1].at, now)
        if silent <= max(usual * absence.factor, absence.at_least):
            continue
        days = max((now - arrivals[0].at) / timedelta(days=1), 1.0)
        per_day = sum(a.fetched for a in arrivals) / days
        brand = brand_of(source)
        title, brings = described(source, absence.specs.get(source.name))
        reason = t._(ABSENT[brings] if brings in ABSENT else ABSENT["posts"],
                     title=title, silent=t.duration(silent), per_day=t.number(round(per_day)),
                     usual=t.duration(usual), last=t.datetime_zone(arrivals[-1].at), source=source.name)
        signals.append(_signal(brand, f"absent:{source.name}", reason, now))
    return signals
