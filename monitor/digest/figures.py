"""The digest's numbers: SQL aggregations over one week, turned into plain dataclasses.

Mentions are only ever *counted in SQL* (``GROUP BY`` brand, local day,
source and sentiment bucket over an indexed ``created_at`` range): a week can
hold hundreds of thousands of rows and Python never sees them one by one.
Incidents are few (tens to hundreds a week), so their timelines are read
whole and interpreted here, where the rules for "time to acknowledge" can be
written in readable code.

Everything is a function of the store and the arguments: no clock is read, so
the digest of a past week can be rebuilt and compared byte for byte.

Definitions the report states too:

* **Sentiment bucket** (``sentiment_bucket``): negative if P(negative) ≥ 0.5;
  otherwise positive if P(positive) is the highest of the three (a tie counts
  as positive, as ``SentimentScores.label`` does); otherwise neutral. Shares
  are of *scored* mentions; mentions not scored yet are counted apart.
* **Time to acknowledge** runs from the first notification (or from the
  opening, if someone acknowledged before any notification went out) to the
  ``acknowledged`` transition, and is counted the way the incident's policy
  counts its deadline: real time for policies that page after hours,
  business time for policies that wait for business hours. Its target is the
  first level's ``ack_within``.
* **Time to resolve** runs from the opening to the closing transition
  (resolved or false positive), in real time: how long the incident was live.
* **Precision** of a rule = 1 − false positives / incidents, over incidents
  opened this week by that rule.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, null, select
from sqlalchemy.sql.elements import ColumnElement

from monitor.escalation.schema import WEEKDAYS, EscalationConfig, Policy
from monitor.models import IncidentState, Severity
from monitor.store.tables import incident_events, incident_mentions, incidents, mentions, sentiments, signals

from .week import IsoWeek

NEGATIVE_THRESHOLD = 0.5
DEFAULT_REACH_THRESHOLD = 10_000
TREND_WEEKS = 4
SENTIMENT_RULE = (
    "A mention is negative if its P(negative) ≥ 0.5; otherwise positive if P(positive) is the highest of the "
    "three probabilities (a tie counts as positive); otherwise neutral. Shares are of scored mentions."
)
BUCKETS = ("negative", "neutral", "positive")
CLOSING_STATES = (IncidentState.RESOLVED.value, IncidentState.FALSE_POSITIVE.value, IncidentState.EXPIRED.value)
SYSTEM_ACTOR = "system"
AUTOMATIC = "automatically"  # how the engine's own transitions (auto-resolve, expiry) are shown
TEXT_LIMIT = 160


# --- SQL building blocks ----------------------------------------------------------------------------------


def sentiment_bucket() -> ColumnElement[str]:
    """The documented threshold as one SQL ``CASE``: portable between SQLite and PostgreSQL."""
    s = sentiments.c
    return case(
        (s.negative.is_(None), "unscored"),
        (s.negative >= NEGATIVE_THRESHOLD, "negative"),
        (and_(s.positive >= s.neutral, s.positive >= s.negative), "positive"),
        else_="neutral",
    )


def _is_negative() -> ColumnElement[int]:
    return case((sentiments.c.negative >= NEGATIVE_THRESHOLD, 1), else_=0)


def _bucket_index(column: Any, bounds: Sequence[datetime]) -> ColumnElement[int]:
    """Index ``i`` with ``bounds[i] <= column < bounds[i + 1]``, for rows already inside the bounds.

    Boundaries are computed in Python per local date (so DST is right) and
    compared as UTC values: no database time-zone functions, which SQLite lacks.
    """
    inner = bounds[1:-1]
    if not inner:
        return literal(0)
    return case(*[(column < b, i) for i, b in enumerate(inner)], else_=len(bounds) - 2)


# --- the figures ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentimentCounts:
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    unscored: int = 0

    @property
    def scored(self) -> int:
        return self.negative + self.neutral + self.positive

    @property
    def total(self) -> int:
        return self.scored + self.unscored

    def share(self, bucket: str) -> float | None:
        """Fraction of scored mentions in ``bucket``; None when nothing was scored."""
        if not self.scored:
            return None
        return int(getattr(self, bucket)) / self.scored

    def __add__(self, other: SentimentCounts) -> SentimentCounts:
        return SentimentCounts(self.negative + other.negative, self.neutral + other.neutral,
                               self.positive + other.positive, self.unscored + other.unscored)


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date
    by_source: dict[str, int]
    sentiment: SentimentCounts

    @property
    def total(self) -> int:
        return sum(self.by_source.values())


@dataclass(frozen=True, slots=True)
class PostRef:
    """The first post of an incident, already made safe to publish.

    ``author`` is set only for authors at or above the reach threshold; for
    others it is None and handles are kept out of the text and the link.
    """

    source: str
    created_at: datetime
    text: str
    url: str | None
    author: str | None
    reach: int | None


@dataclass(frozen=True, slots=True)
class IncidentFigures:
    id: int
    brand: str
    rule: str
    kind: str
    reason: str  # why it fired, handles of people masked
    severity: Severity
    state: IncidentState
    policy: str
    opened_at: datetime
    alerted_at: datetime | None
    mention_count: int
    first_post: PostRef | None
    acknowledged_by: str | None  # display name
    acknowledged_at: datetime | None
    time_to_ack: timedelta | None
    ack_target: timedelta | None
    business_clock: bool  # True when time to acknowledge counts business hours only
    closed_state: IncidentState | None
    closed_by: str | None
    closed_at: datetime | None
    time_to_resolve: timedelta | None
    resolution_note: str | None
    max_level: int
    escalation_notes: tuple[str, ...] = ()

    @property
    def met_target(self) -> bool | None:
        if self.time_to_ack is None or self.ack_target is None:
            return None
        return self.time_to_ack <= self.ack_target

    @property
    def is_false_positive(self) -> bool:
        return self.state is IncidentState.FALSE_POSITIVE


@dataclass(frozen=True, slots=True)
class AckFigures:
    """Time to acknowledge for one policy, against that policy's target."""

    policy: str
    target: timedelta | None
    business_clock: bool
    incidents: int
    acknowledged: int
    median: timedelta | None
    worst: timedelta | None
    over_target: int

    @property
    def unacknowledged(self) -> int:
        return self.incidents - self.acknowledged


