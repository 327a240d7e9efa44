"""Reads ``escalation.yaml``: who hears about an incident, when, and what they say.

The one module that knows that file. One pydantic model is the single source of
truth, shared by ``monitor check``, the JSON Schema editors use, and the
escalation engine; ``load_escalation`` is how every command and the worker open it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from monitor.clock import zone_named
from monitor.durations import PositiveDuration
from monitor.i18n import N_, LocaleName, Problem, Words
from monitor.models import Severity
from monitor.yamlconfig import ConfigError, parse

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WORKING_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")


# A policy's time-to-resolve target when its file gives none: an incident still open the next day has become
# a story of its own. Only the digest reads it (a target to report against, not a deadline that calls anyone).
DEFAULT_RESOLVE_WITHIN = dt.timedelta(days=1)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Responder(_Strict):
    name: str = Field(description="Full name, shown in alerts")
    slack: str | None = Field(default=None, pattern=r"^[UW][A-Z0-9]{2,}$", description="Slack user id, e.g. U024BE7LH")
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$",
                              description="Looked up in Slack when no id is given")
    role: Literal["responder", "pr_lead", "legal", "management", "on_call"] = "responder"
    locale: LocaleName | None = Field(
        default=None, description="Language of this person's direct messages and e-mails: 'nl_BE', 'fr_BE' or "
                                  "'en' (default: the file's top-level 'locale')")

    @model_validator(mode="after")
    def _reachable(self) -> Responder:
        if not self.slack and not self.email:
            raise Problem(N_("give a 'slack' user id or an 'email' so this person can be reached"))
        return self


_CHANNEL = re.compile(r"^#?[a-z0-9][a-z0-9._\-]{0,79}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


class BusinessHours(_Strict):
    days: list[Weekday] = Field(default_factory=lambda: list(WORKING_DAYS))
    start: dt.time = Field(default=dt.time(8, 0), description="Local opening time, e.g. '08:00'")
    end: dt.time = Field(default=dt.time(20, 0), description="Local closing time, e.g. '20:00'")
    holidays: list[dt.date] = Field(default_factory=list, description="Dates with no business hours")

    @model_validator(mode="after")
    def _order(self) -> BusinessHours:
        if self.end <= self.start:
            raise Problem(N_("'end' must be later than 'start' (overnight hours are not supported)"))
        return self


class Level(_Strict):
    notify: list[str] = Field(default_factory=list, description="Responder ids from 'responders'")
    channel: str | None = Field(default=None, description="Slack channel, e.g. '#reputation'")
    ack_within: PositiveDuration = Field(description="Time to acknowledge before the next level is called")

    @field_validator("channel")
    @classmethod
    def _channel_name(cls, value: str | None) -> str | None:
        """Slack channel names are lowercase, without spaces, at most 80 characters (or a channel id)."""
        if value is None or _CHANNEL.match(value) or _CHANNEL_ID.match(value):
            return value
        if any(ch.isspace() for ch in value.strip()):
            raise Problem(N_("a Slack channel name has no spaces: '{value}' cannot exist; write it as in Slack, "
                             "e.g. '{example}'"), value=value,
                          example="#" + "-".join(value.lstrip("#").lower().split()))
        raise Problem(N_("'{value}' is not a Slack channel name: lowercase letters, digits, '-' and '_' after the "
                         "'#' (e.g. '#reputation-alerts'), or a channel id like C024BE91L"), value=value)

    @model_validator(mode="after")
    def _someone(self) -> Level:
        if not self.notify and not self.channel:
            raise Problem(N_("a level must notify at least one person or a channel"))
        return self


class Match(_Strict):
    severity: list[Severity] | None = None
    brands: list[str] | None = None
    rules: list[str] | None = None

    def matches(self, severity: Severity, brand: str, rule: str) -> bool:
        return (
            (self.severity is None or severity in self.severity)
            and (self.brands is None or brand in self.brands)
            and (self.rules is None or rule in self.rules)
        )

    @property
    def specificity(self) -> int:
        return sum(x is not None for x in (self.severity, self.brands, self.rules))


class Policy(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    match: Match = Field(default_factory=Match, description="Which incidents use this policy; empty matches all")
    levels: list[Level] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=10, description="Run through the levels this many more times")
    after_hours: Literal["page", "wait"] = Field(
        default="wait", description="'page': notify at once, day or night; 'wait': deliver when business hours start"
    )
    on_call: list[str] = Field(default_factory=list, description="Who is paged instead of level 1 after hours")
    remind_every: PositiveDuration | None = Field(default=None,
                                                  description="Remind while acknowledged but not resolved")
    auto_resolve_after: PositiveDuration | None = Field(
        default=None, description="Resolve when quiet this long after acknowledgement")
    resolve_within: PositiveDuration = Field(
        default=DEFAULT_RESOLVE_WITHIN,
        description="Target time from opening to resolution, shown against each incident in the weekly digest "
                    "(default 1d); nothing escalates on it")
    email_fallback_after: PositiveDuration | None = Field(
        default=None, description="When Slack has not delivered a level call this long (refused or down), e-mail "
                                  "it to the level's people (their 'email:'); needs MONITOR_SMTP_HOST")


StatementLanguage = Literal["nl", "fr", "en"]


class Guideline(_Strict):
    match: Match = Field(default_factory=Match)
    holding_statement: str | dict[StatementLanguage, str] = Field(
        description="What to post first while facts are checked: one text, or one per language of the posts "
                    "({nl: ..., fr: ..., en: ...}); an alert shows the one in its post's language first")
    who_may_answer: str = Field(description="Who may answer in public")
    never_say: list[str] = Field(default_factory=list)

    @field_validator("holding_statement")
    @classmethod
    def _some_text(cls, value: str | dict[str, str]) -> str | dict[str, str]:
        if isinstance(value, dict) and not any(text.strip() for text in value.values()):
            raise Problem(N_("give the holding statement in at least one language (nl:, fr: or en:)"))
        return value

    @property
    def statements(self) -> tuple[tuple[str, str], ...]:
        """(language, text) in the file's order; empty for a single text meant for every language."""
        if isinstance(self.holding_statement, str):
            return ()
        return tuple((lang, text) for lang, text in self.holding_statement.items() if text.strip())

    @property
    def first_statement(self) -> str:
        """The one text shown where no language applies (and by readers of older payloads)."""
        if isinstance(self.holding_statement, str):
            return self.holding_statement
        return self.statements[0][1]

    def missing_languages(self, languages: list[str] | tuple[str, ...]) -> list[str]:
        """The brand's post languages this guideline has no holding statement for (none for a single text)."""
        if isinstance(self.holding_statement, str):
            return []
        have = {lang for lang, _ in self.statements}
        return [lang for lang in languages if lang not in have]


