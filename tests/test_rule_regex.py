"""Rule regexes run on RE2: a pattern that would backtrack forever in Python's ``re`` matches at once, and what
RE2 cannot run is refused when the rules are loaded, with the construct named."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydantic import ValidationError

from monitor.detect import RuleEngine
from monitor.detect.regex import compile_rule_regex
from monitor.detect.schema import Rule
from tests.conftest import make_mention, scored

# One ordinary post ending in "!!": with backtracking, (a+)+$ tries 2^60 ways of splitting the a's.
POST = "Lumora " + "a" * 60 + "!!"


def rule(regex: Any) -> Rule:
    return Rule.model_validate({"name": "r", "severity": "warning", "when": {"regex": regex}})


def finishes(work: Any, seconds: float = 30.0) -> bool:
    """True when ``work`` returns; a backtracking engine would still be running long after ``seconds``."""
    done = threading.Event()

    def run() -> None:
        work()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(seconds)


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(\w+\s?)*$", r"(a|aa)+$", r"(.*a){20}$"])
def test_catastrophic_patterns_do_not_hang_the_rules(pattern: str) -> None:
    engine = RuleEngine([rule([pattern])])
    signals: list[Any] = []
    assert finishes(lambda: signals.extend(engine.process(scored(make_mention(1, text=POST), 0.1))))
    # And they still match what they say: (a+)+$ needs the text to end in a's.
    ends_in_a = RuleEngine([rule([pattern])]).process(scored(make_mention(2, text="Lumora aaa"), 0.1))
    assert bool(ends_in_a) is (pattern != r"(.*a){20}$")


@pytest.mark.parametrize(("pattern", "construct"), [
    (r"(?<!\w)boycot", "negative look-behind '(?<!...)'"),
    (r"(?<=@)lumora", "look-behind '(?<=...)'"),
    (r"boycot(?!t)", "negative look-ahead '(?!...)'"),
    (r"lumora(?=\.be)", "look-ahead '(?=...)'"),
    (r"(\w)\1", "back-reference '\\1'"),
    (r"(?>a+)b", "atomic group '(?>...)'"),
    (r"a++", "'++' repeats a repetition"),
    (r"[oplichting", "a '[' is never closed"),
    (r"(dubbel", "a '(' is never closed"),
    (r"dubbel)", "a ')' has no '('"),
    (r"*scam", "has nothing before it to repeat"),
    (r"a{5000}", "too large"),
    ("", "an empty regular expression matches every post"),
])
def test_what_re2_cannot_run_is_refused_naming_the_construct(pattern: str, construct: str) -> None:
    with pytest.raises(ValidationError) as info:
        rule([pattern])
    assert construct in str(info.value)
    with pytest.raises(ValidationError):
        rule({"nl": [pattern]})  # per language too


def test_word_classes_read_accents_as_python_did() -> None:
    assert compile_rule_regex(r"arnaqu\w+").search("Quelle arnaqué!")
    assert compile_rule_regex(r"\barnaqué\b").search("arnaqué!")
    assert not compile_rule_regex(r"\barnaqu\b").search("arnaqué")  # é is a letter: no word ends there
    assert compile_rule_regex(r"dubbel\s+afgeschreven").search("DUBBEL\u00a0afgeschreven")  # no-break space
    assert not compile_rule_regex(r"^\w+$").search("arnaqué!")
    assert compile_rule_regex(r"\d+ euro").search("٣ euro")  # \d as Unicode digits, like re


def test_case_insensitive() -> None:
    assert compile_rule_regex(r"lumora").search("LUMORA")
