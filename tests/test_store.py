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
