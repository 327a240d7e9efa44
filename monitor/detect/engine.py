"""Rules -> signals. Pure logic over a stream of scored mentions in event time.

Windows are measured on the posts' own timestamps, not on the wall clock, so
the live worker, the demo replay and ``monitor backtest`` give the same
signals for the same mentions. State (recent matches per rule and group,
first sighting per group, last firing) lives in this object; the worker
rebuilds it after a restart by replaying recent history with ``emit=False``.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from monitor.classify.thresholds import NegativeThresholds
from monitor.detect.matching import RuleMatcher, group_key_by, post_reason
from monitor.detect.schema import Rule
from monitor.models import Mention, Signal, StoredMention
from monitor.reasons import Reason, english

_NO_PAUSE = timedelta(0)


def _post_why(sm: StoredMention, matcher: RuleMatcher, words: tuple[list[str], list[str]]) -> Reason:
    """Why one post fired (made only when its signal is kept: ``RuleEngine._fire``)."""
    return post_reason(sm, matcher.facts(sm, words))

@dataclass(slots=True)
class _Series:
    """Times and ids of matching mentions for one (rule, group), sorted by time."""

    times: deque[datetime] = field(default_factory=deque)
    ids: deque[int] = field(default_factory=deque)

    def add(self, when: datetime, mention_id: int) -> None:
        if not self.times or when >= self.times[-1]:
            self.times.append(when)
            self.ids.append(mention_id)
            return
        # Late arrival: keep the series ordered (rare; deques insert in O(n)).
        pos = bisect.bisect_right(list(self.times), when)
        self.times.insert(pos, when)
        self.ids.insert(pos, mention_id)

    def prune(self, before: datetime) -> None:
        while self.times and self.times[0] < before:
            self.times.popleft()
            self.ids.popleft()

    def count_between(self, start: datetime, end: datetime) -> int:
        lo = bisect.bisect_left(self.times, start)
        hi = bisect.bisect_right(self.times, end)
        return hi - lo

    def ids_between(self, start: datetime, end: datetime) -> tuple[int, ...]:
        # Times are sorted: find the slice by bisection instead of comparing every time in the series
        # (in a profile of a backtest, a fifth of the rule time went to that comparison).
        lo = bisect.bisect_left(self.times, start)
        hi = bisect.bisect_right(self.times, end)
        return tuple(itertools.islice(self.ids, lo, hi))


# A rule as ``RuleEngine.process`` tests it: the rule, its matcher, whether it is a window rule, and its gate
# for one language (``RuleMatcher.gate``: the P(negative) a post needs, whether it must be a review, the
# reach and engagement it needs).
_Candidate = tuple[Rule, RuleMatcher, bool, float | None, bool, int, int]


class RuleEngine:
    def __init__(self, rules: Iterable[Rule], negative_thresholds: NegativeThresholds | None = None) -> None:
        """``negative_thresholds``: what ``negative_above: default`` means for the model scoring the posts
        (the shipped head's calibration when None)."""
        self.rules: tuple[Rule, ...] = ()
        self._negative_thresholds = negative_thresholds
        # Per rule: its prepared matcher, and whether its groups' first sightings are kept (``_set_rules``).
        # Per rule: its prepared matcher and whether it is a window rule (``_set_rules``); the groupings whose
        # first sightings are kept; per (brand, language, source), the rules a post of it can match (``_candidates``).
        self._matchers: tuple[tuple[Rule, RuleMatcher, bool], ...] = ()
        self._first_seen_by: tuple[str, ...] = ()
        self._by_kind: dict[tuple[str, str | None, str], tuple[float | None, tuple[_Candidate, ...]]] = {}
        self._series: dict[tuple[str, str], _Series] = defaultdict(_Series)
        self._first_seen: dict[str, datetime] = {}
        self._last_fired: dict[tuple[str, str], datetime] = {}
        self.suppressed: dict[str, int] = defaultdict(int)  # realert suppressions per rule
        self._set_rules(rules)

    @property
    def negative_thresholds(self) -> NegativeThresholds | None:
        return self._negative_thresholds

    @negative_thresholds.setter
    def negative_thresholds(self, value: NegativeThresholds | None) -> None:
        self._negative_thresholds = value
        self._set_rules(self.rules)

    def _set_rules(self, rules: Iterable[Rule]) -> None:
        """The enabled rules, each with its prepared matcher.

        First sightings (``_first_seen``, read only by a spike rule's warm-up)
        are kept per brand and per source always (a few keys; a spike rule
        switched on by a reload finds its history), per conversation only while
        a spike rule groups by conversation: a key for every conversation ever
        seen was most of a backtest's memory.
        """
        self.rules = tuple(r for r in rules if r.enabled)
        first_seen_by = {"brand", "source", *(r.group_by for r in self.rules if r.spike is not None)}
        self._first_seen_by = tuple(dict.fromkeys(r.group_by for r in self.rules if r.group_by in first_seen_by))
        self._matchers = tuple((r, RuleMatcher(r, self._negative_thresholds),
                                r.frequency is not None or r.spike is not None) for r in self.rules)
        self._by_kind = {}

    def _candidates(self, m: Mention) -> tuple[float | None, tuple[_Candidate, ...]]:
        """The rules a post of this brand, language and source can match, in rule order, each with its
        cheapest conditions (``RuleMatcher.gate``), worked out once per combination (a few dozen); and
        the least P(negative) with which a post that is no review passes any of their gates (None: it
        may pass one without any score; infinite: it never passes one).

        Why: a backtest asks five rules about a million posts, most of which are not negative enough for
        any of them; tested here, a post costs no call and no test per rule."""
        kind = (m.brand, m.language, m.source)
        found = self._by_kind.get(kind)
        if found is None:
            candidates = tuple((rule, matcher, window, *matcher.gate(m.language))
                               for rule, matcher, window in self._matchers if matcher.admits(*kind))
            thresholds = [c[3] for c in candidates if not c[4]]  # the rules a post that is no review can pass
            floor = None if None in thresholds else min((t for t in thresholds if t is not None), default=math.inf)
            found = self._by_kind[kind] = (floor, candidates)
        return found

    def replace_rules(self, rules: Iterable[Rule]) -> None:
        """Swap the rule set (hot reload); state of rules that still exist is kept."""
        self._set_rules(rules)
        names = {r.name for r in self.rules}
        for key in [k for k in self._series if k[0] not in names]:
            del self._series[key]

    def seed_last_fired(self, rule: str, group: str, when: datetime) -> None:
        """Restore realert state after a restart (from stored signals)."""
        key = (rule, group)
        if key not in self._last_fired or self._last_fired[key] < when:
            self._last_fired[key] = when

    def process(self, sm: StoredMention, *, emit: bool = True, follow_ups: bool = False) -> list[Signal]:
        """The signals this post fires.

        With ``follow_ups``, a firing that ``realert`` holds back comes back as a follow-up signal
        (the 9th post of a burst that fired at 8): its posts join the incident of its group, if
        there is one, and it never opens one nor calls anyone (``escalation.grouping``). A post
        that does not fire (a burst that has died down) is no follow-up: it is not part of the story.
        """
        m = sm.mention
        when = m.created_at
        for by in self._first_seen_by:
            group = m.brand if by == "brand" else group_key_by(by, m)
            first = self._first_seen.get(group)
            if first is None or when < first:
                self._first_seen[group] = when
        signals: list[Signal] = []
        negative = sm.sentiment.negative if sm.sentiment is not None else None
        found = self._by_kind.get((m.brand, m.language, m.source))
        floor, candidates = found if found is not None else self._candidates(m)
        if floor is not None and m.review is None and (negative is None or negative < floor):
            return signals  # not negative enough for any rule it could match (``_candidates``)
        for rule, matcher, window, threshold, needs_review, reach, engagement in candidates:
            # The gate (``RuleMatcher.gate``): failing it, ``test`` would say no too; passing it, what is
            # left to test is ``test_rest``.
            if threshold is not None and (negative is None or negative < threshold):
                continue
            if (needs_review and m.review is None) or m.author_reach < reach or m.engagement < engagement:
                continue
            words = matcher.test_rest(sm)
            if words is None:
                continue
            group = group_key_by(rule.group_by, m)
            if not window:
                signal = self._fire(rule, group, when, partial(_post_why, sm, matcher, words), (sm.id,), "mention",
                                    emit)
            else:
                signal = self._window(rule, group, sm, emit)
            if signal is not None and (follow_ups or not signal.follow_up):
                signals.append(signal)
        return signals

    def _window(self, rule: Rule, group: str, sm: StoredMention, emit: bool) -> Signal | None:
        now = sm.mention.created_at
        series = self._series[(rule.name, group)]
        series.add(now, sm.id)
        negative = rule.when.negative_above is not None
        brand = sm.mention.brand
        if rule.frequency is not None:
            f = rule.frequency
            series.prune(now - f.within)
            # Pruned: nothing is older than the window, so it starts at the first post (one bisection, not four).
            n = bisect.bisect_right(series.times, now)
            if n < f.count:
                return None
            first = series.times[0]
            ids = tuple(series.ids) if n == len(series.ids) else tuple(itertools.islice(series.ids, n))
            return self._fire(rule, group, now, lambda: Reason("burst", brand=brand, negative=negative, count=n,
                                                              span=now - first, threshold=f.count, within=f.within),
                              ids, "window", emit)
        assert rule.spike is not None
        s = rule.spike
        series.prune(now - s.current - s.reference)
        first = self._first_seen.get(group, now)
        if now - first < s.warmup:
            return None
        current = series.count_between(now - s.current, now)
        if current < s.min_count:
            return None
        reference = series.count_between(now - s.current - s.reference, now - s.current)
        # Rate per current-window length in the reference period; at least one post so a
        # quiet baseline does not make every small bump an infinite spike.
        usual = max(reference * (s.current / s.reference), 1.0)
        ratio = current / usual
        if ratio < s.factor:
            return None
        ids = series.ids_between(now - s.current, now)
        return self._fire(rule, group, now, lambda: Reason("spike", brand=brand, negative=negative, count=current,
                                                          within=s.current, ratio=ratio, usual=usual),
                          ids, "window", emit)

    def _fire(self, rule: Rule, group: str, when: datetime, why: Callable[[], Reason], ids: tuple[int, ...],
              kind: str, emit: bool) -> Signal | None:
        """The signal of a firing, a follow-up inside the realert pause, or None.

        ``why`` makes the reason only for a signal that opens or joins an incident: a follow-up (each
        further post of a burst) carries none. Nobody reads it (no ``signals`` row, no message: its posts
        only join the open incident), and building and wording one for each repeat cost a backtest of the
        1M-post bench more than half of its time.
        """
        key = (rule.name, group)
        last = self._last_fired.get(key)
        if last is not None and rule.realert > _NO_PAUSE and when - last < rule.realert:
            if not emit:
                return None
            self.suppressed[rule.name] += 1
            return Signal(rule=rule.name, severity=rule.severity, brand=group.split("|", 1)[0], group_key=group,
                          reason="", fired_at=when, mention_ids=ids, kind=kind, group_by=rule.group_by,
                          follow_up=True)
        if kind == "window" and last is not None and when <= last:
            return None
        self._last_fired[key] = when
        if not emit:
            return None
        reason = why()
        return Signal(rule=rule.name, severity=rule.severity, brand=group.split("|", 1)[0], group_key=group,
                      reason=english(reason), fired_at=when, mention_ids=ids, kind=kind, group_by=rule.group_by,
                      detail=reason)

