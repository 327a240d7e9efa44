"""Shared fixtures: a migrated store, a fake clock, and mention builders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from monitor.clock import FakeClock
from monitor.models import Mention, SentimentScores, StoredMention
from monitor.store import create_store_engine, migrate

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip: a user's checkout has no shared folder."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared is absent)")
    return path


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    # MONITOR_TEST_DB_URL points the store tests at PostgreSQL in CI; SQLite otherwise.
    return os.environ.get("MONITOR_TEST_DB_URL") or f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_store_engine(db_url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 18, 10, 0, tzinfo=UTC))


def make_mention(i: int = 1, *, text: str = "Lumora is terrible", brand: str = "Lumora", source: str = "x",
                 at: datetime | None = None, reach: int = 100, engagement: int = 0, language: str | None = "en",
                 author: str | None = None, conversation: str | None = None) -> Mention:
    return Mention(source=source, source_id=str(i), brand=brand, text=text,
                   created_at=at or datetime(2026, 11, 18, 10, 0, tzinfo=UTC),
                   url=f"https://x.com/u/status/{i}", author_handle=author or f"user{i}", author_reach=reach,
                   engagement=engagement, language=language, conversation_id=conversation)


def scored(mention: Mention, negative: float, mention_id: int | None = None) -> StoredMention:
    rest = 1.0 - negative
    return StoredMention(id=mention_id if mention_id is not None else int(mention.source_id), mention=mention,
                         sentiment=SentimentScores(negative, rest * 0.6, rest * 0.4))
