"""The digest's data model: plain frozen dataclasses, and the definitions the report prints.

Nothing here reads the store or the clock: ``queries`` reads, ``timeline``
interprets incidents, ``figures`` assembles one ``Digest`` from both. The
renderers (``html``, ``slack``) depend only on these classes.

Definitions the report states too:

* **Sentiment bucket** (``queries.sentiment_bucket``): negative if P(negative) ≥ 0.5;
  otherwise positive if P(positive) is the highest of the three (a tie counts
  as positive, as ``SentimentScores.label`` does); otherwise neutral. Shares
  are of *scored* mentions; mentions not scored yet are counted apart.
* **Time to acknowledge** runs from the first notification (or from the
  opening, if someone acknowledged before any notification went out) to the
  ``acknowledged`` transition, and is counted the way the incident's policy
  counts its deadline: real time for policies that page after hours,
  business time (``escalation.hours.Hours.between``) for policies that wait
  for business hours. Its target is the first level's ``ack_within``.
* **Time to resolve** runs from the opening to the closing transition
  (resolved or false positive), in real time: how long the incident was live.
  Its target is the policy's ``resolve_within`` (one day when the file gives
  none). An incident that expired unanswered or is still open has no time to
  resolve: it is counted as not resolved, never as fast.
* **Precision** of a rule = (reviewed − false positives) / reviewed, over
  the incidents opened this week by that rule that a person *reviewed*:
  acknowledged, resolved by hand or marked false positive. An incident that
  expired or resolved itself with nobody looking is no evidence that the rule
  was right, so it is counted apart ("7 of 12 not reviewed"); with fewer than
  ``MIN_REVIEWED`` reviewed incidents no percentage is shown at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from monitor import notes
from monitor.i18n import N_, Translator
from monitor.models import IncidentState, Severity
from monitor.notes import Note
from monitor.reasons import Reason

# Re-exported: the renderers read every figure from ``model``.
from .voices import MIN_CLASS_AUTHORS as MIN_CLASS_AUTHORS
from .voices import NamedAuthor as NamedAuthor
from .voices import ReachClass as ReachClass
from .voices import Voices as Voices
from .week import IsoWeek

if TYPE_CHECKING:
    from .feedback import FeedbackFigures

NEGATIVE_THRESHOLD = 0.5
DEFAULT_REACH_THRESHOLD = 10_000
TREND_WEEKS = 4
SENTIMENT_RULE = N_(
    "A mention is negative if its P(negative) ≥ 0.5; otherwise positive if P(positive) is the highest of the "
    "three probabilities (a tie counts as positive); otherwise neutral. Shares are of scored mentions."
)
BUCKETS = ("negative", "neutral", "positive")
MIN_REVIEWED = 3  # fewer reviewed incidents than this: a percentage would be noise, so none is shown
AUTOMATIC = "automatically"  # how the engine's own transitions (auto-resolve, expiry) are shown


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
    language: str | None = None  # the post's language as detected (BCP 47 primary tag), for ``lang``


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
    resolve_target: timedelta | None = None
    reach: int = 0  # the widest author reach among its posts: how far the story travelled (ranks top incidents)
    reason_data: Reason | None = None  # ``reason`` as facts, handles masked alike: shown in the reader's language
    # The engine's notes as facts (``monitor.notes``), responders by name; None where a person wrote the note
    # or the row is older: ``escalation_notes`` and ``resolution_note`` are shown as written.
    escalation_facts: tuple[Note | None, ...] = ()
    resolution_facts: Note | None = None

    def escalation_words(self, t: Translator) -> list[str]:
        """The escalation steps in ``t``'s language ('niveau 2 verwittigd: Karim El Amrani')."""
        facts = self.escalation_facts or (None,) * len(self.escalation_notes)
        return [notes.text(f, s, t) for f, s in zip(facts, self.escalation_notes, strict=True)]

    def resolution_words(self, t: Translator) -> str | None:
        """How it was closed: a person's note as written, the engine's in ``t``'s language."""
        if self.resolution_note is None:
            return None
        return notes.text(self.resolution_facts, self.resolution_note, t)

    @property
    def resolved(self) -> bool:
        """Settled: resolved (by a person or quiet after acknowledgement) or marked a false positive."""
        return self.closed_state in (IncidentState.RESOLVED, IncidentState.FALSE_POSITIVE)

    @property
    def resolve_time(self) -> timedelta | None:
        """Time to resolve as the response figures count it: None unless ``resolved`` (expiry is not)."""
        return self.time_to_resolve if self.resolved else None

    @property
    def never_acknowledged(self) -> bool:
        return self.acknowledged_at is None

    @property
    def met_target(self) -> bool | None:
        """Acknowledged within the policy's target; None without a target.

        Never acknowledged is a missed target, not a missing figure: five incidents nobody answered must
        not read as "0 over target".
        """
        if self.ack_target is None:
            return None
        if self.time_to_ack is None:
            return False if self.never_acknowledged else None
        return self.time_to_ack <= self.ack_target

    @property
    def is_false_positive(self) -> bool:
        return self.state is IncidentState.FALSE_POSITIVE

    @property
    def reviewed(self) -> bool:
        """A person looked at it: acknowledged, or closed by hand (resolved or marked false positive).

        Expiry and the quiet auto-resolve are the engine's own doing: they say
        nothing about whether the rule was right.
        """
        if self.acknowledged_at is not None or self.is_false_positive:
            return True
        return self.closed_at is not None and self.closed_by not in (None, AUTOMATIC) and \
            self.closed_state in (IncidentState.RESOLVED, IncidentState.FALSE_POSITIVE)


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
    over_target: int  # acknowledged late or never acknowledged (``IncidentFigures.met_target``)

    @property
    def unacknowledged(self) -> int:
        return self.incidents - self.acknowledged


