"""Rules: each condition, windows at their boundaries, realert, warm-up, reload."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.detect import RuleEngine, RuleReloader, load_rules
from monitor.detect.matching import match_mention
from monitor.detect.schema import Rule
from monitor.models import Review, Severity, StoredMention
from monitor.yamlconfig import ConfigInvalid
from tests.conftest import ROOT, make_mention, scored

T0 = datetime(2026, 11, 19, 17, 0, tzinfo=UTC)


def rule(**fields: Any) -> Rule:
    return Rule.model_validate({"name": "r", "severity": "warning", **fields})


def fires(r: Rule, stored: Any) -> bool:
    return bool(RuleEngine([r]).process(stored))


@pytest.mark.parametrize(
    ("when", "mention_kw", "negative", "expected"),
    [
        ({"negative_above": 0.6}, {}, 0.61, True),
        ({"negative_above": 0.6}, {}, 0.59, False),
        ({"languages": ["nl", "fr"]}, {"language": "fr"}, 0.1, True),
        ({"languages": ["nl", "fr"]}, {"language": "en"}, 0.1, False),
        ({"sources": ["reddit"]}, {"source": "reddit"}, 0.1, True),
        ({"sources": ["reddit"]}, {"source": "x"}, 0.1, False),
        ({"reach_at_least": 10000}, {"reach": 10000}, 0.1, True),
        ({"reach_at_least": 10000}, {"reach": 9999}, 0.1, False),
        ({"engagement_at_least": 500}, {"engagement": 501}, 0.1, True),
        ({"engagement_at_least": 500}, {"engagement": 10}, 0.1, False),
        ({"keywords": ["scam"]}, {"text": "This is a SCAM!"}, 0.1, True),
        ({"keywords": ["scam"]}, {"text": "scampi for dinner"}, 0.1, False),  # whole words only
        ({"keywords": {"nl": ["oplichting"], "fr": ["arnaque"]}}, {"text": "C'est une arnaque", "language": "fr"},
         0.1, True),
        ({"keywords": {"nl": ["oplichting"]}}, {"text": "pure oplichting", "language": "fr"}, 0.1, False),
        ({"regex": [r"dubbel\s+(gedebiteerd|afgeschreven)"]}, {"text": "Dubbel  afgeschreven!"}, 0.1, True),
        ({"negative_above": 0.5, "exclude": {"authors": ["@Lumora_BE"]}}, {"author": "lumora_be"}, 0.9, False),
        ({"negative_above": 0.5, "exclude": {"keywords": ["Voltis"]}}, {"text": "Voltis is bad"}, 0.9, False),
    ],
)
def test_per_post_conditions(when: dict[str, Any], mention_kw: dict[str, Any], negative: float,
                             expected: bool) -> None:
    assert fires(rule(when=when), scored(make_mention(1, **mention_kw), negative)) is expected


def test_brands_filter() -> None:
    r = rule(brands=["Other"], when={"negative_above": 0.1})
    assert not fires(r, scored(make_mention(1), 0.9))


def test_reason_is_in_words() -> None:
    r = rule(when={"negative_above": 0.6, "reach_at_least": 10000})
    [signal] = RuleEngine([r]).process(scored(make_mention(1, reach=85000, author="columnist"), 0.93))
    assert "@columnist" in signal.reason and "85,000 followers" in signal.reason and "93%" in signal.reason
    assert signal.severity is Severity.WARNING and signal.mention_ids == (1,)


def burst(n: int, spacing: timedelta, start: datetime = T0, first_id: int = 1) -> list[Any]:
    return [scored(make_mention(first_id + i, at=start + i * spacing), 0.9) for i in range(n)]


def test_frequency_fires_on_the_nth_post_inside_the_window() -> None:
    engine = RuleEngine([rule(when={"negative_above": 0.5}, frequency={"count": 3, "within": "1h"})])
    out = [engine.process(m) for m in burst(3, timedelta(minutes=29))]
    assert [bool(o) for o in out] == [False, False, True]
    assert "3 negative posts about Lumora in 58 min" in out[2][0].reason
    assert out[2][0].mention_ids == (1, 2, 3)


def test_frequency_window_boundary() -> None:
    # Exactly 1 h between first and third post still counts; one second more does not.
    inside = RuleEngine([rule(when={"negative_above": 0.5}, frequency={"count": 3, "within": "1h"})])
    assert [bool(inside.process(m)) for m in burst(3, timedelta(minutes=30))][-1]
    outside = RuleEngine([rule(when={"negative_above": 0.5}, frequency={"count": 3, "within": "1h"})])
    assert not any(outside.process(m) for m in burst(3, timedelta(minutes=30, seconds=1)))


def test_frequency_groups_by_conversation() -> None:
    r = rule(when={"negative_above": 0.5}, frequency={"count": 2, "within": "1h"}, group_by="conversation")
    engine = RuleEngine([r])
    a = scored(make_mention(1, conversation="A"), 0.9)
    b = scored(make_mention(2, conversation="B", at=T0 + timedelta(minutes=1)), 0.9)
    assert not engine.process(a) and not engine.process(b)


def test_realert_suppresses_repeats_per_group() -> None:
    r = rule(when={"negative_above": 0.5}, frequency={"count": 2, "within": "1h"}, realert="2h")
    engine = RuleEngine([r])
    fired = [bool(engine.process(m)) for m in burst(6, timedelta(minutes=10))]
    assert fired == [False, True, False, False, False, False]
    assert engine.suppressed["r"] == 4
    later = burst(2, timedelta(minutes=1), start=T0 + timedelta(hours=2, minutes=30), first_id=100)
    assert [bool(engine.process(m)) for m in later] == [False, True]


def test_realert_restored_after_restart() -> None:
    r = rule(when={"negative_above": 0.5}, realert="2h")
    engine = RuleEngine([r])
    engine.seed_last_fired("r", "Lumora", T0)
    assert not engine.process(scored(make_mention(1, at=T0 + timedelta(minutes=30)), 0.9))
    assert engine.process(scored(make_mention(2, at=T0 + timedelta(hours=2)), 0.9))


def spike_rule(**extra: Any) -> Rule:
    spike = {"current": "1h", "reference": "24h", "factor": 4, "min_count": 5, "warmup": "2d", **extra}
    return rule(when={"negative_above": 0.5}, spike=spike)


def test_spike_fires_against_the_usual_rate_after_warmup() -> None:
    engine = RuleEngine([spike_rule()])
    # Three days of one negative post every 4 h (usual rate: 0.25 per hour)...
    history = burst(18, timedelta(hours=4), start=T0 - timedelta(days=3))
    assert not any(engine.process(m) for m in history)
    # ...then six within an hour.
    out = [engine.process(m) for m in burst(6, timedelta(minutes=10), start=T0, first_id=100)]
    assert [bool(o) for o in out] == [False, False, False, False, True, True]
    assert "× the usual rate" in out[4][0].reason


def test_spike_stays_quiet_during_warmup() -> None:
    engine = RuleEngine([spike_rule()])
    assert not any(engine.process(m) for m in burst(10, timedelta(minutes=5)))


def test_spike_needs_min_count() -> None:
    engine = RuleEngine([spike_rule(min_count=8)])
    engine.process(scored(make_mention(999, at=T0 - timedelta(days=3)), 0.1))  # brand first seen
    assert not any(engine.process(m) for m in burst(7, timedelta(minutes=5)))


def test_disabled_rules_do_nothing() -> None:
    assert not fires(rule(enabled=False, when={"negative_above": 0.1}), scored(make_mention(1), 0.9))


def test_shipped_rules_are_valid() -> None:
    rules = load_rules(ROOT / "rules")
    assert {"negative-high-reach", "fraud-or-boycott", "negative-burst"} <= {r.name for r in rules.enabled}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


GOOD = "rules:\n  - name: a\n    severity: warning\n    when: {negative_above: 0.7}\n"


def test_typo_names_file_line_key_and_suggestion(tmp_path: Path) -> None:
    write(tmp_path / "r.yaml", "rules:\n  - name: a\n    severity: warning\n    when:\n      negativ_above: 0.7\n")
    with pytest.raises(ConfigInvalid) as info:
        load_rules(tmp_path)
    [error] = info.value.errors
    assert (error.line, error.column) == (5, 7)
    assert "negativ_above" in str(error) and "did you mean 'negative_above'" in str(error)
    assert str(error).startswith(str(tmp_path / "r.yaml") + ":5:7:")


def test_duplicate_rule_names_across_files(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", GOOD)
    write(tmp_path / "b.yaml", GOOD)
    with pytest.raises(ConfigInvalid, match="already used"):
        load_rules(tmp_path)


def test_reload_applies_only_a_fully_valid_set(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", GOOD)
    reloader = RuleReloader(tmp_path)
    assert [r.name for r in reloader.current.rules] == ["a"]
    write(tmp_path / "b.yaml", "rules:\n  - name: b\n    severity: loud\n")
    assert reloader.refresh().changed is False
    assert [r.name for r in reloader.current.rules] == ["a"]
    assert reloader.last_error is not None and "b.yaml:3" in reloader.last_error
    write(tmp_path / "b.yaml", "rules:\n  - name: b\n    severity: critical\n    when: {reach_at_least: 5}\n")
    assert reloader.refresh().changed is True
    assert sorted(r.name for r in reloader.current.rules) == ["a", "b"]


def test_the_engine_fires_exactly_where_each_rule_matches() -> None:
    """``RuleEngine`` tests the brand, language, source, P(negative), review, reach and engagement of a post
    inline, per kind of post, before asking the rule (``RuleMatcher.gate``); over posts that differ in each
    of those, every single-post rule fires on exactly the posts ``match_mention`` says it matches."""
    rules = [
        rule(name="neg", when={"negative_above": 0.6}),
        rule(name="neg-nl", when={"negative_above": 0.3, "languages": ["nl"]}),
        rule(name="reddit", brands=["Lumora"], when={"sources": ["reddit"], "negative_above": 0.2}),
        rule(name="reach", when={"negative_above": 0.5, "reach_at_least": 1000, "exclude": {"authors": ["@Own"]}}),
        rule(name="talked", when={"engagement_at_least": 50}),
        rule(name="words", when={"keywords": {"nl": ["oplichting"], "en": ["scam"]},
                                 "exclude": {"keywords": ["Voltis"]}}),
        rule(name="stars", when={"rating_at_most": 2}),
    ]
    # With a rule that needs no score, every post is asked; with only rules that need one (or a review), a post
    # below every threshold is not (``RuleEngine._candidates``' floor): both must answer as the rules do.
    for chosen in (rules, [r for r in rules if r.name not in ("talked", "words")]):
        _fires_where_it_matches(chosen)


def _fires_where_it_matches(rules: list[Rule]) -> None:
    engine = RuleEngine(rules)
    texts = ("Lumora is a scam", "pure oplichting", "Voltis scam", "fine")
    seen: set[str] = set()
    for i in range(180):
        m = make_mention(i, brand=("Lumora", "Other")[i % 2], source=("x", "reddit")[i // 2 % 2],
                         language=("nl", "en", None)[i % 3], text=texts[i % 4], reach=(10, 999, 1000)[i // 4 % 3],
                         engagement=(49, 50)[i // 3 % 2], author=("own", None)[i % 7 > 0],
                         at=T0 + timedelta(minutes=i))
        if i % 6 == 0:
            m = replace(m, review=Review(rating=(1, 2, 3, 5)[i // 6 % 4]))
        sm = scored(m, (0.1, 0.25, 0.35, 0.55, 0.65)[i % 5]) if i % 11 else StoredMention(i, m)  # some unscored
        fired = {s.rule for s in engine.process(sm)}
        assert fired == {r.name for r in rules if match_mention(r, sm) is not None}, sm
        seen |= fired
    assert seen == {r.name for r in rules}
