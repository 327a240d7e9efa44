"""``monitor backtest --data FILE`` judges a file as the worker would: one post once, languages detected, the
files ``monitor import`` accepts, and a file with nothing readable refused. The property test holds the
backtest and the worker (``build_worker``, simulated, replaying the same file) to the same incidents."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from typer.testing import CliRunner

from monitor.app import Mode, SourcePlan, build_worker
from monitor.classify import LanguageDetector, SentimentModel, load_model
from monitor.cli import app
from monitor.clock import FakeClock
from monitor.commands.backtest import read_data
from monitor.detect import load_rules
from monitor.detect.backtest import backtest, score_missing
from monitor.escalation.schema import load_escalation
from monitor.notify import ConsoleNotifier
from monitor.settings import Settings
from monitor.sources import ReplaySource
from monitor.store import transaction
from monitor.store.tables import incident_mentions, incidents, mentions
from tests.conftest import ROOT

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
LANGUAGES = ["nl", "fr", "en"]


@pytest.fixture(autouse=True)
def _checkout_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_RULES_DIR", str(ROOT / "rules"))
    monkeypatch.setenv("MONITOR_ESCALATION_FILE", str(ROOT / "escalation.yaml"))
    monkeypatch.setenv("MONITOR_COLLECT_FILE", str(ROOT / "monitor.yaml"))
    monkeypatch.setenv("MONITOR_LANGUAGES", '["nl","fr","en"]')


def post(i: int, text: str, minute: int, **extra: Any) -> dict[str, Any]:
    return {"source": "x", "source_id": str(i), "brand": "Lumora", "text": text,
            "created_at": (T0 + timedelta(minutes=minute)).isoformat(), **extra}


def write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    return path


def backtest_cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["backtest", *args])


ANGRY_FR = "Lumora est une arnaque totale, je suis furieux, ils m'ont volé"


def test_languages_are_detected_so_per_language_keywords_fire(tmp_path: Path) -> None:
    # No language field: the worker detects French and the French keyword list applies.
    data = write(tmp_path / "fr.jsonl", [post(1, ANGRY_FR, 0, conversation_id="a")])
    result = backtest_cli("--data", str(data))
    assert result.exit_code == 0, result.output
    assert "Alerts a responder would have received: 1" in result.output
    assert "mentions 'arnaque'" in result.output


def test_the_same_posts_twice_are_counted_once(tmp_path: Path) -> None:
    angry = [post(i, f"Lumora oplichters, schandalig, ik ben woedend nummer {i}", 2 * i, language="nl")
             for i in range(1, 5)]
    data = write(tmp_path / "twice.jsonl", angry + angry)  # 4 negative posts, 8 lines
    result = backtest_cli("--data", str(data))
    assert result.exit_code == 0, result.output
    assert "4 post(s) appear more than once" in result.output
    assert "4 mentions from" in result.output


def test_one_tweet_per_line_as_import_accepts(tmp_path: Path) -> None:
    tweets = [{"id": str(100 + i), "text": f"@lumora_be this is a scam, refund me now #{i}",
               "created_at": (T0 + timedelta(minutes=i)).isoformat().replace("+00:00", ".000Z"),
               "author_id": "42", "lang": "en"} for i in range(3)]
    data = write(tmp_path / "tweets.jsonl", tweets)
    result = backtest_cli("--data", str(data), "--brand", "Lumora")
    assert result.exit_code == 0, result.output
    assert "3 mentions from" in result.output and "mentions 'scam'" in result.output


@pytest.mark.parametrize("lines", [["not json at all", "{broken"], [{"txt": "no fields"}], []])
def test_a_file_with_nothing_readable_is_refused(tmp_path: Path, lines: list[Any]) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    result = backtest_cli("--data", str(data))
    assert result.exit_code == 1, result.output
    assert "error: " in result.output and "no post could be read" in result.output
    assert "Traceback" not in result.output


# --- the property: the backtest and the worker open the same incidents on the same file -----------------

WORDS = {"nl": ["oplichting", "boycot", "slecht", "factuur", "fantastisch", "woedend"],
         "fr": ["arnaque", "boycott", "facture", "horrible", "merci", "furieux"],
         "en": ["scam", "boycott", "bill", "awful", "great", "angry"]}
OPENERS = {"nl": "Lumora is echt", "fr": "Lumora c'est vraiment", "en": "Lumora is really"}


@st.composite
def files(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 14))
    minutes = sorted(draw(st.lists(st.integers(0, 180), min_size=n, max_size=n)))
    posts = []
    for i, minute in enumerate(minutes):
        language = draw(st.sampled_from(LANGUAGES))
        words = draw(st.lists(st.sampled_from(WORDS[language]), min_size=1, max_size=3))
        extra: dict[str, Any] = {"author_reach": draw(st.sampled_from([10, 60000])),
                                 "conversation_id": draw(st.sampled_from(["c1", "c2"]))}
        if draw(st.booleans()):
            extra["language"] = language  # tagged by the platform; else detected
        posts.append(post(i, f"{OPENERS[language]} {' '.join(words)} (bericht {i})", minute, **extra))
    repeats = draw(st.lists(st.sampled_from(posts), max_size=4))  # the same posts again, later in the file
    return posts + repeats


@pytest.fixture(scope="module")
def engine_parts() -> Iterator[tuple[LanguageDetector, SentimentModel]]:
    detector = LanguageDetector(LANGUAGES)
    yield detector, load_model("default", language_detector=detector)


def by_backtest(path: Path, detector: LanguageDetector, model: SentimentModel) -> set[tuple[str, frozenset[str]]]:
    """What ``monitor backtest --data`` computes, through the functions it calls."""
    read = read_data(path, brand=None, languages=LANGUAGES, detector=detector)
    items = sorted(score_missing(read.mentions, model), key=lambda s: (s.mention.created_at, s.id))
    config = load_escalation(ROOT / "escalation.yaml")
    result = backtest(load_rules(ROOT / "rules").rules, items, grouping_window=config.grouping.window,
                      timezone=config.timezone)
    source_id = {sm.id: sm.mention.source_id for sm in items}
    return {(i.rule, frozenset(source_id[m] for m in i.mention_ids)) for i in result.incidents}


def by_worker(path: Path, db: Path, model: SentimentModel) -> set[tuple[str, frozenset[str]]]:
    """The worker ``monitor demo`` runs, replaying the same file in simulated time."""
    clock = FakeClock(T0 - timedelta(minutes=1))
    worker_settings = Settings(db_url=f"sqlite:///{db}", rules_dir=ROOT / "rules",
                               escalation_file=ROOT / "escalation.yaml", languages=LANGUAGES)
    source = ReplaySource(path, name="file", release_until=clock.now)
    worker = build_worker(worker_settings, clock, mode=Mode.SIMULATED, sources=SourcePlan((source,)),
                          notifier=ConsoleNotifier(io.StringIO()), model=model)
    worker.run_simulated(clock, step=timedelta(minutes=15), until=T0 + timedelta(hours=5))
    found: dict[int, tuple[str, set[str]]] = {}
    with transaction(worker.engine) as conn:
        rows = conn.execute(select(incidents.c.id, incidents.c.rule, mentions.c.source_id)
                            .join(incident_mentions, incident_mentions.c.incident_id == incidents.c.id)
                            .join(mentions, mentions.c.id == incident_mentions.c.mention_id))
        for incident_id, rule, sid in rows:
            found.setdefault(incident_id, (rule, set()))[1].add(sid)
    worker.engine.dispose()
    return {(rule, frozenset(sids)) for rule, sids in found.values()}


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=files())
def test_backtest_and_worker_open_the_same_incidents_on_a_file(
        lines: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory,
        engine_parts: tuple[LanguageDetector, SentimentModel]) -> None:
    detector, model = engine_parts
    folder = tmp_path_factory.mktemp("property")
    data = write(folder / "posts.jsonl", lines)
    assert by_backtest(data, detector, model) == by_worker(data, folder / "store.db", model)


@pytest.mark.slow
def test_backtest_and_worker_agree_on_a_file_that_alerts(tmp_path: Path,
                                                         engine_parts: tuple[LanguageDetector, SentimentModel]) -> None:
    """The property's equality is not an empty one: a keyword post, a burst, copies of both."""
    detector, model = engine_parts
    angry = [post(i, f"Lumora oplichters, schandalig, ik ben woedend nummer {i}", 3 * i,
                  **({"language": "nl"} if i % 2 else {})) for i in range(1, 10)]
    lines = [post(0, ANGRY_FR, 0, conversation_id="a"), *angry, *angry[:3]]
    data = write(tmp_path / "posts.jsonl", lines)
    expected = by_backtest(data, detector, model)
    assert {rule for rule, _ in expected} >= {"fraud-or-boycott", "negative-burst"}
    assert expected == by_worker(data, tmp_path / "store.db", model)
