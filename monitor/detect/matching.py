"""Per-post conditions: does one mention match a rule, and why (as facts, written out by ``monitor.reasons``)?"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from monitor.classify.thresholds import NegativeThresholds, load_thresholds
from monitor.detect.regex import compile_rule_regex
from monitor.detect.schema import KeywordList, Rule
from monitor.i18n import Translator, translator
from monitor.models import Mention, StoredMention
from monitor.reasons import Fact, Reason, render_fact


@lru_cache(maxsize=4096)
def _word_pattern(word: str) -> re.Pattern[str]:
    # Whole-word, case-insensitive; \w is Unicode-aware so "oplichting" and "arnaqué" behave.
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)


@lru_cache(maxsize=1024)
def _any_word_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """One search for "any of these whole words": the same answer as a search per word, in one pass."""
    return re.compile(rf"(?<!\w)(?:{'|'.join(re.escape(w) for w in words)})(?!\w)", re.IGNORECASE)


def _for_language(spec: KeywordList, language: str | None) -> list[str]:
    if isinstance(spec, list):
        return spec
    return [w for lang, words in spec.items() if lang in ("any", "*", language) for w in words]


@dataclass(frozen=True, slots=True)
class Match:
    details: tuple[Fact, ...]  # what matched, in the order the rule's conditions are checked

    def words(self, t: Translator) -> tuple[str, ...]:
        """The facts as short phrases in ``t``'s language ('negatief (93% zeker)')."""
        return tuple(render_fact(f, t) for f in self.details)

    @property
    def facts(self) -> tuple[str, ...]:
        """The facts in English, as the stored reason says them."""
        return self.words(translator("en"))


def negative_threshold(rule: Rule, language: str | None, thresholds: NegativeThresholds | None = None) -> float:
    """The P(negative) a post in ``language`` needs for ``rule``: its number, or for ``default`` the
    threshold calibrated for the model in that language (``thresholds``; the shipped head's when None)."""
    value = rule.when.negative_above
    if value == "default":
        return (thresholds or load_thresholds()).for_language(language)
    return float(value) if value is not None else 0.0


def match_mention(rule: Rule, sm: StoredMention, thresholds: NegativeThresholds | None = None) -> Match | None:
    """The facts that made ``sm`` match ``rule``, or None. Pure function (``thresholds``: what
    ``negative_above: default`` means, per language, for the model that scored ``sm``)."""
    return RuleMatcher(rule, thresholds).match(sm)


