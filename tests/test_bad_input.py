"""Odd posts are processed or skipped with a reason, never a crash: empty, huge, emoji, mixed scripts, nulls."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from monitor.app import build_pipeline
from monitor.clock import FakeClock
from monitor.notify import ConsoleNotifier
from monitor.settings import Settings
from monitor.sources import ReplaySource
from monitor.store import transaction
from monitor.store.tables import mentions, sentiments
from tests.conftest import ROOT

BASE = {"source": "x", "brand": "Lumora", "created_at": "2026-11-18T10:00:00Z", "author_reach": 10}


def line(i: int, **fields: object) -> str:
    return json.dumps({**BASE, "source_id": str(i), **fields}, ensure_ascii=False)


def test_odd_posts_are_scored_or_skipped_with_a_reason(engine: Engine, clock: FakeClock, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    feed = tmp_path / "odd.jsonl"
    feed.write_text("\n".join([
        line(1, text="😡😡😡 🤬"),  # only emoji
        line(2, text="Lumora " + "zeer slecht " * 4500),  # about 50 KB
        line(3, text="Lumora Привет мир 你好 service nul مرحبا"),  # mixed scripts
        line(4, text="Lumora ok", url=None, author_handle=None, language=None, engagement=None,
             conversation_id=None, author_reach=None),  # null optional fields
        line(5, text="   "),  # blank text: nothing to judge, stored and scored neutral-ish
        line(6, text=None),  # null text: skipped
        line(7),  # no text at all: skipped
        '{"source": "x", "source_id": "8", "brand": "Lumora", "text": "trunc',  # truncated JSON
        "[1, 2, 3]",  # not an object
        line(10, text="ok", created_at="yesterday"),  # bad time
        line(11, text="ok", author_reach="lots"),  # bad number
    ]) + "\n", encoding="utf-8")
    settings = Settings(rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml")
    pipeline = build_pipeline(settings, notifier=ConsoleNotifier(io.StringIO()), clock=clock, engine=engine)
    source = ReplaySource(feed, name="odd")
    with caplog.at_level(logging.WARNING):
        stats = pipeline.poll(source)
        pipeline.run_pass()
    assert len(stats.skipped) == 6
    with transaction(engine) as conn:
        stored = dict(conn.execute(select(mentions.c.source_id, mentions.c.text)).all())
        scored = conn.execute(select(sentiments.c.mention_id)).all()
    assert sorted(stored) == ["1", "2", "3", "4", "5"]
    assert len(scored) == 5
    warnings = "\n".join(r.getMessage() for r in caplog.records)
    for n in (6, 7, 8, 9, 10, 11):
        assert f"odd.jsonl:{n}: skipped" in warnings
    assert "created_at" in warnings and "author_reach" in warnings
