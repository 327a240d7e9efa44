"""Faults the X API really produces: timeouts and truncated JSON are retried or skipped, never a crash."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests
import responses
from sqlalchemy import Engine

from monitor.clock import FakeClock
from monitor.sources.polling import poll_source
from monitor.store import health as health_repo
from monitor.store import transaction
from monitor.store.mentions import count_mentions, get_cursor
from tests.test_sources_x import SEARCH, make_source, page, rsps, sleeps  # noqa: F401  (fixtures)


def test_timeouts_are_retried_then_the_page_arrives(rsps: responses.RequestsMock, clock: FakeClock,  # noqa: F811
                                                    sleeps: list[float]) -> None:  # noqa: F811
    rsps.get(SEARCH, body=requests.exceptions.ReadTimeout("read timed out"))
    rsps.get(SEARCH, body=requests.exceptions.ConnectTimeout("connect timed out"))
    rsps.get(SEARCH, json=page("search_page2.json"))
    result = make_source(clock, sleeps).poll("2122989999999999999")
    assert [m.source_id for m in result.mentions] == ["2122990000000000002"]
    assert len(sleeps) == 2


@pytest.mark.parametrize("body", ['{"data": [{"id": "2122990000000000009", "text": "Lumora', "<html>502</html>", ""])
def test_truncated_or_non_json_answers_are_one_line_and_keep_the_cursor(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float],  # noqa: F811
        caplog: pytest.LogCaptureFixture, body: str) -> None:
    for _ in range(3):
        rsps.get(SEARCH, body=body, content_type="application/json")
    with transaction(engine) as conn:
        from monitor.store.mentions import set_cursor

        set_cursor(conn, "x:Lumora", "2122989999999999999", clock.now())
    with caplog.at_level(logging.WARNING):
        outcome: Any = poll_source(engine, make_source(clock, sleeps), clock.now)
    assert outcome.problem is not None
    assert all("Traceback" not in r.getMessage() and r.exc_info is None for r in caplog.records)
    with transaction(engine) as conn:
        assert get_cursor(conn, "x:Lumora") == "2122989999999999999"
        assert count_mentions(conn) == 0
        health = health_repo.get(conn, "x:Lumora")
    assert health is not None and health.consecutive_failures == 1