class RuleMatcher:
    """One rule's per-post conditions, prepared once for a stream of posts (``RuleEngine`` keeps one per rule).

    Why: a backtest asks every rule about a million posts, and preparing the
    conditions for each post (the excluded handles case-folded into a set, the
    threshold of the post's language looked up, the word list of its language
    filtered) cost more than testing them. Here that is done once per rule, or
    once per rule and language. The cheap conditions on numbers and names are
    tested before the exclusions and the word searches; every condition must
    hold, so the order changes nothing but the time, and the facts keep the
    order in which they are written below.
    """

    __slots__ = ("_authors", "_brands", "_conditions", "_excluded", "_keywords", "_regexes", "_thresholds",
                 "rule", "thresholds")

    def __init__(self, rule: Rule, thresholds: NegativeThresholds | None = None) -> None:
        self.rule = rule
        self.thresholds = thresholds
        c = rule.when
        self._conditions = c
        self._brands = frozenset(rule.brands) if rule.brands else None
        self._authors = frozenset(a.lstrip("@").casefold() for a in c.exclude.authors) if c.exclude else frozenset()
        self._excluded = _any_word_pattern(tuple(c.exclude.keywords)) if c.exclude and c.exclude.keywords else None
        # Per language (compiled on first use: a pattern that cannot compile fails where it always did).
        self._thresholds: dict[str | None, float] = {}
        self._keywords: dict[str | None, tuple[re.Pattern[str] | None, tuple[str, ...]]] = {}
        self._regexes: dict[str | None, list[tuple[str, Any]]] = {}

    def _threshold(self, language: str | None) -> float:
        """The threshold for ``language``, worked out on its first post and kept."""
        value = self._thresholds[language] = negative_threshold(self.rule, language, self.thresholds)
        return value

    def admits(self, brand: str, language: str | None, source: str) -> bool:
        """The conditions on the post's brand, language and source alone (``RuleEngine`` asks once per
        combination and keeps the answer: a post of another brand never reaches ``test``)."""
        c = self._conditions
        return ((self._brands is None or brand in self._brands)
                and (c.languages is None or (language or "") in c.languages)
                and (c.sources is None or source in c.sources))

    def gate(self, language: str | None) -> tuple[float | None, bool, int, int]:
        """The cheapest conditions left once ``admits`` holds, for a post in ``language``: the P(negative)
        it needs (None: any, scored or not), whether it must be a review, the reach and the engagement it
        needs (0: any; the store's counts are never negative). ``RuleEngine`` tests these inline and calls
        ``test`` only for a post that passes them; ``test`` tests them again, so a post that fails one
        never matches either way."""
        c = self._conditions
        threshold = None
        if c.negative_above is not None:
            threshold = self._thresholds.get(language)
            if threshold is None:
                threshold = self._threshold(language)
        return (threshold, c.rating_at_most is not None, c.reach_at_least or 0, c.engagement_at_least or 0)

    def match(self, sm: StoredMention) -> Match | None:
        """The facts that made ``sm`` match the rule, or None."""
        found = self.test(sm)
        return None if found is None else self.facts(sm, found)

    def test(self, sm: StoredMention) -> tuple[list[str], list[str]] | None:
        """Whether ``sm`` matches: None if not, else the keywords and patterns it was found by (``facts``
        words them; a window rule never reads them, and a backtest tests half a million posts against one)."""
        m = sm.mention
        if self._brands is not None and m.brand not in self._brands:
            return None
        c = self._conditions
        if c.languages is not None and (m.language or "") not in c.languages:
            return None
        if c.sources is not None and m.source not in c.sources:
            return None
        if c.negative_above is not None:
            threshold = self._thresholds.get(m.language)
            if threshold is None:
                threshold = self._threshold(m.language)
            if sm.sentiment is None or sm.sentiment.negative < threshold:
                return None
        if c.reach_at_least is not None and m.author_reach < c.reach_at_least:
            return None
        if c.engagement_at_least is not None and m.engagement < c.engagement_at_least:
            return None
        return self.test_rest(sm)

    def test_rest(self, sm: StoredMention) -> tuple[list[str], list[str]] | None:
        """``test`` for a post known to pass ``admits`` and ``gate`` (``RuleEngine`` asks only such posts):
        the conditions those leave (the stars, the exclusions, the words and the patterns)."""
        m = sm.mention
        c = self._conditions
        if c.rating_at_most is not None and (m.review is None or m.review.rating > c.rating_at_most):
            return None
        if self._authors and m.author_handle and m.author_handle.lstrip("@").casefold() in self._authors:
            return None
        listed: tuple[str, ...] = ()
        if c.keywords is not None:
            # Before the excluded words: a post rarely names one, so most need one search, not two.
            words = self._keywords.get(m.language)
            if words is None:
                listed = tuple(_for_language(c.keywords, m.language))
                words = self._keywords[m.language] = (_any_word_pattern(listed) if listed else None, listed)
            if words[0] is None or words[0].search(m.text) is None:
                return None
            listed = words[1]
        if self._excluded is not None and self._excluded.search(m.text) is not None:
            return None
        hits = [w for w in listed if _word_pattern(w).search(m.text)]
        found: list[str] = []
        if c.regex is not None:
            patterns = self._regexes.get(m.language)
            if patterns is None:
                patterns = self._regexes[m.language] = [(p, compile_rule_regex(p))
                                                        for p in _for_language(c.regex, m.language)]
            found = [p for p, compiled in patterns if compiled.search(m.text)]
            if not found:
                return None
        return hits, found

    def facts(self, sm: StoredMention, found: tuple[list[str], list[str]]) -> Match:
        """The facts of a post that ``test`` found matching (``found``: its answer)."""
        m = sm.mention
        c = self._conditions
        hits, patterns = found
        facts: list[Fact] = []
        if c.negative_above is not None:
            assert sm.sentiment is not None
            facts.append(Fact("negative", sm.sentiment.negative))
        if c.rating_at_most is not None:
            assert m.review is not None
            facts.append(Fact("stars", m.review.rating, edited=m.review.edited_at is not None))
        if c.reach_at_least is not None:
            # A review's reach is its platform's weight (README: Reviews), not the reviewer's followers.
            facts.append(Fact("review_reach", m.author_reach, source=m.source) if m.review is not None
                         else Fact("followers", m.author_reach))
        if c.engagement_at_least is not None:
            facts.append(Fact("interactions", m.engagement))
        if c.keywords is not None:
            facts.append(Fact("keywords", words=tuple(hits[:3])))
        if c.regex is not None:
            facts.append(Fact("regex", words=(patterns[0],)))
        return Match(tuple(facts))


def group_key(rule: Rule, sm: StoredMention) -> str:
    return group_key_by(rule.group_by, sm.mention)


def group_key_by(group_by: str, m: Mention) -> str:
    """The group of post ``m`` for a rule grouping by ``group_by`` (``group_key``)."""
    if group_by == "source":
        return f"{m.brand}|{m.source}"
    if group_by == "conversation":
        return f"{m.brand}|{m.source}|{m.conversation_id or m.source_id}"
    return m.brand


def post_reason(sm: StoredMention, match: Match) -> Reason:
    """Why one post fired: 'Post by @anna on YouTube: …', the handle exactly as it is written."""
    m = sm.mention
    return Reason("post", who=f"@{m.author_handle}" if m.author_handle else None, source=m.source,
                  review=m.review is not None, facts=match.details)
