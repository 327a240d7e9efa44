"""The digest's week queries read the indexes made for them (SQLite's query plan), not every row of the week.

Why a plan and not a time: the 1M-mention benchmark (``bench/digest_speed.py``)
went from 2.3 to 1.65 s of CPU because the week's counts and voices are
answered from ``ix_mentions_brand_week`` alone and the week's reviews from
the partial ``ix_mentions_reviews``. A change to a query that reads another
column, or to the indexes, would silently bring the row fetches back; the
plan says so on any machine, loaded or not. Checked on a store that was never
``ANALYZE``d, as a worker's store usually is.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from monitor.digest.figures import build_digest
from monitor.digest.week import IsoWeek
from monitor.models import Mention, Review, SentimentScores
from monitor.store import create_store_engine, migrate, transaction
from monitor.store import mentions as mention_repo

WEEK = IsoWeek(2026, 47, "Europe/Brussels")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    migrate(engine)
    at = WEEK.start + timedelta(hours=10)
    posts = [Mention(source="x", source_id=str(i), brand=("Lumora", "Verdo")[i % 2], text=f"post {i}",
                     created_at=at + timedelta(minutes=i), author_handle=f"user{i % 7}", author_reach=i * 10)
             for i in range(40)]
    reviews = [Mention(source="google_reviews", source_id=f"r{i}", brand="Lumora", text="slow answer",
                       created_at=at + timedelta(hours=i), review=Review(rating=2)) for i in range(3)]
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", posts, None, at)
        mention_repo.store_batch(conn, "google_reviews", reviews, None, at)
        ids = [r.id for r in mention_repo.iter_since(conn, datetime(2026, 1, 1, tzinfo=UTC))]
        mention_repo.save_scores(conn, [(i, SentimentScores(0.7, 0.2, 0.1)) for i in ids], "test-model", "1", at)
    yield engine
    engine.dispose()


def plans(engine: Engine) -> list[tuple[str, str]]:
    """Every SELECT the digest runs on ``mentions``, by its first words, with SQLite's plan for it."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "FROM mentions" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as conn:
            build_digest(conn, WEEK, None)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    out = []
    with engine.connect() as conn:
        for statement, parameters in seen:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            out.append((statement, " / ".join(str(r[-1]) for r in rows)))
    return out


def test_week_counts_and_voices_read_the_covering_index(store: Engine) -> None:
    found = plans(store)
    grouped = [(s, p) for s, p in found if "sentiments" in s]
    assert len(grouped) == 6, found  # the week's counts, four trend weeks, voices
    for statement, plan in grouped:
        assert "COVERING INDEX ix_mentions_brand_" in plan, (statement, plan)
    this_week = [p for s, p in grouped if "mentions.source" in s or "author_handle" in s]
    assert len(this_week) == 2, grouped
    assert all("COVERING INDEX ix_mentions_brand_week" in p for p in this_week), this_week


def test_week_reviews_read_the_partial_index(store: Engine) -> None:
    reviews = [p for s, p in plans(store) if "review_rating IS NOT NULL" in s]
    assert reviews and all("ix_mentions_reviews" in p for p in reviews), reviews
