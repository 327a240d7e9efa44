"""``negative_above: default``: the threshold calibrated for the head, per language, and what the README says of it."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from monitor.classify.offline import DEFAULT_HEAD_PATH, OfflineSentimentModel, load_default_negative_threshold
from monitor.classify.thresholds import NegativeThresholds, load_thresholds, thresholds_path
from monitor.detect import RuleEngine, load_rules
from monitor.detect.matching import match_mention
from monitor.detect.schema import Rule
from monitor.yamlconfig import ConfigInvalid
from tests.conftest import ROOT, make_mention, scored

SHIPPED = json.loads(thresholds_path(DEFAULT_HEAD_PATH).read_text(encoding="utf-8"))


def rule(negative_above: object) -> Rule:
    return Rule.model_validate({"name": "neg", "severity": "critical", "when": {"negative_above": negative_above}})


def test_the_shipped_head_has_a_threshold_per_calibrated_language() -> None:
    thresholds = load_thresholds()
    assert thresholds.default == load_default_negative_threshold()
    assert dict(thresholds.by_language) == SHIPPED["by_language"] and "nl" in thresholds.by_language
    assert thresholds.for_language("nl") == SHIPPED["by_language"]["nl"]
    assert thresholds.for_language("sw") == thresholds.for_language(None) == thresholds.default
    model = OfflineSentimentModel()
    assert model.negative_thresholds == load_thresholds(DEFAULT_HEAD_PATH, model.weights_choice.weights)
    assert OfflineSentimentModel(weights="q4").negative_thresholds == thresholds


def test_default_applies_the_posts_language_and_a_number_stays_a_number() -> None:
    thresholds = NegativeThresholds(0.5, {"nl": 0.2})
    dutch, french = make_mention(1, language="nl"), make_mention(2, language="fr")
    assert match_mention(rule("default"), scored(dutch, 0.3), thresholds) is not None
    assert match_mention(rule("default"), scored(french, 0.3), thresholds) is None  # 0.5 for French
    assert match_mention(rule("default"), scored(french, 0.5), thresholds) is not None
    assert match_mention(rule(0.4), scored(dutch, 0.3), thresholds) is None
    engine = RuleEngine([rule("default")], thresholds)
    assert engine.process(scored(dutch, 0.3)) and not engine.process(scored(french, 0.3, mention_id=3))


def test_a_typo_for_default_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n  - name: neg\n    severity: critical\n    when:\n"
                                     "      negative_above: defualt\n", encoding="utf-8")
    with pytest.raises(ConfigInvalid) as caught:
        load_rules(tmp_path)
    assert len(caught.value.errors) == 1
    assert "negative_above: expected a number from 0 to 1, or 'default'" in str(caught.value.errors[0])


def test_the_shipped_rules_use_default() -> None:
    rules = load_rules(ROOT / "rules").rules
    assert [r.when.negative_above for r in rules if r.when.negative_above is not None]
    assert all(r.when.negative_above == "default" for r in rules if r.when.negative_above is not None)


def test_thresholds_calibrated_for_another_head_are_ignored_loudly(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    head = tmp_path / "other.npz"
    head.write_bytes(DEFAULT_HEAD_PATH.read_bytes() + b"\0")  # not the head the file names
    shutil.copy(DEFAULT_HEAD_PATH.with_suffix(".json"), head.with_suffix(".json"))
    shutil.copy(thresholds_path(DEFAULT_HEAD_PATH), thresholds_path(head))
    with caplog.at_level(logging.WARNING, logger="monitor.classify.thresholds"):
        thresholds = load_thresholds(head)
    assert thresholds == NegativeThresholds(load_default_negative_threshold())
    assert any("calibrated for another head" in r.getMessage() for r in caplog.records)


def test_the_readme_states_the_held_out_figures_the_calibration_measured() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    int8, q4 = SHIPPED["by_weights"]["int8"], SHIPPED["by_weights"]["q4"]
    assert q4["by_language"] == SHIPPED["by_language"]  # the head's own weights are the top-level set

    def ci(held: dict[str, Any], key: str) -> str:
        return f"{held[key]:.3f} [{held[key + '_95ci'][0]:.3f}, {held[key + '_95ci'][1]:.3f}]"

    for code, entry in int8["report"].items():
        row = re.search(rf"^\| `{code}` \| ([0-9.]+) / ([0-9.]+) \| .*$", readme, re.MULTILINE)
        assert row is not None, f"README has no row for {code}"
        line = row.group(0)
        assert (float(row.group(1)), float(row.group(2))) == (entry["threshold"], q4["report"][code]["threshold"])
        held, held_q4 = entry["held_out"], q4["report"][code]["held_out"]
        for figure in (ci(held, "recall"), ci(held, "precision"), ci(held_q4, "recall"), ci(held_q4, "precision")):
            assert figure in line, (figure, line)


def test_backtests_and_the_worker_read_default_for_the_weights_the_model_runs() -> None:
    """One answer to "what does ``default`` mean here": the model's own set (``thresholds_of``), in the worker,
    Try it and the backtests alike; a backtest given another set fires elsewhere."""
    from datetime import timedelta

    from monitor.classify.thresholds import thresholds_of
    from monitor.detect.backtest import backtest

    int8 = OfflineSentimentModel(weights="int8")
    assert thresholds_of(int8) == load_thresholds(DEFAULT_HEAD_PATH, "int8") == int8.negative_thresholds
    assert thresholds_of(object()) is None  # a model without a calibrated set: the shipped head's applies
    post = scored(make_mention(1, language="nl"), 0.3)
    kwargs: dict[str, Any] = {"grouping_window": timedelta(hours=6)}
    fires = backtest([rule("default")], [post], negative_thresholds=NegativeThresholds(0.5, {"nl": 0.2}), **kwargs)
    quiet = backtest([rule("default")], [post], negative_thresholds=NegativeThresholds(0.5, {"nl": 0.4}), **kwargs)
    assert (fires.rules["neg"].signals, quiet.rules["neg"].signals) == (1, 0)
