"""Rules in plain words: one sentence per ``Rule``, for the people who edit them but do not read YAML.

Built from the same validated ``Rule`` the worker runs, so the sentence cannot
describe a condition the engine does not apply (or miss one it does).
"""

from __future__ import annotations

from monitor.detect.schema import KeywordList, Rule
from monitor.i18n import N_, Translator, translator
from monitor.notify.render import SEVERITIES
from monitor.sources.registry import display_name
from monitor.yamlconfig import ConfigError

GROUP_WORDS = {"brand": N_("the same brand"), "source": N_("the same brand on the same platform"),
               "conversation": N_("the same conversation")}


def _either(items: list[str], t: Translator, word: str = "or") -> str:
    if len(items) <= 1:
        return "".join(items)
    joined = t._("{items} or {last}") if word == "or" else t._("{items} and {last}")
    return joined.format(items=", ".join(items[:-1]), last=items[-1])


def _words(spec: KeywordList, t: Translator) -> str:
    if isinstance(spec, list):
        return _either([f"“{w}”" for w in spec], t)
    parts = [t._("{words} in {language}", words=_either([f"“{w}”" for w in words], t),
                 language=t.language_name(lang))
             if lang not in ("any", "*") else _either([f"“{w}”" for w in words], t)
             for lang, words in spec.items()]
    return "; ".join(parts)


def describe_rule(rule: Rule, t: Translator | None = None) -> str:
    """'Critical alert when a post in Dutch or French that the model finds more than 60% likely to be negative
    ...', in ``t``'s language."""
    t = t or translator()
    c = rule.when
    if c.languages:
        subject = t._("a post in {languages}", languages=_either([t.language_name(x) for x in c.languages], t))
    else:
        subject = t._("a post")
    if rule.brands:
        subject += " " + t._("about {brands}", brands=_either(rule.brands, t))
    if c.sources:
        subject += " " + t._("on {sources}", sources=_either([display_name(s) for s in c.sources], t))
    conditions: list[str] = []
    if c.negative_above == "default":
        conditions.append(t._("that the model finds likely to be negative (above the threshold calibrated for "
                              "its language)"))
    elif c.negative_above is not None:
        conditions.append(t._("that the model finds more than {share} likely to be negative",
                              share=t.percent(c.negative_above)))
    if c.keywords:
        conditions.append(t._("that mentions {words}", words=_words(c.keywords, t)))
    if c.regex:
        conditions.append(t._("whose text matches {words}", words=_words(c.regex, t)))
    if c.reach_at_least is not None:
        conditions.append(t._("from an author with at least {n} followers", n=t.number(c.reach_at_least)))
    if c.engagement_at_least is not None:
        conditions.append(t._("with at least {n} likes, replies and shares", n=t.number(c.engagement_at_least)))
    what = f"{subject} {_either(conditions, t, 'and')}" if conditions else subject
    severity = t._(SEVERITIES.get(rule.severity.value, rule.severity.value))
    if rule.frequency is not None:
        sentence = t._("{severity} alert when {count} or more posts like this arrive within {within}, each {what}",
                       severity=severity, count=rule.frequency.count, within=t.duration(rule.frequency.within),
                       what=what)
    elif rule.spike is not None:
        s = rule.spike
        sentence = t._("{severity} alert when posts like this ({what}) arrive {factor} times faster in the last "
                       "{current} than in the {reference} before, with at least {min} of them, once a brand has "
                       "{warmup} of history", severity=severity, what=what, factor=t.decimal(s.factor),
                       current=t.duration(s.current), reference=t.duration(s.reference), min=s.min_count,
                       warmup=t.duration(s.warmup))
    else:
        sentence = t._("{severity} alert when {what} comes in", severity=severity, what=what)
    extra: list[str] = []
    if c.exclude is not None and c.exclude.authors:
        extra.append(t._("posts by {authors} never count",
                         authors=_either([f"@{a.lstrip('@')}" for a in c.exclude.authors], t)))
    if c.exclude is not None and c.exclude.keywords:
        extra.append(t._("posts mentioning {words} are skipped",
                         words=_either([f"“{w}”" for w in c.exclude.keywords], t)))
    if rule.realert:
        extra.append(t._("after an alert, {group} stays quiet for {time}", group=t._(GROUP_WORDS[rule.group_by]),
                         time=t.duration(rule.realert)))
    text = sentence[:1].upper() + sentence[1:] + "."
    if extra:
        tail = "; ".join(extra)
        text += " " + tail[0].upper() + tail[1:] + "."
    if not rule.enabled:
        text += " " + t._("(Switched off.)")
    return text


YAML_HINT = N_("this is not valid YAML here: look for indentation that does not line up (spaces, not tabs), a "
               "missing ':' after a key, or a quote or bracket that is not closed")


def plain_error(error: ConfigError, t: Translator | None = None) -> str:
    """A configuration problem as the console shows it: the place as editors and ``monitor check`` write it
    ('rules/x.yaml:3:5') and the problem in ``t``'s language (its template, ``ConfigError.words``; the English
    message where it has none), the YAML parser's own jargon ("while parsing a block mapping ... expected <block
    end>") replaced by what to look for."""
    t = t or translator()
    if error.words is None and error.message.startswith(("YAML syntax error", "YAML error")):
        return ConfigError(error.file, error.line, error.column, error.key, t._(YAML_HINT)).text()
    return error.text(t)
