"""The store: migrations, deduplication, cursors moving with their data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from monitor.models import SentimentScores
from monitor.store import mentions as repo
from monitor.store import migrate, transaction
from monitor.store.tables import metadata
from tests.conftest import make_mention

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


def test_migrations_match_the_table_definitions(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert {"mentions", "sentiments", "cursors", "incidents", "outbox", "alembic_version"} <= set(
        inspect(engine).get_table_names())


def test_migrate_twice_is_harmless(engine: Engine) -> None:
    migrate(engine)
    with transaction(engine) as conn:
        assert repo.count_mentions(conn) == 0


def test_duplicates_are_stored_once_and_cursor_advances(engine: Engine) -> None:
    batch = [make_mention(1), make_mention(2), make_mention(1, text="same id, other text")]
    with transaction(engine) as conn:
        assert repo.store_batch(conn, "x", batch, "cursor-2", NOW) == 2
    with transaction(engine) as conn:
        assert repo.store_batch(conn, "x", [make_mention(2), make_mention(3)], "cursor-3", NOW) == 1
        assert repo.get_cursor(conn, "x") == "cursor-3"
        assert repo.count_mentions(conn) == 3
    # The same source_id on another platform is another post.
    with transaction(engine) as conn:
        assert repo.store_batch(conn, "reddit", [make_mention(1, source="reddit")], None, NOW) == 1


def test_cursor_never_moves_without_its_mentions(engine: Engine) -> None:
    with transaction(engine) as conn:
        repo.store_batch(conn, "x", [make_mention(1)], "c1", NOW)
    with pytest.raises(RuntimeError), transaction(engine) as conn:
        repo.store_batch(conn, "x", [make_mention(2)], "c2", NOW)
        raise RuntimeError("crash before commit")
    with transaction(engine) as conn:
        assert repo.get_cursor(conn, "x") == "c1"
        assert repo.count_mentions(conn) == 1


def test_times_round_trip_as_aware_utc(engine: Engine) -> None:
    brussels = datetime(2026, 11, 18, 21, 40, tzinfo=UTC) + timedelta(0)
    with transaction(engine) as conn:
        repo.store_batch(conn, "x", [make_mention(1, at=brussels)], None, NOW)
        rows = repo.unscored(conn, 10)
        repo.save_scores(conn, [(rows[0].id, SentimentScores(0.7, 0.2, 0.1))], "m", "v1", NOW)
        [stored] = repo.undetected(conn, 10)
    assert stored.mention.created_at == brussels
    assert stored.mention.created_at.tzinfo is not None
    assert stored.sentiment == SentimentScores(0.7, 0.2, 0.1)


def test_identical_texts_reuse_scores_of_the_same_model(engine: Engine) -> None:
    with transaction(engine) as conn:
        repo.store_batch(conn, "x", [make_mention(1, text="Lumora  IS terrible")], None, NOW)
        [row] = repo.unscored(conn, 10)
        repo.save_scores(conn, [(row.id, SentimentScores(0.8, 0.1, 0.1))], "m", "v1", NOW)
        # Whitespace and case do not make a copy a new text.
        h = repo.text_hash("lumora is   terrible")
        assert repo.cached_scores(conn, [h], "m", "v1") == {h: SentimentScores(0.8, 0.1, 0.1)}
        assert repo.cached_scores(conn, [h], "m", "v2") == {}


def test_undetected_is_in_event_time_order(engine: Engine) -> None:
    t0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    with transaction(engine) as conn:
        repo.store_batch(conn, "x", [make_mention(1, at=t0 + timedelta(minutes=5)), make_mention(2, at=t0)], None,
                         NOW)
        rows = repo.unscored(conn, 10)
        repo.save_scores(conn, [(r.id, SentimentScores(0.1, 0.8, 0.1)) for r in rows], "m", "v", NOW)
        found = repo.undetected(conn, 10)
        assert [s.mention.source_id for s in found] == ["2", "1"]
        repo.mark_detected(conn, [found[0].id], NOW)
        assert [s.mention.source_id for s in repo.undetected(conn, 10)] == ["1"]


def test_a_database_error_does_not_quote_post_text(engine: Engine) -> None:
    """Error messages reach the logs; the statement's parameters (post text, handles) must not."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from monitor.store.tables import mentions

    secret = "Ik ben Jan Peeters en mijn adres is Kerkstraat 12"
    row = {"source": "x", "source_id": "1", "brand": "Lumora", "text": secret, "author_handle": "jan_peeters"}
    with pytest.raises(IntegrityError) as info, transaction(engine) as conn:
        conn.execute(insert(mentions).values(**row))  # required columns missing
    assert secret not in str(info.value)
    assert "jan_peeters" not in str(info.value)
    assert "hidden due to hide_parameters" in str(info.value)
    assert "null" in str(info.value).lower()  # the message still says what went wrong