@dataclass(frozen=True, slots=True)
class ResolveFigures:
    """Time to resolve for one policy (``policy`` None: every policy together), against its target.

    ``over_target`` counts resolved incidents that took longer than their own
    policy's target, so the overall row adds up the policies' verdicts.
    """

    policy: str | None
    target: timedelta | None
    incidents: int
    resolved: int
    median: timedelta | None
    worst: timedelta | None
    over_target: int

    @property
    def unresolved(self) -> int:
        return self.incidents - self.resolved


def resolve_figures(policy: str | None, items: Sequence[IncidentFigures]) -> ResolveFigures:
    """Time to resolve over ``items``; the target is shown only when they all share one."""
    times = [i.resolve_time for i in items if i.resolve_time is not None]
    targets = {i.resolve_target for i in items}
    over = sum(1 for i in items if i.resolve_time is not None and i.resolve_target is not None
               and i.resolve_time > i.resolve_target)
    return ResolveFigures(policy, next(iter(targets)) if len(targets) == 1 else None, len(items), len(times),
                          median(times), max(times) if times else None, over)


@dataclass(frozen=True, slots=True)
class RuleFigures:
    rule: str
    signals: int
    incidents: int
    false_positives: int
    reviewed: int = 0  # incidents a person acknowledged, resolved or marked false positive

    @property
    def unreviewed(self) -> int:
        return self.incidents - self.reviewed

    @property
    def precision(self) -> float | None:
        """(reviewed − FP) / reviewed; None below ``MIN_REVIEWED`` reviewed incidents (too few to say)."""
        if self.reviewed < MIN_REVIEWED:
            return None
        return (self.reviewed - self.false_positives) / self.reviewed

    @property
    def too_few_reviewed(self) -> bool:
        return self.incidents > 0 and self.reviewed < MIN_REVIEWED


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
class ModelUse:
    model: str
    version: str
    mentions: int


