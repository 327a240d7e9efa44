"""Rules in plain words: one sentence per ``Rule``, for the people who edit them but do not read YAML.

Built from the same validated ``Rule`` the worker runs, so the sentence cannot
describe a condition the engine does not apply (or miss one it does).
"""

from __future__ import annotations

from monitor.detect.schema import KeywordList, Rule
from monitor.durations import format_duration
from monitor.sources.registry import display_name
from monitor.yamlconfig import ConfigError

LANGUAGE_NAMES = {"nl": "Dutch", "fr": "French", "en": "English", "de": "German", "es": "Spanish",
                  "it": "Italian", "pt": "Portuguese"}
GROUP_WORDS = {"brand": "the same brand", "source": "the same brand on the same platform",
               "conversation": "the same conversation"}


def _either(items: list[str], word: str = "or") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def _words(spec: KeywordList) -> str:
    if isinstance(spec, list):
        return _either([f"“{w}”" for w in spec])
    parts = [f"{_either([f'“{w}”' for w in words])} in {LANGUAGE_NAMES.get(lang, lang)}"
             if lang not in ("any", "*") else _either([f"“{w}”" for w in words])
             for lang, words in spec.items()]
    return "; ".join(parts)


def describe_rule(rule: Rule) -> str:
    """'Critical alert when a Dutch or French post that the model finds more than 60% likely to be negative ...'."""
    c = rule.when
    post = "post"
    if c.languages:
        post = f"{_either([LANGUAGE_NAMES.get(x, x) for x in c.languages])} post"
    article = "an" if post[0].lower() in "aeiou" else "a"
    subject = f"{article} {post}"
    if rule.brands:
        subject += f" about {_either(rule.brands)}"
    if c.sources:
        subject += f" on {_either([display_name(s) for s in c.sources])}"
    conditions: list[str] = []
    if c.negative_above == "default":
        conditions.append("that the model finds likely to be negative (above the threshold calibrated for its "
                          "language)")
    elif c.negative_above is not None:
        conditions.append(f"that the model finds more than {c.negative_above:.0%} likely to be negative")
    if c.keywords:
        conditions.append(f"that mentions {_words(c.keywords)}")
    if c.regex:
        conditions.append(f"whose text matches {_words(c.regex)}")
    if c.reach_at_least is not None:
        conditions.append(f"from an author with at least {c.reach_at_least:,} followers")
    if c.engagement_at_least is not None:
        conditions.append(f"with at least {c.engagement_at_least:,} likes, replies and shares")
    what = f"{subject} {_either(conditions, 'and')}" if conditions else subject
    severity = rule.severity.value.capitalize()
    if rule.frequency is not None:
        sentence = (f"{severity} alert when {rule.frequency.count} or more posts like this arrive within "
                    f"{format_duration(rule.frequency.within)}, each {what}")
    elif rule.spike is not None:
        s = rule.spike
        sentence = (f"{severity} alert when posts like this ({what}) arrive {s.factor:g} times faster in the last "
                    f"{format_duration(s.current)} than in the {format_duration(s.reference)} before, with at "
                    f"least {s.min_count} of them, once a brand has {format_duration(s.warmup)} of history")
    else:
        sentence = f"{severity} alert when {what} comes in"
    extra: list[str] = []
    if c.exclude is not None and c.exclude.authors:
        extra.append("Posts by " + _either([f"@{a.lstrip('@')}" for a in c.exclude.authors]) + " never count")
    if c.exclude is not None and c.exclude.keywords:
        extra.append("posts mentioning " + _either([f"“{w}”" for w in c.exclude.keywords]) + " are skipped")
    if rule.realert:
        extra.append(f"after an alert, {GROUP_WORDS[rule.group_by]} stays quiet for {format_duration(rule.realert)}")
    text = sentence + "."
    if extra:
        tail = "; ".join(extra)
        text += " " + tail[0].upper() + tail[1:] + "."
    if not rule.enabled:
        text += " (Switched off.)"
    return text


YAML_HINT = ("this is not valid YAML here: look for indentation that does not line up (spaces, not tabs), a "
             "missing ':' after a key, or a quote or bracket that is not closed")


def plain_error(error: ConfigError) -> str:
    """A configuration problem as the console shows it: the place, and the YAML parser's own jargon
    ("while parsing a block mapping ... expected <block end>") replaced by what to look for."""
    message = error.message
    if message.startswith(("YAML syntax error", "YAML error")):
        message = YAML_HINT
    return str(ConfigError(error.file, error.line, error.column, error.key, message))
