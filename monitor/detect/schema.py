"""The rule file format, as a pydantic model: the single source of truth.

``monitor schema`` writes the JSON Schema from these classes into
``rules/schema.json`` so editors can complete and underline keys; ``monitor
check`` validates with the same classes, so the editor and the worker never
disagree. Field descriptions are written for the PR team who read them as hints.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.detect.regex import compile_rule_regex
from monitor.durations import Duration, PositiveDuration
from monitor.i18n import N_, Problem
from monitor.langcodes import language_problem
from monitor.models import Severity

KeywordList = list[str] | dict[str, list[str]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_blank_word(words: list[str]) -> list[str]:
    if any(not w.strip() for w in words):
        raise Problem(N_("an empty keyword ('') would match almost every post; remove it"))
    return words


def _known_language(code: str, *, any_allowed: bool = False) -> None:
    problem = language_problem(code, any_allowed=any_allowed)
    if problem is not None:
        raise Problem(problem)


class Exclude(_Strict):
    authors: list[str] = Field(default_factory=list, description="Handles never alerted on (own accounts, known fans)")
    keywords: list[str] = Field(default_factory=list,
                                description="Skip posts containing any of these words (e.g. competitors' names)")

    _words = field_validator("keywords")(classmethod(lambda cls, v: _no_blank_word(v)))


class MentionConditions(_Strict):
    """All conditions given must hold for one post to match."""

    negative_above: Annotated[float, Field(ge=0, le=1)] | Literal["default"] | None = Field(
        default=None,
        description="Minimum probability that the post is negative (0 to 1), or 'default': the threshold "
                    "calibrated for the model in the post's language (see README, 'Sentiment')",
    )
    languages: list[str] | None = Field(default=None, description="Only posts in these languages, e.g. [nl, fr]")
    sources: list[str] | None = Field(
        default=None, description="Only posts from these platforms, e.g. [x, reddit]; monitor check names the others")
    reach_at_least: int | None = Field(default=None, ge=0, description="Author followers at least this")
    engagement_at_least: int | None = Field(default=None, ge=0, description="Likes + replies + shares at least this")
    rating_at_most: int | None = Field(
        default=None, ge=1, le=5,
        description="Only reviews of the business with at most this many stars (1-5); posts never match")
    keywords: KeywordList | None = Field(
        default=None,
        description="Whole words, any of which must appear; a list, or per language: {nl: [boycot], fr: [boycott]}",
    )
    regex: KeywordList | None = Field(default=None,
                                      description="Regular expressions (case-insensitive), any of which must match")
    exclude: Exclude | None = None

    @field_validator("negative_above", mode="before")
    @classmethod
    def _number_or_default(cls, value: object) -> object:
        """One line for a typo ('defualt'), not one per member of the union."""
        if isinstance(value, str) and value != "default":
            raise Problem(N_("expected a number from {low} to {high}, or 'default' (the threshold calibrated per "
                             "language), not {value}"), low=0, high=1, value=repr(value))
        return value

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: KeywordList | None) -> KeywordList | None:
        patterns = value if isinstance(value, list) else [p for ps in (value or {}).values() for p in ps]
        for pattern in patterns:
            compile_rule_regex(pattern)  # ValueError naming the construct RE2 cannot run
        return value

    @field_validator("languages", "sources")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise Problem(N_("an empty list would never match; remove the key instead"))
        return value

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: list[str] | None) -> list[str] | None:
        """A platform no source collects (``twitter``, ``tiktok``) would never match: say which ones exist."""
        from monitor.sources.registry import known_sources, suggest

        known = known_sources()
        unknown = [s for s in value or [] if s not in known]
        if unknown:
            named = ", ".join(repr(s) for s in unknown)
            hint = suggest(unknown[0])
            if hint:
                raise Problem(N_("unknown source {named} (did you mean {hint}?); known sources: {known}"),
                              named=named, hint=repr(hint), known=", ".join(known))
            raise Problem(N_("unknown source {named}; known sources: {known}"), named=named, known=", ".join(known))
        return value

    @field_validator("languages")
    @classmethod
    def _languages_known(cls, value: list[str] | None) -> list[str] | None:
        for code in value or []:
            _known_language(code)
        return value

    @field_validator("keywords", "regex")
    @classmethod
    def _words_usable(cls, value: KeywordList | None) -> KeywordList | None:
        if isinstance(value, dict):
            for language, words in value.items():
                _known_language(language, any_allowed=True)
                _no_blank_word(words)
        elif value is not None:
            _no_blank_word(value)
        return value

    @property
    def empty(self) -> bool:
        """No condition at all (``exclude`` alone only narrows): a single-post rule would fire on every post."""
        return all(getattr(self, name) is None for name in type(self).model_fields if name != "exclude")


class Frequency(_Strict):
    """Fire when at least ``count`` matching posts arrive within ``within``."""

    count: int = Field(ge=2, description="How many matching posts")
    within: PositiveDuration = Field(description="Time window, e.g. 1h")

    @field_validator("within")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise Problem(N_("the window must be longer than zero"))
        return value


class Spike(_Strict):
    """Fire when the current window holds ``factor`` times the usual rate of the reference window."""

    current: PositiveDuration = Field(description="Recent window, e.g. 30m")
    reference: PositiveDuration = Field(description="Baseline window before it, e.g. 24h")
    factor: float = Field(gt=1, description="How many times the usual rate, e.g. 3")
    min_count: int = Field(default=5, ge=1, description="Never fire below this many posts in the current window")
    warmup: Duration = Field(default=timedelta(days=7), description="Stay quiet until a brand has this much history")

    @model_validator(mode="after")
    def _windows(self) -> Spike:
        if self.current.total_seconds() <= 0:
            raise Problem(N_("'current' must be longer than zero"))
        if self.reference <= self.current:
            raise Problem(N_("'reference' must be longer than 'current' (it is the usual rate to compare with)"))
        return self


class Rule(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=80,
                      description="Short unique id: lowercase letters, digits, - and _")
    description: str = Field(default="", description="What this rule is for, in plain words")
    brands: list[str] = Field(default_factory=list, description="Brands this rule watches; empty means all")
    severity: Severity = Field(description="info, warning or critical")
    enabled: bool = True
    when: MentionConditions = Field(default_factory=MentionConditions, description="Conditions on each post")
    frequency: Frequency | None = None
    spike: Spike | None = None
    group_by: Literal["brand", "source", "conversation"] = Field(
        default="brand", description="Count and suppress repeats per brand, per source or per conversation"
    )
    realert: Duration = Field(default=timedelta(0),
                              description="After firing, stay quiet this long for the same group (e.g. 2h)")

    @model_validator(mode="after")
    def _one_window(self) -> Rule:
        if self.frequency is not None and self.spike is not None:
            raise Problem(N_("a rule can have 'frequency' or 'spike', not both; split it into two rules"))
        if self.enabled and self.when.empty and self.frequency is None and self.spike is None:
            raise Problem(N_("rule '{name}' has no condition under 'when:', so it would alert on every post, "
                             "positive ones too; add a condition (e.g. negative_above: 0.6)"), name=self.name)
        return self


class RuleFile(_Strict):
    rules: list[Rule] = Field(min_length=1, description="One or more rules")