@dataclass(frozen=True, slots=True)
class RuleFigures:
    rule: str
    signals: int
    incidents: int
    false_positives: int

    @property
    def precision(self) -> float | None:
        """1 − FP / incidents; None when the rule opened no incident."""
        if not self.incidents:
            return None
        return 1 - self.false_positives / self.incidents


@dataclass(frozen=True, slots=True)
class WeekTrend:
    label: str
    volume: int
    negative: int
    scored: int
    incidents: int
    median_tta: timedelta | None

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.scored if self.scored else None


@dataclass(frozen=True, slots=True)
class Baseline:
    """The previous weeks taken together: what "usual" means for this week's numbers.

    Volume and incidents are averages per week; the negative share and the
    median time to acknowledge are pooled over all their mentions/incidents, so
    a quiet week does not weigh as much as a busy one.
    """

    weeks: int
    volume: float
    negative_share: float | None
    incidents: float
    median_tta: timedelta | None


@dataclass(frozen=True, slots=True)
class NamedAuthor:
    handle: str
    reach: int
    posts: int
    negative: int


@dataclass(frozen=True, slots=True)
class Voices:
    """Who posted: authors above the reach threshold by handle, everyone else only counted."""

    named: tuple[NamedAuthor, ...]
    other_authors: int
    other_posts: int


@dataclass(frozen=True, slots=True)
class ModelUse:
    model: str
    version: str
    mentions: int


@dataclass(frozen=True, slots=True)
class BrandDigest:
    brand: str
    days: tuple[DayFigures, ...]
    sources: tuple[str, ...]
    incidents: tuple[IncidentFigures, ...]
    ack: tuple[AckFigures, ...]
    rules: tuple[RuleFigures, ...]
    trend: tuple[WeekTrend, ...]  # oldest first; the last one is this week
    baseline: Baseline
    voices: Voices

    @property
    def volume(self) -> int:
        return sum(d.total for d in self.days)

    @property
    def sentiment(self) -> SentimentCounts:
        total = SentimentCounts()
        for d in self.days:
            total = total + d.sentiment
        return total

    @property
    def by_source(self) -> dict[str, int]:
        return {s: sum(d.by_source.get(s, 0) for d in self.days) for s in self.sources}

    @property
    def escalations(self) -> tuple[IncidentFigures, ...]:
        """Incidents that nobody acknowledged in time at level 1: they reached level 2 or beyond."""
        return tuple(i for i in self.incidents if i.max_level >= 2)

    @property
    def false_positives(self) -> int:
        return sum(i.is_false_positive for i in self.incidents)

    @property
    def median_tta(self) -> timedelta | None:
        return self.trend[-1].median_tta if self.trend else None


