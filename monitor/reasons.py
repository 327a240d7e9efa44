"""Why a rule fired, as facts (kinds and numbers), written out in the reader's language at the edge.

The rule engine used to store its reason as an English sentence ("Post by @anna
on X: negative (87% sure)"), so a Dutch alert said "negative" and "87%" the
English way. Now the engine records a :class:`Reason`: what kind of firing it was
and its facts (the share, the counts, the durations, the platform), stored as
JSON beside the sentence (``signals.reason_data``, ``incidents.reason_data``,
the outbox payload's ``reason_data``). Every reader renders it with one
function, :func:`render`, in their own language with Babel's numbers, percentages
and durations: the Slack card, the e-mail, the digest and the console.

The English sentence is still stored (written by the same :func:`render`): it is
what the history search, ``monitor backtest``, the logs and the privacy
rewrites read, and what a row from before this release (text only) shows.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Literal, cast, get_args

from monitor.i18n import Translator, translator

FactKind = Literal["negative", "stars", "review_reach", "followers", "interactions", "keywords", "regex"]
ReasonKind = Literal["post", "burst", "spike"]
FORMAT = 1  # the JSON's version: a reader meeting a newer one falls back to the stored sentence


class UnknownReason(ValueError):
    """A stored payload this version cannot read (a newer release wrote it): the stored sentence is shown."""


@dataclass(frozen=True, slots=True)
class Fact:
    """One reason a post matched: ``kind`` and its value.

    ``value`` is the number of the fact (the negative share 0..1, the stars, the reach,
    the followers, the interactions); ``words`` the keywords found or the regex matched;
    ``edited`` a review edited since; ``source`` the platform of a review.
    """

    kind: FactKind
    value: float = 0.0
    words: tuple[str, ...] = ()
    edited: bool = False
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.value:
            out["value"] = self.value
        if self.words:
            out["words"] = list(self.words)
        if self.edited:
            out["edited"] = True
        if self.source is not None:
            out["source"] = self.source
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fact:
        kind = data.get("kind")
        if kind not in get_args(FactKind):
            raise UnknownReason(f"unknown fact {kind!r}")
        source = data.get("source")
        return cls(kind=cast(FactKind, kind), value=float(data.get("value") or 0),
                   words=tuple(str(w) for w in data.get("words") or ()),
                   edited=bool(data.get("edited")), source=str(source) if source is not None else None)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a rule fired.

    ``post``: one post matched; ``who`` is its author as written ("@anna"; None: no handle),
    ``source`` its platform, ``review`` whether it is a review, ``facts`` what matched.
    ``burst`` (``frequency``): ``count`` posts in ``span`` (None: under a minute), where
    ``threshold`` in ``within`` is the alert level. ``spike``: ``count`` posts in ``within``,
    ``ratio`` times the usual rate of ``usual`` posts per such window. ``negative``: the
    rule counts negative posts (else matching ones), about ``brand``.
    """

    kind: ReasonKind
    who: str | None = None
    source: str | None = None
    review: bool = False
    facts: tuple[Fact, ...] = ()
    brand: str = ""
    negative: bool = False
    count: int = 0
    span: timedelta | None = None
    threshold: int = 0
    within: timedelta | None = None
    ratio: float = 0.0
    usual: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": FORMAT, "kind": self.kind}
        if self.kind == "post":
            out.update(who=self.who, source=self.source, review=self.review, facts=[f.to_json() for f in self.facts])
            return out
        out.update(brand=self.brand, negative=self.negative, count=self.count,
                   within_s=self.within.total_seconds() if self.within is not None else None)
        if self.kind == "burst":
            out.update(span_s=self.span.total_seconds() if self.span is not None else None, threshold=self.threshold)
        else:
            out.update(ratio=self.ratio, usual=self.usual)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reason:
        """Read a stored reason; one this version cannot read is an :class:`UnknownReason`."""
        kind = data.get("kind")
        if data.get("v") != FORMAT or kind not in get_args(ReasonKind):
            raise UnknownReason(f"reason format {data.get('v')!r}, kind {kind!r}")
        try:
            if kind == "post":
                who, source = data.get("who"), data.get("source")
                return cls(kind="post", who=str(who) if who else None, source=str(source) if source else None,
                           review=bool(data.get("review")),
                           facts=tuple(Fact.from_json(f) for f in data.get("facts") or () if isinstance(f, Mapping)))
            within = data.get("within_s")
            span = data.get("span_s")
            return cls(kind=cast(ReasonKind, kind), brand=str(data.get("brand") or ""),
                       negative=bool(data.get("negative")), count=int(data.get("count") or 0),
                       within=timedelta(seconds=float(within)) if within is not None else None,
                       span=timedelta(seconds=float(span)) if span is not None else None,
                       threshold=int(data.get("threshold") or 0), ratio=float(data.get("ratio") or 0),
                       usual=float(data.get("usual") or 0))
        except (TypeError, ValueError) as exc:
            raise UnknownReason(f"unreadable reason: {exc}") from None

    def rewrite_who(self, rewrite: Callable[[str], str | None]) -> Reason:
        """The same reason with its author's name passed through ``rewrite`` (privacy: erased, masked)."""
        if self.who is None:
            return self
        return replace(self, who=rewrite(self.who) or None)


