"""Fuzz: random Unicode (surrogates, NUL, right-to-left, emoji sequences, 1 MB texts) through the store,
the rule engine and the classifier, from a fixed seed. No exception escapes; nothing good is lost."""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from monitor.app import build_pipeline
from monitor.clock import FakeClock
from monitor.models import Mention, SentimentScores
from monitor.notify import ConsoleNotifier
from monitor.settings import Settings
from monitor.sources.base import PollResult
from monitor.store import quarantine as quarantine_repo
from monitor.store import transaction
from monitor.store.tables import mentions, sentiments
from tests.conftest import ROOT

NASTY = ["\ud800", "\udfff", "\ud83d", "\x00", "\x1b[31m", "\r\n", "\u202e", "\u200f", "\u2066", "مرحبا Lumora",
         "שלום", "👩‍👩‍👧‍👦", "🇧🇪", "🏳️‍🌈", "e\u0301\u0301\u0301", "\ufeff", "\uffff", "𝕃𝕦𝕞𝕠𝕣𝕒", "scam", "Lumora",
         "\u0000\u0000", "\t", "\x7f", "ﷺ", "\U000e0041"]
piece = st.one_of(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
                          max_size=40),
                  st.sampled_from(NASTY))
texts = st.lists(piece, min_size=0, max_size=12).map("".join)
handles = st.one_of(st.none(), texts)
ids = itertools.count()


class Negative:
    """Every post clearly negative, so every rule looks at every text (keywords, authors, windows)."""

    name = "stub"
    version = "1"

    def predict(self, texts: Sequence[str]) -> list[SentimentScores]:
        return [SentimentScores(0.9, 0.05, 0.05) for _ in texts]


class Page:
    name = "x:Lumora"

    def __init__(self, batch: list[Mention]) -> None:
        self.batch = batch

    def poll(self, cursor: str | None) -> PollResult:
        return PollResult(mentions=self.batch, next_cursor=str(next(ids)))


@pytest.mark.slow
def test_random_unicode_through_store_rules_and_alerts(engine: Engine, tmp_path: object) -> None:
    clock = FakeClock(datetime(2026, 11, 18, 10, 0, tzinfo=UTC))
    out = io.StringIO()
    pipeline = build_pipeline(Settings(rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml"),
                              notifier=ConsoleNotifier(out), clock=clock, engine=engine, model=Negative())

    @seed(20261118)
    @settings(max_examples=40, deadline=None, derandomize=False, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(st.tuples(texts, handles, st.sampled_from(["Lumora", "Lum\u0000ora", "\ud800"])),
                    min_size=1, max_size=6))
    def one_batch(posts: list[tuple[str, str | None, str]]) -> None:
        clock.advance(timedelta(minutes=7))
        batch = [Mention(source="x", source_id=f"fz{next(ids)}\ud800", brand=brand, text=text, author_handle=handle,
                         created_at=clock.now(), url="https://x.com/\x00" + (handle or ""), author_reach=10**12)
                 for text, handle, brand in posts]
        with transaction(engine) as conn:
            before = conn.execute(select(func.count()).select_from(mentions)).scalar_one()
        result = pipeline.poll(Page(batch))
        assert result.problem is None and result.new == len(batch)  # nothing good is lost
        pipeline.run_pass()
        with transaction(engine) as conn:
            after = conn.execute(select(func.count()).select_from(mentions)).scalar_one()
            scored = conn.execute(select(func.count()).select_from(sentiments)).scalar_one()
            assert quarantine_repo.counts(conn) == {}
        assert after == before + len(batch) and scored == after

    one_batch()
    # A 1 MB post, alone: capped at the edge, stored, scored, through the rules.
    huge = Mention(source="x", source_id="huge", brand="Lumora", text="Lumora scam 😡 \u202e" * 70_000,
                   created_at=clock.now())
    assert pipeline.poll(Page([huge])).new == 1
    pipeline.run_pass()
    with transaction(engine) as conn:
        assert conn.execute(select(func.count()).select_from(sentiments)).scalar_one() == \
            conn.execute(select(func.count()).select_from(mentions)).scalar_one()
    out.getvalue().encode("utf-8")  # every alert printed is valid text


@pytest.mark.slow
def test_the_offline_model_scores_any_text() -> None:
    from monitor.classify import load_model

    model = load_model("default")
    samples = ["", "\x00", "\ud800 lone", "👩‍👩‍👧‍👦🇧🇪🏳️‍🌈", "\u202eLumora is terrible\u202c", "مرحبا Lumora سيء",
               "e\u0301" * 500, "Lumora " + "slecht " * 180_000]  # the last one is about 1 MB
    cleaned = [Mention(source="x", source_id=str(i), brand="Lumora", text=t,
                       created_at=datetime(2026, 11, 18, tzinfo=UTC)).text for i, t in enumerate(samples)]
    scores = model.predict(cleaned)
    assert len(scores) == len(samples)
    assert all(abs(s.negative + s.neutral + s.positive - 1) < 1e-3 for s in scores)
