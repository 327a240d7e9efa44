"""Quarantine, never block: one post the store or the model cannot take never blinds its source."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from monitor.app import build_pipeline
from monitor.clock import FakeClock
from monitor.commands.sources import describe_sources
from monitor.models import TEXT_LIMIT, Mention, SentimentScores
from monitor.notify import ConsoleNotifier
from monitor.ops import Metrics
from monitor.pipeline import Pipeline
from monitor.privacy.retention import RetentionPolicy, purge
from monitor.settings import Settings
from monitor.sources.base import PollResult
from monitor.sources.schema import load_collect
from monitor.store import health as health_repo
from monitor.store import mentions as mention_repo
from monitor.store import quarantine as quarantine_repo
from monitor.store import transaction
from monitor.store.privacy import delete_posts
from monitor.store.tables import mentions, sentiments
from tests.conftest import ROOT, make_mention

SETTINGS = Settings(rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml")


class Model:
    """Weights-free model that chokes on one text, as a tokenizer bug or a bad input would."""

    name = "stub"
    version = "1"

    def predict(self, texts: Sequence[str]) -> list[SentimentScores]:
        if any("choke" in t for t in texts):
            raise RuntimeError("model failed on a text")
        return [SentimentScores(0.9, 0.05, 0.05) if "terrible" in t else SentimentScores(0.1, 0.2, 0.7)
                for t in texts]


class Batch:
    """A source that returns one fixed batch and a cursor, like one page of an API."""

    def __init__(self, name: str, batch: list[Mention], cursor: str = "page-2") -> None:
        self.name, self.batch, self.cursor = name, batch, cursor

    def poll(self, cursor: str | None) -> PollResult:
        return PollResult(mentions=self.batch, next_cursor=self.cursor)


def unstorable(i: int) -> Mention:
    """A post that slipped past normalisation (set after construction): the store must refuse it alone."""
    m = make_mention(i, text="fine")
    object.__setattr__(m, "text", "bad \ud800 post")
    return m


@pytest.fixture
def pipeline(engine: Engine, clock: FakeClock) -> Pipeline:
    return build_pipeline(SETTINGS, notifier=ConsoleNotifier(io.StringIO()), clock=clock, engine=engine,
                          model=Model())


def test_text_is_normalised_once_at_the_edge() -> None:
    m = Mention(source="x", source_id="1\x00", brand="Lumora", text="a\ud800b\x00c\r\nd \ud83d\ude00 e\x1ff\tg",
                created_at=datetime(2026, 11, 18, tzinfo=UTC), author_handle="h" * 300)
    assert m.text == "a\ufffdbc\nd \U0001f600 e\nf\tg"  # lone surrogate replaced, a pair joined, NUL gone
    assert m.source_id == "1" and len(m.author_handle or "") == 256
    m.text.encode("utf-8")  # never raises again
    assert len(make_mention(text="x" * (TEXT_LIMIT + 5)).text) == TEXT_LIMIT
    assert make_mention(reach=10**12).author_reach == 2**31 - 1  # PostgreSQL's INTEGER refused it
    clean = "Lumora is terrible 😡 שלום"
    assert make_mention(text=clean).text is clean  # clean text is not copied


def test_surrogate_and_nul_posts_are_stored_with_their_batch(engine: Engine, pipeline: Pipeline) -> None:
    batch = [make_mention(1, text="Lumora ok"), make_mention(2, text="Lumora \ud800 \x00 terrible"),
             make_mention(3, text="Lumora fine")]
    result = pipeline.poll(Batch("x:Lumora", batch))
    assert result.new == 3 and result.problem is None
    with transaction(engine) as conn:
        texts = dict(conn.execute(select(mentions.c.source_id, mentions.c.text)).all())
        assert mention_repo.get_cursor(conn, "x:Lumora") == "page-2"
        assert quarantine_repo.counts(conn) == {}
    assert texts["2"] == "Lumora \ufffd  terrible"


def test_a_post_the_store_refuses_is_quarantined_and_the_rest_stored(engine: Engine, pipeline: Pipeline,
                                                                     clock: FakeClock, tmp_path: Path) -> None:
    metrics = Metrics(clock=clock.now, process_metrics=False)
    metrics.watch_store(engine)
    result = pipeline.poll(Batch("x:Lumora", [make_mention(1), unstorable(2), make_mention(3)]))
    assert result.new == 2 and result.problem is None
    with transaction(engine) as conn:
        assert sorted(conn.execute(select(mentions.c.source_id)).scalars()) == ["1", "3"]
        assert mention_repo.get_cursor(conn, "x:Lumora") == "page-2"  # the next poll does not meet it again
        [q] = quarantine_repo.recent(conn, "x:Lumora")
        health = health_repo.get(conn, "x:Lumora")
    assert (q.source_id, q.stage, q.mention_id) == ("2", "store", None)
    assert q.reason.startswith("UnicodeEncodeError: 'utf-8' codec can't encode character '\\ud800'")
    assert health is not None and health.consecutive_failures == 0
    assert b'monitor_quarantined_posts{source="x:Lumora"} 1.0' in metrics.exposition()

    collect = tmp_path / "monitor.yaml"
    collect.write_text("brands:\n  Lumora:\n    x: {query: Lumora}\n", encoding="utf-8")
    lines = describe_sources(engine, load_collect(collect), SETTINGS, clock.now())
    [shown] = [line for line in lines if "quarantined" in line]
    # The time in the team's zone, named (SETTINGS: Europe/Brussels, 10:00 UTC is 11:00 there), not in UTC.
    assert shown.startswith("  quarantined:  1 post(s) set aside; latest: 2 (store, Wed 18 Nov 11:00 (Brussels time)")
    assert "UnicodeEncodeError" in shown


def test_a_failing_store_step_is_a_source_failure(engine: Engine, pipeline: Pipeline) -> None:
    source = Batch("x:Lumora", [make_mention(1)], cursor="\ud800")  # a cursor no database can take
    result = pipeline.poll(source)
    assert result.problem is not None
    assert result.problem.startswith("storing 1 post(s) failed: UnicodeEncodeError")
    with transaction(engine) as conn:
        health = health_repo.get(conn, "x:Lumora")
        assert conn.execute(select(mentions.c.id)).all() == []  # all or nothing: the batch waits
    assert health is not None and health.consecutive_failures == 1
    assert (health.last_error or "").startswith("storing 1 post(s) failed")


def test_any_exception_in_a_poll_is_a_source_failure(engine: Engine, pipeline: Pipeline) -> None:
    class Weird:
        name = "x:Lumora"

        def poll(self, cursor: str | None) -> PollResult:
            return None  # type: ignore[return-value]  # a bug in a source, not an API error

    assert pipeline.poll(Weird()).problem is not None
    with transaction(engine) as conn:
        health = health_repo.get(conn, "x:Lumora")
    assert health is not None and health.consecutive_failures == 1 and "AttributeError" in (health.last_error or "")


def test_a_text_the_model_cannot_score_is_quarantined(engine: Engine, pipeline: Pipeline) -> None:
    batch = [make_mention(1, text="Lumora is terrible"), make_mention(2, text="please choke on this"),
             make_mention(3, text="Lumora fine")]
    pipeline.poll(Batch("x:Lumora", batch))
    stats = pipeline.run_pass()
    assert stats.scored == 3 and stats.detected == 2
    with transaction(engine) as conn:
        assert len(conn.execute(select(sentiments.c.mention_id)).all()) == 2
        [q] = quarantine_repo.recent(conn, "x", 5)
        assert mention_repo.unscored(conn, 10) == [] and mention_repo.backlog(conn) == (0, 0)
    assert (q.source_id, q.stage) == ("2", "classify") and q.reason == "RuntimeError: model failed on a text"
    assert pipeline.run_pass().idle  # not retried for ever


def test_quarantine_records_age_out_and_go_with_their_post(engine: Engine, pipeline: Pipeline,
                                                           clock: FakeClock) -> None:
    pipeline.poll(Batch("x:Lumora", [unstorable(1), make_mention(2, text="choke")]))
    pipeline.run_pass()
    with transaction(engine) as conn:
        assert sum(quarantine_repo.counts(conn).values()) == 2
        [mid] = conn.execute(select(mentions.c.id)).scalars()
        delete_posts(conn, [mid])  # what `monitor forget` and the purge do to a post
        assert quarantine_repo.counts(conn) == {"x:Lumora": 1}
    report = purge(engine, RetentionPolicy(author_days=30), clock.now() + timedelta(days=31))
    assert report.quarantined_deleted == 1
    assert "      1  quarantined post records deleted" in report.lines()