@dataclass(frozen=True, slots=True)
class Digest:
    week: IsoWeek
    reach_threshold: int
    brands: tuple[BrandDigest, ...]
    models: tuple[ModelUse, ...]
    generated_at: datetime | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def rules(self) -> tuple[RuleFigures, ...]:
        """Rules over all brands, noisiest first: rules are shared files, so this is the list to fix."""
        merged: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for b in self.brands:
            for r in b.rules:
                acc = merged[r.rule]
                acc[0] += r.signals
                acc[1] += r.incidents
                acc[2] += r.false_positives
        return _sort_rules(RuleFigures(k, *v) for k, v in merged.items())

    @property
    def incidents(self) -> tuple[IncidentFigures, ...]:
        return tuple(sorted((i for b in self.brands for i in b.incidents), key=lambda i: (i.opened_at, i.id)))

    def top_incidents(self, limit: int = 5) -> tuple[IncidentFigures, ...]:
        """The ones a reader should see first: most severe, furthest escalated, most posts."""
        ranked = sorted(self.incidents, key=lambda i: (-i.severity.rank, -i.max_level, -i.mention_count,
                                                       i.opened_at, i.id))
        return tuple(ranked[:limit])


# --- helpers ----------------------------------------------------------------------------------------------


def median(values: Sequence[timedelta]) -> timedelta | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def business_time(config: EscalationConfig, start: datetime, end: datetime) -> timedelta:
    """Business time between two instants, with the escalation's hours, days and holidays.

    The same clock the engine uses to set deadlines for policies that wait,
    so "within target" here means "acknowledged before the engine escalated".
    """
    if end <= start:
        return timedelta(0)
    spec, zone = config.business_hours, config.zone
    days = {WEEKDAYS.index(d) for d in spec.days}
    holidays = set(spec.holidays)
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    total = timedelta(0)
    while day <= last:
        if day.weekday() in days and day not in holidays:
            opens = datetime.combine(day, spec.start, tzinfo=zone).astimezone(UTC)
            closes = datetime.combine(day, spec.end, tzinfo=zone).astimezone(UTC)
            lo, hi = max(opens, start), min(closes, end)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total


_HANDLE = re.compile(r"(?<![\w@])@(\w{1,50})")
_X_STATUS = re.compile(r"^https?://(?:www\.|mobile\.)?(?:x|twitter)\.com/[^/]+/status/(\d+)", re.IGNORECASE)


