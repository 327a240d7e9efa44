"""One week's digest, assembled: the figures of ``model`` filled from ``queries`` and ``timeline``.

Everything is a function of the store and the arguments: no clock is read, so
the digest of a past week can be rebuilt and compared byte for byte. Mentions
arrive already counted by SQL; incidents arrive as rows and timelines, which
``timeline.Timelines`` interprets. The definitions the report states are in
``model``'s docstring.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from monitor.escalation.schema import EscalationConfig
from monitor.privacy.scrub import mask_handles
from monitor.store import silences as silence_repo

from . import queries
from .feedback import build_feedback
from .model import (
    BUCKETS,
    DEFAULT_REACH_THRESHOLD,
    SENTIMENT_RULE,
    TREND_WEEKS,
    Baseline,
    BrandDigest,
    DayFigures,
    Digest,
    ModelUse,
    NamedAuthor,
    ReachClass,
    ReviewFigures,
    RuleFigures,
    SentimentCounts,
    SilenceFigures,
    Voices,
    WeekTrend,
    median,
    sort_rules,
)
from .timeline import Timelines, quote_post
from .week import IsoWeek

__all__ = ["DEFAULT_REACH_THRESHOLD", "SENTIMENT_RULE", "Digest", "build_digest", "is_quiet"]


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
    timelines = Timelines(config)

    # Mentions: aggregated in SQL.
    day_source: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    day_bucket: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    model_use: dict[tuple[str, str], int] = defaultdict(int)
    wanted = list(brands) if brands else queries.stored_brands(conn)
    for brand, day, source, bucket, model, version, n in queries.week_counts(conn, week, wanted):
        day_source[brand][int(day)][source] += int(n)
        day_bucket[brand][int(day)][bucket] += int(n)
        if model is not None:
            model_use[(model, version)] += int(n)
    trend_rows: dict[str, dict[int, tuple[int, int, int]]] = defaultdict(dict)
    for idx, earlier_week in enumerate(previous):
        for brand, n, neg, scored in queries.trend_counts(conn, earlier_week, wanted):
            trend_rows[brand][idx] = (int(n), int(neg), int(scored))
    review_rows: dict[str, list[Any]] = defaultdict(list)
    for r in queries.week_reviews(conn, week, wanted):
        review_rows[r.brand].append((r.conversation_id or r.source_id, r.review_rating, r.created_at,
                                     r.review_reply_at))
    voice_rows: dict[str, list[Any]] = defaultdict(list)
    for r in queries.voices(conn, week, reach_threshold, wanted):
        voice_rows[r.brand].append(r)

    # Incidents: few; read whole, for this week and the weeks it is compared with.
    span_start = previous[0].start if previous else week.start
    rows = queries.incident_rows(conn, span_start, week.end, brands)
    events = queries.timeline_events(conn, span_start, week.end, brands)
    this_week = [r["id"] for r in rows if r["opened_at"] >= week.start]
    counts = queries.mention_counts(conn, this_week)
    posts = queries.first_posts(conn, this_week)
    reach = queries.incident_reach(conn, this_week)
    figures = [
        timelines.incident(r, events.get(r["id"], []), counts.get(r["id"], 0),
                           quote_post(posts.get(r["id"]), reach_threshold) if r["opened_at"] >= week.start else None,
                           reach.get(r["id"], 0))
        for r in rows
    ]
    signal_rows: dict[str, dict[str, int]] = defaultdict(dict)
    for brand, rule, n in queries.signal_counts(conn, week, brands):
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
        rules: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for rule, n in signal_rows[brand].items():
            rules[rule][0] += n
        for f in current:
            rules[f.rule][1] += 1
            rules[f.rule][2] += int(f.is_false_positive)
            rules[f.rule][3] += int(f.reviewed)
        named = tuple(sorted(
            (NamedAuthor(r.shown, int(r.shown_reach), int(r.posts))
             for r in voice_rows[brand] if r.shown is not None),
            key=lambda a: (-a.reach, -a.posts, a.handle.casefold())))
        others = [r for r in voice_rows[brand] if r.shown is None]
        voices = Voices(named, sum(int(r.authors) for r in others), sum(int(r.posts) for r in others),
                        reach_classes(voice_rows[brand], reach_threshold))
        result.append(BrandDigest(
            brand=brand, days=days, sources=sources, incidents=current, ack=timelines.ack_figures(current),
            rules=sort_rules(RuleFigures(k, *v) for k, v in rules.items()), trend=tuple(trend), baseline=baseline,
            voices=voices, resolve=timelines.resolve_figures(current), reviews=ReviewFigures.of(review_rows[brand]),
        ))
    models = tuple(ModelUse(m, v, n) for (m, v), n in sorted(model_use.items()))
    return Digest(week=week, reach_threshold=reach_threshold, brands=tuple(result), models=models,
                  generated_at=generated_at, silences=week_silences(conn, week, brands, timelines),
                  feedback=build_feedback(conn, week), locale=config.locale if config is not None else "en")


def week_silences(conn: Connection, week: IsoWeek, brands: Sequence[str] | None,
                  timelines: Timelines) -> tuple[SilenceFigures, ...]:
    """Every silence in force at some moment of the week (ended early ones too): mutes are on the record."""
    out = []
    wanted = {b.casefold() for b in brands} if brands else None
    for s in silence_repo.overlapping(conn, week.start, week.end):
        if wanted is not None and s.brand is not None and s.brand.casefold() not in wanted:
            continue
        parts = [f"brand {s.brand}" if s.brand else "", f"rule {s.rule}" if s.rule else "",
                 "an author (not named)" if s.author else ""]
        out.append(SilenceFigures(
            id=s.id, what=", ".join(p for p in parts if p), reason=mask_handles(s.reason, s.brand or ""),
            created_by=timelines.people.name(s.created_by) or s.created_by, starts_at=s.starts_at,
            ends_at=s.ends_at, removed_by=timelines.people.name(s.removed_by), removed_at=s.removed_at))
    return tuple(out)


def reach_classes(rows: Sequence[Any], threshold: int) -> tuple[ReachClass, ...]:
    """Authors, posts and negative posts per reach class, lowest reach first; empty classes left out."""
    bounds = queries.reach_bounds(threshold)
    acc: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        k = int(r.reach_class)
        acc[k][0] += int(r.authors)
        acc[k][1] += int(r.posts)
        acc[k][2] += int(r.negative or 0)
    lows = (0, *bounds)
    return tuple(ReachClass(lows[k], bounds[k] if k < len(bounds) else None, *acc[k]) for k in sorted(acc)
                 if acc[k][1])


def is_quiet(digest: Digest) -> bool:
    """Nothing at all happened (a new install, or a week outside the stored history)."""
    return not any(b.volume or b.incidents for b in digest.brands)

