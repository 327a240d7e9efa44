"""Rule regular expressions, on a linear-time engine (RE2).

Python's ``re`` backtracks: ``(a+)+$`` against one ordinary post ending in "!!"
takes longer than the age of the universe, and a rule file is edited by hand.
RE2 (``google-re2``) matches in time linear in the text whatever the pattern,
and refuses at load time the few constructs that need backtracking
(look-around, back-references, atomic groups). ``compile_rule_regex`` is the
one place that compiles a rule's pattern: the rule schema calls it to refuse a
bad one with the construct named, the matcher calls it to run one.

RE2's ``\\w``, ``\\d``, ``\\s`` and ``\\b`` are ASCII; rules read Dutch and French, so
the classes are rewritten to their Unicode versions (``arnaqu\\w+`` matches "arnaqué"
as it did with ``re``), and so is a ``\\b`` at either end of the pattern (``\\barnaqué\\b``).
A ``\\b`` in the middle stays RE2's ASCII word boundary: for whole words with accents,
``keywords:`` is the tool (README, "Rules").
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Protocol

import re2

from monitor.i18n import N_, Problem, Words

# Largest compiled program RE2 may build for one pattern (``a{1000}{1000}`` is refused, not built).
MAX_PROGRAM_BYTES = 8 << 20

# Outside a character class: a whole class. Inside one: its members.
_UNICODE_CLASSES = {
    "w": (r"[\pL\pN_]", r"\pL\pN_"),
    "W": (r"[^\pL\pN_]", None),
    "d": (r"\p{Nd}", r"\p{Nd}"),
    "D": (r"\P{Nd}", None),
    "s": (r"[\s\p{Z}\x{85}]", r"\s\p{Z}\x{85}"),
    "S": (r"[^\s\p{Z}\x{85}]", None),
}

# RE2's error text -> the construct in words and what to write instead.
_REFUSALS: tuple[tuple[str, str], ...] = (
    ("(?<=", N_("a look-behind '(?<=...)' is not supported (rules run on a linear-time engine); match the text "
                "itself instead")),
    ("(?<!", N_("a negative look-behind '(?<!...)' is not supported (rules run on a linear-time engine); use "
                "'exclude: keywords:' to leave posts out")),
    ("(?=", N_("a look-ahead '(?=...)' is not supported (rules run on a linear-time engine); match the text "
               "itself instead")),
    ("(?!", N_("a negative look-ahead '(?!...)' is not supported (rules run on a linear-time engine); use "
               "'exclude: keywords:' to leave posts out")),
    ("(?>", N_("an atomic group '(?>...)' is not supported (rules run on a linear-time engine); a plain group "
               "'(...)' does the same here")),
    ("(?P=", N_("a back-reference '(?P=name)' is not supported (rules run on a linear-time engine)")),
)


class _Matcher(Protocol):
    def search(self, text: str) -> object: ...


def _unicode_classes(pattern: str) -> str:
    r"""``\w``, ``\d``, ``\s`` (and their negations) as Unicode classes, as Python's ``re`` reads them."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "b" and not in_class and i in (0, len(pattern) - 2):
                # At either end, a word boundary may take the neighbouring character: only whether the rule
                # matches is used, never the matched text. In the middle RE2's ASCII boundary stays.
                out.append(r"(?:^|[^\pL\pN_])" if i == 0 else r"(?:[^\pL\pN_]|$)")
                i += 2
                continue
            whole, member = _UNICODE_CLASSES.get(nxt, (None, None))
            if not in_class and whole is not None:
                out.append(whole)
            elif in_class and member is not None:
                out.append(member)
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            i += 1
            # A ']' right after '[' or '[^' is a member, not the end.
            for lead in ("^", "]"):
                if i < len(pattern) and pattern[i] == lead:
                    out.append(lead)
                    i += 1
            continue
        if ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


def _why(pattern: str, error: str) -> Words:
    """RE2's refusal of ``pattern`` as one sentence naming the construct."""
    for construct, words in _REFUSALS:
        if construct in pattern and ("perl operator" in error or "missing" in error or "invalid" in error):
            return Words(words)
    back_ref = re.search(r"\\[1-9]", pattern)
    if back_ref or "invalid escape sequence: \\1" in error:
        return Words.of(N_("a back-reference '{reference}' is not supported (rules run on a linear-time engine); "
                           "repeat the text itself instead"),
                        reference=back_ref.group(0) if back_ref else chr(92) + "1")
    if "missing ]" in error:
        return Words(N_("a '[' is never closed with ']'"))
    if "missing )" in error:
        return Words(N_("a '(' is never closed with ')'"))
    if "unexpected )" in error:
        return Words(N_("a ')' has no '(' before it"))
    if "argument for repetition operator" in error or "argument to repetition operator" in error:
        return Words(N_("a '*', '+', '?' or '{' has nothing before it to repeat; put a backslash before it (\\*) "
                        "to match the character itself"))
    if "bad repetition operator" in error or "nested repetition" in error:
        return Words.of(N_("'{operator}' repeats a repetition (possessive or doubled quantifier), which is not "
                           "supported"), operator=error.rsplit(": ", 1)[-1])
    if "repetition size" in error or "repetition count" in error:
        return Words(N_("a repetition count like {n} is too large (at most 1000)"))
    if "trailing \\" in error:
        return Words(N_("the pattern ends in a lone '\\'"))
    if "invalid escape" in error:
        return Words.of(N_("the escape {escape} is not known; write \\\\ for a backslash"),
                        escape=error.rsplit(": ", 1)[-1])
    if "invalid named capture group" in error or "invalid perl operator" in error:
        return Words.of(N_("the group {group} is not supported; use a plain group '(...)'"),
                        group=error.rsplit(": ", 1)[-1])
    if "too large" in error or "pattern too" in error:
        return Words(N_("the pattern is too large to run; split it into several shorter ones"))
    if "invalid character class" in error or "bad character class" in error:
        return Words.of(N_("the character class {text} is not valid"), text=error.rsplit(": ", 1)[-1])
    if "invalid UTF-8" in error:
        return Words(N_("the pattern is not valid text"))
    return Words.of(N_("it cannot be read ({reason})"), reason=error.split(":", 1)[0])


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False  # README: regexes are case-insensitive
    options.log_errors = False  # a refused pattern is reported by us, once, not also on stderr
    options.max_mem = MAX_PROGRAM_BYTES
    return options


@lru_cache(maxsize=1024)
def compile_rule_regex(pattern: str) -> _Matcher:
    """``pattern`` compiled to run in linear time, case-insensitive; ``ValueError`` saying why not."""
    if not pattern.strip():
        raise Problem(N_("an empty regular expression matches every post; remove it"))
    try:
        return re2.compile(_unicode_classes(pattern), _options())  # type: ignore[no-any-return]
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        raise Problem(N_("regular expression '{pattern}' cannot be used: {why}"), pattern=pattern,
                      why=_why(pattern, text)) from None
