"""The store's named queries that commands, privacy and Slack call instead of touching tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from monitor.store import mentions as mention_repo
from monitor.store import transaction
from tests.conftest import make_mention

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


def test_stored_since_counts_by_arrival_per_platform_brand_and_site(engine: Engine) -> None:
    with transaction(engine) as conn:
        # An old post arriving now counts (the source is delivering); a recent post stored long ago does not.
        mention_repo.store_batch(conn, "x:Lumora", [make_mention(1, at=NOW - timedelta(days=30)),
                                                    make_mention(2)], None, NOW - timedelta(hours=1))
        mention_repo.store_batch(conn, "x:Lumora", [make_mention(3, at=NOW)], None, NOW - timedelta(hours=25))
        mention_repo.store_batch(conn, "x:Other", [make_mention(4, brand="Other")], None, NOW)
        mention_repo.store_batch(conn, "news:Lumora", [make_mention(5, source="news", author="vrt.be"),
                                                       make_mention(6, source="news", author="hln.be")], None, NOW)
    since = NOW - timedelta(hours=24)
    with transaction(engine) as conn:
        assert mention_repo.count_stored_since(conn, source="x", brand="Lumora", since=since) == 2
        assert mention_repo.count_stored_since(conn, source="x", brand="Other", since=since) == 1
        assert mention_repo.count_stored_since(conn, source="reddit", brand="Lumora", since=since) == 0
        assert mention_repo.count_stored_since(conn, source="news", brand="Lumora", since=since) == 2
        assert mention_repo.count_stored_since(conn, source="news", brand="Lumora", since=since,
                                               author_handle="vrt.be") == 1
