"""Per-post conditions: does one mention match a rule, and why (as facts, written out by ``monitor.reasons``)?"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from monitor.classify.thresholds import NegativeThresholds, load_thresholds
from monitor.detect.regex import compile_rule_regex
from monitor.detect.schema import KeywordList, MentionConditions, Rule
from monitor.i18n import Translator, translator
from monitor.models import StoredMention
from monitor.reasons import Fact, Reason, render_fact


@lru_cache(maxsize=4096)
def _word_pattern(word: str) -> re.Pattern[str]:
    # Whole-word, case-insensitive; \w is Unicode-aware so "oplichting" and "arnaqué" behave.
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)


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
    m = sm.mention
    if rule.brands and m.brand not in rule.brands:
        return None
    c: MentionConditions = rule.when
    facts: list[Fact] = []
    if c.exclude is not None:
        if m.author_handle and m.author_handle.lstrip("@").casefold() in {
            a.lstrip("@").casefold() for a in c.exclude.authors
        }:
            return None
        if any(_word_pattern(w).search(m.text) for w in c.exclude.keywords):
            return None
    if c.languages is not None and (m.language or "") not in c.languages:
        return None
    if c.sources is not None and m.source not in c.sources:
        return None
    if c.negative_above is not None:
        if sm.sentiment is None or sm.sentiment.negative < negative_threshold(rule, m.language, thresholds):
            return None
        facts.append(Fact("negative", sm.sentiment.negative))
    if c.rating_at_most is not None:
        if m.review is None or m.review.rating > c.rating_at_most:
            return None
        facts.append(Fact("stars", m.review.rating, edited=m.review.edited_at is not None))
    if c.reach_at_least is not None:
        if m.author_reach < c.reach_at_least:
            return None
        # A review's reach is its platform's weight (README: Reviews), not the reviewer's followers.
        facts.append(Fact("review_reach", m.author_reach, source=m.source) if m.review is not None
                     else Fact("followers", m.author_reach))
    if c.engagement_at_least is not None:
        if m.engagement < c.engagement_at_least:
            return None
        facts.append(Fact("interactions", m.engagement))
    if c.keywords is not None:
        hits = [w for w in _for_language(c.keywords, m.language) if _word_pattern(w).search(m.text)]
        if not hits:
            return None
        facts.append(Fact("keywords", words=tuple(hits[:3])))
    if c.regex is not None:
        found = [p for p in _for_language(c.regex, m.language) if compile_rule_regex(p).search(m.text)]
        if not found:
            return None
        facts.append(Fact("regex", words=(found[0],)))
    return Match(tuple(facts))


def group_key(rule: Rule, sm: StoredMention) -> str:
    m = sm.mention
    if rule.group_by == "source":
        return f"{m.brand}|{m.source}"
    if rule.group_by == "conversation":
        return f"{m.brand}|{m.source}|{m.conversation_id or m.source_id}"
    return m.brand


def post_reason(sm: StoredMention, match: Match) -> Reason:
    """Why one post fired: 'Post by @anna on YouTube: …', the handle exactly as it is written."""
    m = sm.mention
    return Reason("post", who=f"@{m.author_handle}" if m.author_handle else None, source=m.source,
                  review=m.review is not None, facts=match.details)