def test_a_post_reads_back_as_it_was_stored_by_every_query(engine: Engine) -> None:
    """Rows come back through ``Mention.from_store`` (not cleaned again) with their times converted by the
    column's own reader: every query gives back the mention that was stored, times aware UTC, a review's too."""
    from dataclasses import replace

    from monitor.models import Review

    at = datetime(2026, 11, 18, 9, 30, 15, 250, tzinfo=UTC)
    review = Review(rating=2, reply="Sorry", reply_at=at + timedelta(hours=1), edited_at=at + timedelta(hours=2),
                    answer_url="https://g.page/r/1")
    posts = [make_mention(1, at=at, text="dirty\x00 text\r\nhere", language=None),
             replace(make_mention(2, at=at + timedelta(minutes=1)), review=review)]
    with transaction(engine) as conn:
        repo.store_batch(conn, "x", posts, None, NOW)
        [first, second] = repo.unscored(conn, 10)
        repo.save_scores(conn, [(first.id, SentimentScores(0.7, 0.2, 0.1))], "m", "v1", NOW)
        read = {
            "iter_since": list(repo.iter_since(conn, at - timedelta(days=1))),
            "get_mentions": repo.get_mentions(conn, [first.id, second.id]),
            "undetected": repo.undetected(conn, 10),  # scored ones only
        }
    assert posts[0].text == "dirty text\nhere"  # cleaned once, at the edge
    for query, found in read.items():
        assert [sm.mention for sm in found] == posts[: len(found)], query
        for sm in found:
            assert sm.mention.created_at.tzinfo is UTC, query
    [scored_only] = read["undetected"]
    assert scored_only.sentiment == SentimentScores(0.7, 0.2, 0.1)
    assert read["iter_since"][1].sentiment is None
    stored_review = read["iter_since"][1].mention.review
    assert stored_review == review and stored_review is not None and stored_review.reply_at is not None
    assert stored_review.reply_at.tzinfo is UTC


def test_sqlite_time_text_in_another_shape_still_reads(tmp_path: object) -> None:
    """SQLite keeps times as text; a value not written by SQLAlchemy (no fraction, a 'T') reads the same."""
    from pathlib import Path

    from sqlalchemy import text

    from monitor.store import create_store_engine

    assert isinstance(tmp_path, Path)
    sqlite = create_store_engine(f"sqlite:///{tmp_path / 's.db'}")
    migrate(sqlite)
    with transaction(sqlite) as conn:
        repo.store_batch(conn, "x", [make_mention(1), make_mention(2)], None, NOW)
        conn.execute(text("UPDATE mentions SET created_at = '2026-11-18 09:00:00' WHERE source_id = '1'"))
        conn.execute(text("UPDATE mentions SET created_at = '2026-11-18T09:05:00.5' WHERE source_id = '2'"))
        found = list(repo.iter_since(conn, datetime(2026, 11, 1, tzinfo=UTC)))
    assert [sm.mention.created_at for sm in found] == [datetime(2026, 11, 18, 9, 0, tzinfo=UTC),
                                                       datetime(2026, 11, 18, 9, 5, 0, 500000, tzinfo=UTC)]
    sqlite.dispose()