@dataclass(frozen=True, slots=True)
class ReviewFigures:
    """The week's reviews of the business: how many, how good, how fast the business answered in public.

    A review edited during the week counts once, with its latest rating; the time to
    first reply runs from the review (or its edit) to the business's public reply.
    """

    count: int
    average: float
    median_first_reply: timedelta | None
    unanswered: int

    @classmethod
    def of(cls, rows: Iterable[tuple[str, int, datetime, datetime | None]]) -> ReviewFigures | None:
        """From (review id, rating, time, reply time) in time order; None when there was no review."""
        latest: dict[str, tuple[int, datetime, datetime | None]] = {}
        for rid, rating, at, reply_at in rows:
            latest[rid] = (rating, at, reply_at)
        if not latest:
            return None
        waits = [reply - at for _, at, reply in latest.values() if reply is not None and reply >= at]
        return cls(len(latest), sum(r for r, _, _ in latest.values()) / len(latest), median(waits),
                   sum(1 for _, _, reply in latest.values() if reply is None))


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
    resolve: tuple[ResolveFigures, ...] = ()  # per policy, in the config's order
    reviews: ReviewFigures | None = None  # None: no review of the business this week

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

    @property
    def ack_overall(self) -> AckFigures | None:
        """Every policy together (no single target: each incident is judged against its own policy's)."""
        if not self.incidents:
            return None
        times = [i.time_to_ack for i in self.incidents if i.time_to_ack is not None]
        return AckFigures("all policies", None, False, len(self.incidents), len(times), median(times),
                          max(times) if times else None, sum(1 for i in self.incidents if i.met_target is False))

    @property
    def resolve_overall(self) -> ResolveFigures | None:
        return resolve_figures(None, self.incidents) if self.incidents else None

    def top_incidents(self, limit: int = 5) -> tuple[IncidentFigures, ...]:
        """Highest severity first, then the widest reach, the furthest escalation and the most posts."""
        return tuple(sorted(self.incidents, key=top_order)[:limit])


@dataclass(frozen=True, slots=True)
class SilenceFigures:
    """A silence in force during the week: what was muted, by whom, why, from when to when.

    An author silence says "an author" only: the handle is a person's, and the
    digest names nobody below the reach threshold.
    """

    id: int
    what: str  # "brand Lumora, rule keyword-scam" or "an author"
    reason: str
    created_by: str
    starts_at: datetime
    ends_at: datetime
    removed_by: str | None
    removed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Digest:
    week: IsoWeek
    reach_threshold: int
    brands: tuple[BrandDigest, ...]
    models: tuple[ModelUse, ...]
    generated_at: datetime | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    silences: tuple[SilenceFigures, ...] = ()
    feedback: FeedbackFigures | None = None  # the team's labels and calibration changes (``digest.feedback``)
    locale: str = "en"  # the language it is written in: the escalation file's ``locale`` (``monitor digest --locale``)

    @property
    def rules(self) -> tuple[RuleFigures, ...]:
        """Rules over all brands, noisiest first: rules are shared files, so this is the list to fix."""
        merged: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for b in self.brands:
            for r in b.rules:
                acc = merged[r.rule]
                acc[0] += r.signals
                acc[1] += r.incidents
                acc[2] += r.false_positives
                acc[3] += r.reviewed
        return sort_rules(RuleFigures(k, *v) for k, v in merged.items())

    @property
    def incidents(self) -> tuple[IncidentFigures, ...]:
        return tuple(sorted((i for b in self.brands for i in b.incidents), key=lambda i: (i.opened_at, i.id)))

    def top_incidents(self, limit: int = 5) -> tuple[IncidentFigures, ...]:
        """The ones a reader should see first: most severe, furthest escalated, most posts."""
        return tuple(sorted(self.incidents, key=top_order)[:limit])



def top_order(i: IncidentFigures) -> tuple[int, int, int, int, datetime, int]:
    """The order of "top incidents": severity, then reach, escalation level, posts; oldest first on a tie."""
    return (-i.severity.rank, -i.reach, -i.max_level, -i.mention_count, i.opened_at, i.id)


def median(values: Sequence[timedelta]) -> timedelta | None:
    """The middle value (the mean of the two middle ones for an even count); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def sort_rules(rules: Iterable[RuleFigures]) -> tuple[RuleFigures, ...]:
    """Noisiest first: lowest precision, then most false positives; rules without a precision after those."""
    return tuple(sorted(rules, key=lambda r: (r.precision if r.precision is not None else 2.0, -r.false_positives,
                                              -r.incidents, -r.signals, r.rule)))