def _squash(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def mask_handles(text: str, brand: str, author: str | None = None) -> str:
    """Mask the @handles of people in a text the digest quotes (a post, a reason, a note).

    A quoted text names people the digest must not name: its readers are not
    those people's audience. Handles that contain the brand's name (the brand's
    own accounts) stay readable, and so does ``author``, which callers pass only
    for an author above the reach threshold.
    """
    keep = {_squash(author)} if author else set()
    squashed_brand = _squash(brand)

    def mask(found: re.Match[str]) -> str:
        name = _squash(found.group(1))
        if name in keep or (squashed_brand and squashed_brand in name):
            return found.group(0)
        return "@…"

    return _HANDLE.sub(mask, text)


def shorten(text: str, limit: int = TEXT_LIMIT) -> str:
    """One line, cut at a word boundary, with an ellipsis when cut."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = flat[: limit - 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else head
    return cut.rstrip(" ,.;:") + "…"


def safe_text(text: str, brand: str, author: str | None, limit: int = TEXT_LIMIT) -> str:
    """A post as the digest quotes it: handles of people masked, then shortened."""
    return shorten(mask_handles(text, brand, author), limit)


def safe_url(url: str | None, handle: str | None, named: bool) -> str | None:
    """A link that does not reveal a below-threshold author's handle.

    X links carry the handle in the path (``x.com/<handle>/status/<id>``) but
    resolve just as well as ``x.com/i/web/status/<id>``; any other link that
    contains the handle is dropped rather than published.
    """
    if not url or named or not handle:
        return url
    if handle.casefold() not in url.casefold():
        return url
    found = _X_STATUS.match(url)
    if found:
        return f"https://x.com/i/web/status/{found.group(1)}"
    return None


# --- queries ----------------------------------------------------------------------------------------------


def _brand_filter(column: Any, brands: Sequence[str] | None) -> ColumnElement[bool]:
    return column.in_(list(brands)) if brands else literal(True)


def stored_brands(conn: Connection) -> list[str]:
    """Every brand in the mentions table, by a loose index scan: one index seek per brand, not per row.

    The mention queries then filter on ``brand IN (...)``, an equality on the
    leading column of ``ix_mentions_brand_created``: the planner picks that
    index (brand, then the time range, covering) even in a store that was
    never ``ANALYZE``d, where a bare time range would walk
    ``ix_mentions_created_at`` and fetch every row from the table for its brand.
    """
    m = mentions.c
    found = select(func.min(m.brand).label("brand")).cte("brands", recursive=True)
    following = select(func.min(m.brand)).where(m.brand > found.c.brand).scalar_subquery()
    found = found.union_all(select(following).where(found.c.brand.is_not(None)))
    return list(conn.execute(select(found.c.brand).where(found.c.brand.is_not(None))).scalars())


def _week_counts(conn: Connection, week: IsoWeek, brands: Sequence[str]) -> list[Any]:
    """One pass over the week's mentions: counts per brand, local day, source, bucket and model.

    The computed columns are named in a subquery and grouped by name: PostgreSQL
    would not match a ``GROUP BY`` of the same ``CASE`` with its own bound
    parameters; SQLite flattens the subquery, so it costs nothing there.
    """
    m, s = mentions.c, sentiments.c
    rows = (
        select(m.brand.label("brand"), _bucket_index(m.created_at, week.day_bounds).label("day"),
               m.source.label("source"), sentiment_bucket().label("bucket"), s.model.label("model"),
               s.model_version.label("version"))
        .select_from(mentions.outerjoin(sentiments, s.mention_id == m.id))
        .where(m.brand.in_(list(brands)), m.created_at >= week.start, m.created_at < week.end)
        .subquery()
    )
    r = rows.c
    keys = (r.brand, r.day, r.source, r.bucket, r.model, r.version)
    return list(conn.execute(select(*keys, func.count().label("n")).group_by(*keys)))


def _trend_counts(conn: Connection, week: IsoWeek, brands: Sequence[str]) -> list[Any]:
    """Volume and negative counts per brand for one earlier week.

    One query per week grouped by brand alone: rows arrive in index order, so
    SQLite aggregates them as they stream instead of sorting every row by a
    computed week number first (twice as fast on a million rows).
    """
    m, s = mentions.c, sentiments.c
    stmt = (
        select(m.brand, func.count().label("n"), func.coalesce(func.sum(_is_negative()), 0).label("neg"),
               func.count(s.mention_id).label("scored"))
        .select_from(mentions.outerjoin(sentiments, s.mention_id == m.id))
        .where(m.brand.in_(list(brands)), m.created_at >= week.start, m.created_at < week.end)
        .group_by(m.brand)
    )
    return list(conn.execute(stmt))


def _voices(conn: Connection, week: IsoWeek, threshold: int, brands: Sequence[str]) -> list[Any]:
    """Authors per brand; handles of below-threshold authors collapse into one row inside SQL.

    The handles of people under the threshold never leave the database: the
    outer ``GROUP BY`` replaces them with NULL before rows are returned.
    """
    m = mentions.c
    per_author = (
        select(m.brand.label("brand"), m.author_handle.label("handle"), func.max(m.author_reach).label("reach"),
               func.count().label("posts"), func.coalesce(func.sum(_is_negative()), 0).label("negative"))
        .select_from(mentions.outerjoin(sentiments, sentiments.c.mention_id == m.id))
        .where(m.brand.in_(list(brands)), m.created_at >= week.start, m.created_at < week.end)
        .group_by(m.brand, m.author_handle)
        .subquery()
    )
    a = per_author.c
    named = and_(a.handle.is_not(None), a.reach >= threshold)
    shown = select(a.brand, case((named, a.handle), else_=null()).label("shown"),
                   case((named, a.reach), else_=null()).label("shown_reach"), a.handle, a.posts,
                   a.negative).subquery()
    v = shown.c
    stmt = (
        select(v.brand, v.shown, v.shown_reach, func.sum(v.posts).label("posts"),
               func.sum(v.negative).label("negative"), func.count(v.handle).label("authors"))
        .group_by(v.brand, v.shown, v.shown_reach)
    )
    return list(conn.execute(stmt))


def _incident_rows(conn: Connection, start: datetime, end: datetime,
                   brands: Sequence[str] | None) -> list[dict[str, Any]]:
    i = incidents.c
    stmt = (
        select(i.id, i.brand, i.rule, i.kind, i.severity, i.state, i.policy, i.level, i.opened_at, i.reason)
        .where(i.opened_at >= start, i.opened_at < end, _brand_filter(i.brand, brands))
        .order_by(i.opened_at, i.id)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def _events(conn: Connection, start: datetime, end: datetime,
            brands: Sequence[str] | None) -> dict[int, list[dict[str, Any]]]:
    e, i = incident_events.c, incidents.c
    stmt = (
        select(e.incident_id, e.at, e.from_state, e.to_state, e.level, e.actor, e.note)
        .join(incidents, i.id == e.incident_id)
        .where(i.opened_at >= start, i.opened_at < end, _brand_filter(i.brand, brands))
        .order_by(e.incident_id, e.at, e.id)
    )
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in conn.execute(stmt):
        out[int(r.incident_id)].append(dict(r._mapping))
    return out


def _mention_counts(conn: Connection, ids: Sequence[int]) -> dict[int, int]:
    if not ids:
        return {}
    im = incident_mentions.c
    found: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        stmt = select(im.incident_id, func.count()).where(im.incident_id.in_(chunk)).group_by(im.incident_id)
        found.update({int(k): int(v) for k, v in conn.execute(stmt)})
    return found


def _first_posts(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The earliest mention of each incident (window function: one row per incident)."""
    if not ids:
        return {}
    im, m = incident_mentions.c, mentions.c
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        rank = func.row_number().over(partition_by=im.incident_id, order_by=(m.created_at, m.id)).label("rank")
        ranked = (
            select(im.incident_id, m.source, m.brand, m.text, m.url, m.author_handle, m.author_reach,
                   m.created_at, rank)
            .join(mentions, m.id == im.mention_id)
            .where(im.incident_id.in_(chunk))
            .subquery()
        )
        for r in conn.execute(select(ranked).where(ranked.c.rank == 1)):
            found[int(r.incident_id)] = dict(r._mapping)
    return found


def _signal_counts(conn: Connection, week: IsoWeek, brands: Sequence[str] | None) -> list[Any]:
    g = signals.c
    stmt = (
        select(g.brand, g.rule, func.count().label("n"))
        .where(g.fired_at >= week.start, g.fired_at < week.end, _brand_filter(g.brand, brands))
        .group_by(g.brand, g.rule)
    )
    return list(conn.execute(stmt))


# --- interpretation ---------------------------------------------------------------------------------------


class _People:
    """Who acted, in names a reader knows: responder ids and Slack user ids (a button click) to full names.

    Actors that the escalation config does not know stay as recorded.
    """

    def __init__(self, config: EscalationConfig | None) -> None:
        self.names: dict[str, str] = {}
        for key, person in (config.responders.items() if config else ()):
            self.names[key] = person.name
            if person.slack:
                self.names[person.slack] = person.name

    def name(self, actor: str | None) -> str | None:
        if actor is None:
            return None
        if actor == SYSTEM_ACTOR:
            return AUTOMATIC
        return self.names.get(actor, actor)


def _policy(config: EscalationConfig | None, name: str) -> Policy | None:
    if config is None:
        return None
    return next((p for p in config.policies if p.name == name), None)


def _first(events: Iterable[dict[str, Any]], states: Sequence[str]) -> dict[str, Any] | None:
    return next((e for e in events if e["to_state"] in states and e["from_state"] != e["to_state"]), None)


def _interpret(row: dict[str, Any], events: list[dict[str, Any]], config: EscalationConfig | None,
               people: _People, mention_count: int, post: PostRef | None) -> IncidentFigures:
    policy = _policy(config, row["policy"])
    business = policy is not None and policy.after_hours == "wait"
    notified = _first(events, (IncidentState.NOTIFIED.value,))
    ack = _first(events, (IncidentState.ACKNOWLEDGED.value,))
    close = _first(events, CLOSING_STATES)
    opened: datetime = row["opened_at"]
    alerted = notified["at"] if notified else None
    tta: timedelta | None = None
    if ack is not None:
        start = alerted if alerted is not None and alerted <= ack["at"] else opened
        tta = business_time(config, start, ack["at"]) if business and config else ack["at"] - start
    levels = [int(e["level"] or 0) for e in events] + [int(row["level"] or 0)]
    escalation_notes: list[str] = []
    previous_level = 0
    for e in events:  # a call to a higher level is a step in level; same-level log lines are not escalations
        level = int(e["level"] or 0)
        if e["to_state"] == IncidentState.NOTIFIED.value and level >= 2 and level != previous_level and e["note"]:
            escalation_notes.append(e["note"])
        previous_level = level
    return IncidentFigures(
        id=int(row["id"]), brand=row["brand"], rule=row["rule"], kind=row["kind"],
        reason=mask_handles(row["reason"] or "", row["brand"], post.author if post else None),
        severity=Severity(row["severity"]), state=IncidentState(row["state"]), policy=row["policy"],
        opened_at=opened, alerted_at=alerted, mention_count=mention_count, first_post=post,
        acknowledged_by=people.name(ack["actor"]) if ack else None, acknowledged_at=ack["at"] if ack else None,
        time_to_ack=tta, ack_target=policy.levels[0].ack_within if policy else None, business_clock=business,
        closed_state=IncidentState(close["to_state"]) if close else None,
        closed_by=people.name(close["actor"]) if close else None, closed_at=close["at"] if close else None,
        time_to_resolve=close["at"] - opened if close else None,
        resolution_note=mask_handles(close["note"], row["brand"]) if close and close["note"] else None,
        max_level=max(levels), escalation_notes=tuple(escalation_notes),
    )


def _post(raw: dict[str, Any] | None, threshold: int) -> PostRef | None:
    if raw is None:
        return None
    handle: str | None = raw["author_handle"]
    reach = int(raw["author_reach"] or 0)
    named = handle is not None and reach >= threshold
    return PostRef(
        source=raw["source"], created_at=raw["created_at"],
        text=safe_text(raw["text"], raw["brand"], handle if named else None),
        url=safe_url(raw["url"], handle, named), author=handle if named else None, reach=reach if named else None,
    )


def _ack_figures(items: Sequence[IncidentFigures], config: EscalationConfig | None) -> tuple[AckFigures, ...]:
    by_policy: dict[str, list[IncidentFigures]] = defaultdict(list)
    for i in items:
        by_policy[i.policy].append(i)
    order = [p.name for p in config.policies] if config else []
    names = sorted(by_policy, key=lambda n: (order.index(n) if n in order else len(order), n))
    out = []
    for name in names:
        group = by_policy[name]
        times = [i.time_to_ack for i in group if i.time_to_ack is not None]
        target = group[0].ack_target
        out.append(AckFigures(
            policy=name, target=target, business_clock=group[0].business_clock, incidents=len(group),
            acknowledged=len(times), median=median(times), worst=max(times) if times else None,
            over_target=sum(1 for t in times if target is not None and t > target),
        ))
    return tuple(out)


def _sort_rules(rules: Iterable[RuleFigures]) -> tuple[RuleFigures, ...]:
    return tuple(sorted(rules, key=lambda r: (r.precision if r.precision is not None else 2.0, -r.false_positives,
                                              -r.incidents, -r.signals, r.rule)))


def build_digest(conn: Connection, week: IsoWeek, config: EscalationConfig | None, *,
                 reach_threshold: int = DEFAULT_REACH_THRESHOLD, brands: Sequence[str] | None = None,
                 trend_weeks: int = TREND_WEEKS, generated_at: datetime | None = None) -> Digest:
    """Every figure of one week's digest, read from the store.

    ``config`` supplies the acknowledgement targets (and business hours); it
    may be None, and the digest then shows times without targets.
    ``generated_at`` is printed only when given, so the same data always
    gives the same report.
    """
    previous = [week.shifted(-k) for k in range(trend_weeks, 0, -1)]
    people = _People(config)

    # Mentions: aggregated in SQL.
    day_source: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    day_bucket: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    model_use: dict[tuple[str, str], int] = defaultdict(int)
    wanted = list(brands) if brands else stored_brands(conn)
    for brand, day, source, bucket, model, version, n in _week_counts(conn, week, wanted):
        day_source[brand][int(day)][source] += int(n)
        day_bucket[brand][int(day)][bucket] += int(n)
        if model is not None:
            model_use[(model, version)] += int(n)
    trend_rows: dict[str, dict[int, tuple[int, int, int]]] = defaultdict(dict)
    for idx, earlier_week in enumerate(previous):
        for brand, n, neg, scored in _trend_counts(conn, earlier_week, wanted):
            trend_rows[brand][idx] = (int(n), int(neg), int(scored))
    voice_rows: dict[str, list[Any]] = defaultdict(list)
    for r in _voices(conn, week, reach_threshold, wanted):
        voice_rows[r.brand].append(r)

    # Incidents: few; read whole, for this week and the weeks it is compared with.
    span_start = previous[0].start if previous else week.start
    rows = _incident_rows(conn, span_start, week.end, brands)
    timelines = _events(conn, span_start, week.end, brands)
    this_week = [r["id"] for r in rows if r["opened_at"] >= week.start]
    counts = _mention_counts(conn, this_week)
    posts = _first_posts(conn, this_week)
    figures = [
        _interpret(r, timelines.get(r["id"], []), config, people, counts.get(r["id"], 0),
                   _post(posts.get(r["id"]), reach_threshold) if r["opened_at"] >= week.start else None)
        for r in rows
    ]
    signal_rows: dict[str, dict[str, int]] = defaultdict(dict)
    for brand, rule, n in _signal_counts(conn, week, brands):
        signal_rows[brand][rule] = int(n)

    names = list(brands) if brands else sorted(
        set(day_source) | set(trend_rows) | {r["brand"] for r in rows} | set(signal_rows))
    result = []
    for brand in names:
        sources = tuple(sorted({s for d in day_source[brand].values() for s in d}))
        days = tuple(
            DayFigures(
                day=d, by_source={s: day_source[brand][i].get(s, 0) for s in sources if day_source[brand][i].get(s)},
                sentiment=SentimentCounts(**{k: day_bucket[brand][i].get(k, 0) for k in (*BUCKETS, "unscored")}),
            )
            for i, d in enumerate(week.days)
        )
        mine = [f for f in figures if f.brand == brand]
        current = tuple(f for f in mine if f.opened_at >= week.start)
        trend = []
        for k, w in enumerate(previous):
            n, neg, scored = trend_rows[brand].get(k, (0, 0, 0))
            in_week = [f for f in mine if w.start <= f.opened_at < w.end]
            trend.append(WeekTrend(w.label, n, neg, scored, len(in_week),
                                   median([f.time_to_ack for f in in_week if f.time_to_ack is not None])))
        earlier = [f for f in mine if f.opened_at < week.start]
        scored = sum(t.scored for t in trend)
        baseline = Baseline(
            weeks=len(previous),
            volume=sum(t.volume for t in trend) / len(previous) if previous else 0.0,
            negative_share=sum(t.negative for t in trend) / scored if scored else None,
            incidents=len(earlier) / len(previous) if previous else 0.0,
            median_tta=median([f.time_to_ack for f in earlier if f.time_to_ack is not None]),
        )
        totals = SentimentCounts()
        for d in days:
            totals = totals + d.sentiment
        trend.append(WeekTrend(week.label, totals.total, totals.negative, totals.scored, len(current),
                               median([f.time_to_ack for f in current if f.time_to_ack is not None])))
        rules: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for rule, n in signal_rows[brand].items():
            rules[rule][0] += n
        for f in current:
            rules[f.rule][1] += 1
            rules[f.rule][2] += int(f.is_false_positive)
        named = tuple(sorted(
            (NamedAuthor(r.shown, int(r.shown_reach), int(r.posts), int(r.negative))
             for r in voice_rows[brand] if r.shown is not None),
            key=lambda a: (-a.posts, -a.negative, -a.reach, a.handle.casefold())))
        others = [r for r in voice_rows[brand] if r.shown is None]
        voices = Voices(named, sum(int(r.authors) for r in others), sum(int(r.posts) for r in others))
        result.append(BrandDigest(
            brand=brand, days=days, sources=sources, incidents=current, ack=_ack_figures(current, config),
            rules=_sort_rules(RuleFigures(k, *v) for k, v in rules.items()), trend=tuple(trend), baseline=baseline,
            voices=voices,
        ))
    models = tuple(ModelUse(m, v, n) for (m, v), n in sorted(model_use.items()))
    return Digest(week=week, reach_threshold=reach_threshold, brands=tuple(result), models=models,
                  generated_at=generated_at)


def is_quiet(digest: Digest) -> bool:
    """Nothing at all happened (a new install, or a week outside the stored history)."""
    return not any(b.volume or b.incidents for b in digest.brands)