def load(data: Any) -> Reason | None:
    """A stored ``reason_data`` (a JSON object, or its text on a database without JSON) as a Reason; None when
    there is none or it cannot be read (a row from a newer release): the caller shows the stored sentence."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, Mapping):
        return None
    try:
        return Reason.from_json(data)
    except UnknownReason:
        return None


def rewrite_json(data: Any, rewrite: Callable[[str], str | None]) -> dict[str, Any] | None:
    """A stored ``reason_data`` with its author's name rewritten; an unreadable one is dropped (None), so a
    privacy rewrite never leaves a name it could not see behind: the rewritten sentence is shown instead."""
    reason = load(data)
    return reason.rewrite_who(rewrite).to_json() if reason is not None else None


# --- words ------------------------------------------------------------------------------------------

def _platform(source: str | None) -> str:
    from monitor.sources.registry import display_name  # the registry imports the sources: only when rendering

    return display_name(source) if source else "?"


def render_fact(fact: Fact, t: Translator) -> str:
    """One fact as a short phrase: 'negatief (93% zeker)'."""
    n = round(fact.value)
    if fact.kind == "negative":
        return t._("negative ({share} sure)", share=t.percent(fact.value))
    if fact.kind == "stars":
        text = t.ngettext("{n}-star review", "{n}-star review", n)
        return t._("{review} (edited)", review=text) if fact.edited else text
    if fact.kind == "review_reach":
        return t._("review on {platform} (reach {reach})", platform=_platform(fact.source), reach=t.number(n))
    if fact.kind == "followers":
        return t.ngettext("author has {n} follower", "author has {n} followers", n)
    if fact.kind == "interactions":
        return t.ngettext("{n} interaction", "{n} interactions", n)
    if fact.kind == "keywords":
        return t._("mentions {words}", words=", ".join(f"'{w}'" for w in fact.words))
    return t._("matches /{pattern}/", pattern=fact.words[0] if fact.words else "")


def _posts(reason: Reason, t: Translator) -> str:
    if reason.negative:
        return t.ngettext("{n} negative post about {brand}", "{n} negative posts about {brand}", reason.count,
                          brand=reason.brand)
    return t.ngettext("{n} matching post about {brand}", "{n} matching posts about {brand}", reason.count,
                      brand=reason.brand)


def render(reason: Reason, t: Translator) -> str:
    """The reason in ``t``'s language: 'Bericht van @anna op X: negatief (87% zeker)'."""
    if reason.kind == "post":
        who = reason.who or t._("someone")
        platform = _platform(reason.source)
        post = (t._("Review by {who} on {platform}", who=who, platform=platform) if reason.review
                else t._("Post by {who} on {platform}", who=who, platform=platform))
        if not reason.facts:
            return t._("{post} matched", post=post)
        facts = [render_fact(f, t) for f in reason.facts]
        joined = functools.reduce(lambda a, b: t._("{first}; {then}", first=a, then=b), facts)  # French: ' ; '
        return t._("{post}: {facts}", post=post, facts=joined)
    if reason.kind == "burst":
        span = (t.duration(reason.span) if reason.span is not None and reason.span >= timedelta(minutes=1)
                else t._("a minute"))
        return t._("{posts} in {span} (alert level: {threshold} in {within})", posts=_posts(reason, t), span=span,
                   threshold=t.number(reason.threshold), within=t.duration(reason.within))
    return t._("{posts} in {within}, {ratio}× the usual rate (usually about {usual})", posts=_posts(reason, t),
               within=t.duration(reason.within), ratio=t.number(reason.ratio), usual=t.number(reason.usual, 1))


def english(reason: Reason) -> str:
    """The stored sentence: what search, backtest, logs and readers of a text-only row see."""
    return render(reason, translator("en"))


def text(data: Any, stored: str, t: Translator) -> str:
    """What a reader sees for a stored reason: its facts in their language, or the stored sentence
    when the row has none (written before reasons were stored as facts, or by a newer release)."""
    reason = data if isinstance(data, Reason) else load(data)
    return render(reason, t) if reason is not None else stored