class Grouping(_Strict):
    window: PositiveDuration = Field(default=dt.timedelta(hours=6),
                             description="New signals for the same brand and rule join an open incident this recent")


class EscalationConfig(_Strict):
    timezone: str = Field(default="Europe/Brussels",
                          description="IANA time zone for business hours and for every time a person reads")
    locale: LocaleName = Field(default="en", description="Language of alerts, e-mails and the digest: 'nl_BE', "
                                                         "'fr_BE' or 'en'; a responder's own 'locale' overrides it")
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    grouping: Grouping = Field(default_factory=Grouping)
    responders: dict[str, Responder] = Field(min_length=1)
    policies: list[Policy] = Field(min_length=1)
    guidelines: list[Guideline] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone_named(value)
        return value

    @field_validator("responders")
    @classmethod
    def _ids(cls, value: dict[str, Responder]) -> dict[str, Responder]:
        for key in value:
            if not re.match(r"^[a-z0-9][a-z0-9_.-]*$", key):
                raise Problem(N_("responder id {key} must be lowercase letters, digits, '.', '-' or '_'"),
                              key=repr(key))
        return value

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> EscalationConfig:
        """Built outside ``yamlconfig.parse`` (tests, code), still refuse names that point nowhere;
        ``parse`` reports the same problems itself, each at its own line."""
        if not (info.context and "root" in info.context):
            problems = self.located_problems()
            if problems:
                raise ValueError("; ".join(str(message) for _, message in problems))
        return self

    def located_problems(self) -> list[tuple[tuple[int | str, ...], str | Words]]:
        """Names that point nowhere, each at the line that holds it (see ``yamlconfig.CrossChecked``)."""
        problems: list[tuple[tuple[int | str, ...], str | Words]] = []
        known = ", ".join(sorted(self.responders))
        seen: set[str] = set()
        for p_i, p in enumerate(self.policies):
            if p.name in seen:
                problems.append((("policies", p_i, "name"),
                                 Words.of(N_("policy name '{policy}' is used twice"), policy=p.name)))
            seen.add(p.name)
            for l_i, level in enumerate(p.levels):
                problems += [(("policies", p_i, "levels", l_i, "notify", w_i),
                              Words.of(N_("policy '{policy}' level {level} names unknown responder '{who}' (known "
                                          "responders: {known})"), policy=p.name, level=l_i + 1, who=who,
                                       known=known))
                             for w_i, who in enumerate(level.notify) if who not in self.responders]
            problems += [(("policies", p_i, "on_call", w_i),
                          Words.of(N_("policy '{policy}' on_call names unknown responder '{who}' (known responders: "
                                      "{known})"), policy=p.name, who=who, known=known))
                         for w_i, who in enumerate(p.on_call) if who not in self.responders]
        return problems

    def located_warnings(self) -> list[tuple[tuple[int | str, ...], str | Words]]:
        """Settings that load but will not do what they say (see ``yamlconfig.Warns``)."""
        warnings: list[tuple[tuple[int | str, ...], str | Words]] = []
        for p_i, p in enumerate(self.policies):
            if p.email_fallback_after is not None:
                for l_i, level in enumerate(p.levels):
                    if not any(self.responders[w].email for w in level.notify if w in self.responders):
                        reached: str | Words = ", ".join(level.notify) or Words(N_("only a channel"))
                        warnings.append((("policies", p_i, "email_fallback_after"), Words.of(
                            N_("policy '{policy}' level {level} ({who}) has nobody with an 'email:', so the e-mail "
                               "fallback cannot reach anyone there when Slack fails; give them an email"),
                            policy=p.name, level=l_i + 1, who=reached)))
            for w_i, who in enumerate(p.on_call):
                later = [l_i + 1 for l_i, level in enumerate(p.levels) if l_i > 0 and who in level.notify]
                if later:
                    warnings.append((("policies", p_i, "on_call", w_i), Words.of(
                        N_("'{who}' is on call for policy '{policy}' and also at level {levels}: after hours they are "
                           "called twice for one incident; take them out of one of the two"),
                        who=who, policy=p.name, levels=", ".join(map(str, later)))))
        return warnings

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def locale_of(self, responder_id: str) -> LocaleName:
        """The language one responder reads: their own ``locale``, else the file's."""
        person = self.responders.get(responder_id)
        return person.locale if person is not None and person.locale else self.locale

    def policy_for(self, severity: Severity, brand: str, rule: str) -> Policy:
        """The most specific matching policy; ties go to the one written first."""
        candidates = [p for p in self.policies if p.match.matches(severity, brand, rule)]
        if not candidates:
            return self.policies[-1]
        return max(candidates, key=lambda p: (p.match.specificity, -self.policies.index(p)))

    def statement_gaps(self, brand_languages: dict[str, list[str]]) -> list[str]:
        """One line per guideline that lacks a holding statement in a language a brand it covers is watched in.

        ``brand_languages``: each brand's post languages (``monitor.yaml``'s ``languages``). A guideline with one
        text for every language lacks none.
        """
        out = []
        for number, g in enumerate(self.guidelines, 1):
            brands = [b for b in brand_languages if g.match.brands is None or b in g.match.brands]
            for brand in brands:
                missing = g.missing_languages(brand_languages[brand])
                if missing:
                    match = g.match.model_dump(mode="json", exclude_none=True) or "matches all"
                    out.append(f"guideline {number} ({match}) has "
                               f"no holding statement in {', '.join(missing)} for {brand} (watched in "
                               f"{', '.join(brand_languages[brand])}): add {', '.join(m + ':' for m in missing)}")
        return out

    def guideline_for(self, severity: Severity, brand: str, rule: str) -> Guideline | None:
        candidates = [g for g in self.guidelines if g.match.matches(severity, brand, rule)]
        if not candidates:
            return None
        return max(candidates, key=lambda g: (g.match.specificity, -self.guidelines.index(g)))


def load_escalation(path: Path, warnings: list[ConfigError] | None = None) -> EscalationConfig:
    """Raises ``ConfigInvalid`` listing every problem with file, line and key; ``warnings`` receives what
    works but not as written (``EscalationConfig.located_warnings``)."""
    return parse(EscalationConfig, path, warnings)
