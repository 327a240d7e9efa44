"""Shared fixtures: a migrated store, a fake clock, and mention builders."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from monitor.clock import FakeClock
from monitor.models import Mention, SentimentScores, StoredMention
from monitor.store import create_store_engine, migrate
from tests.pg import postgres_database

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip: a user's checkout has no shared folder."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared is absent)")
    return path


# One level, open day and night: for tests about data, not about routing.
ALWAYS_OPEN_ESCALATION = """
timezone: Europe/Brussels
business_hours: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
grouping: {window: 1h}
responders:
  sofie: {name: Sofie, slack: U0SOFIE01}
policies:
  - name: normal
    after_hours: page
    levels:
      - {notify: [sofie], channel: "#alerts", ack_within: 15m}
"""

PG_ADMIN_URL = os.environ.get("MONITOR_TEST_PG_URL")  # e.g. postgresql+psycopg://postgres@127.0.0.1:54329/postgres


@contextmanager
def database_url(kind: str, folder: Path) -> Iterator[str]:
    """A fresh, empty database of this kind; PostgreSQL ones are dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'test.db'}"
        return
    if not PG_ADMIN_URL:
        pytest.skip("PostgreSQL not configured (set MONITOR_TEST_PG_URL; .ci/run does)")
    with postgres_database(PG_ADMIN_URL, f"monitor_test_{uuid.uuid4().hex[:12]}") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every store-backed test runs on SQLite, and on PostgreSQL when CI provides one."""
    with database_url(request.param, tmp_path) as url:
        yield url


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
