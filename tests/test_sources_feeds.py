"""News feeds (conditional GET, brand filter) and the source-health signal, against a local HTTP server."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine

from monitor.clock import FakeClock
from monitor.models import Severity
from monitor.sources.feeds import FeedSource
from monitor.sources.health import health_signals
from monitor.sources.polling import poll_source
from monitor.sources.resilience import RetryPolicy
from monitor.store import health as health_repo
from monitor.store import transaction
from monitor.store.mentions import get_cursor

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
RSS = "application/rss+xml; charset=utf-8"
ETAG = '"5f1c-48211"'
MODIFIED = "Wed, 18 Nov 2026 07:31:00 GMT"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def make_source(httpserver: HTTPServer, clock: FakeClock, sleeps: list[float] | None = None,
                **kwargs: Any) -> FeedSource:
    options: dict[str, Any] = {
        "brand": "Lumora", "site": "Energienieuws", "url": httpserver.url_for("/feed"),
        "keywords": ["Lumora", "@lumora_be"], "languages": ["nl", "fr", "en"], "reach": 120_000,
        "clock": clock, "timeout": 5,
        "policy": RetryPolicy(attempts=3, initial=0.01, maximum=0.01, jitter=0.0, rate_limit_max_wait=60,
                              sleep=(sleeps if sleeps is not None else []).append),
    }
    options.update(kwargs)
    return FeedSource(**options)


def test_items_naming_the_brand_become_mentions(httpserver: HTTPServer, clock: FakeClock) -> None:
    httpserver.expect_oneshot_request("/feed").respond_with_data(
        fixture("energienieuws.rss"), content_type=RSS, headers={"ETag": ETAG, "Last-Modified": MODIFIED})
    result = make_source(httpserver, clock).poll(None)
    by_id = {m.source_id: m for m in result.mentions}
    # 'LUMORA' in a summary counts; 'Lumoravision' and items without the brand do not.
    assert sorted(by_id) == ["energienieuws-48209", "energienieuws-48211"]
    item = by_id["energienieuws-48211"]
    assert item.source == "news" and item.brand == "Lumora"
    assert item.author_handle == "Energienieuws" and item.author_reach == 120_000 and item.engagement == 0
    assert item.url == "https://www.energienieuws.example/2026/11/18/lumora-voorschotten"
    assert item.created_at == datetime(2026, 11, 18, 7, 30, tzinfo=UTC)
    assert item.language == "nl"  # the feed says nl-BE
    assert item.text == ("Lumora verdubbelt voorschotfacturen: klanten boos\n\nDuizenden klanten van Lumora kregen "
                         "een hoger voorschot. De ombudsman ontving 300 klachten.")
    state = json.loads(result.next_cursor or "{}")
    assert state["etag"] == ETAG and state["modified"] == MODIFIED


def test_etag_and_last_modified_are_sent_back_and_304_changes_nothing(httpserver: HTTPServer,
                                                                       clock: FakeClock) -> None:
    httpserver.expect_oneshot_request("/feed").respond_with_data(
        fixture("energienieuws.rss"), content_type=RSS, headers={"ETag": ETAG, "Last-Modified": MODIFIED})
    source = make_source(httpserver, clock)
    first = source.poll(None)

    httpserver.expect_oneshot_request(
        "/feed", headers={"If-None-Match": ETAG, "If-Modified-Since": MODIFIED}).respond_with_data("", status=304)
    unchanged = source.poll(first.next_cursor)
    assert unchanged.mentions == [] and unchanged.next_cursor == first.next_cursor and unchanged.problem is None

    # A changed feed re-sends old items with the new one: only the new one is delivered.
    changed = fixture("energienieuws.rss").replace("<item>", """<item>
      <title>Lumora belooft terugbetaling van te hoge voorschotten</title>
      <link>https://www.energienieuws.example/2026/11/18/lumora-terugbetaling</link>
      <guid isPermaLink="false">energienieuws-48230</guid>
      <pubDate>Wed, 18 Nov 2026 10:05:00 +0100</pubDate>
    </item>
    <item>""", 1)
    httpserver.expect_oneshot_request("/feed", headers={"If-None-Match": ETAG}).respond_with_data(
        changed, content_type=RSS, headers={"ETag": '"5f1c-48230"'})
    again = source.poll(unchanged.next_cursor)
    assert [m.source_id for m in again.mentions] == ["energienieuws-48230"]
    assert json.loads(again.next_cursor or "{}")["etag"] == '"5f1c-48230"'


def test_atom_feeds_long_ids_and_configured_language(httpserver: HTTPServer, clock: FakeClock) -> None:
    httpserver.expect_oneshot_request("/feed").respond_with_data(fixture("blog.atom"),
                                                                 content_type="application/atom+xml")
    result = make_source(httpserver, clock, site="Blog énergie", language="fr", reach=800).poll(None)
    (item,) = result.mentions
    assert item.text.startswith("Pourquoi les acomptes de Lumora ont doublé")
    assert item.source_id.startswith("sha1:") and len(item.source_id) <= 128  # the id is over 128 characters
    assert item.language == "fr" and item.author_handle == "Blog énergie"


def test_a_503_is_retried(httpserver: HTTPServer, clock: FakeClock) -> None:
    sleeps: list[float] = []
    httpserver.expect_oneshot_request("/feed").respond_with_data("busy", status=503)
    httpserver.expect_oneshot_request("/feed").respond_with_data(fixture("energienieuws.rss"), content_type=RSS)
    result = make_source(httpserver, clock, sleeps).poll(None)
    assert len(result.mentions) == 2 and len(sleeps) == 1 and result.requests == 2  # the retry was a request too


def test_a_long_retry_after_defers_the_feed(httpserver: HTTPServer, engine: Engine, clock: FakeClock) -> None:
    httpserver.expect_oneshot_request("/feed").respond_with_data("slow down", status=429,
                                                                 headers={"Retry-After": "3600"})
    source = make_source(httpserver, clock)
    outcome = poll_source(engine, source, clock.now)
    assert outcome.deferred_until == clock.now() + timedelta(hours=1)
    clock.advance(timedelta(minutes=30))
    assert not poll_source(engine, source, clock.now).ran
    assert len(httpserver.log) == 1


def test_a_page_that_is_not_a_feed_is_one_error_line(httpserver: HTTPServer, engine: Engine, clock: FakeClock,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_oneshot_request("/feed").respond_with_data(fixture("not_a_feed.html"),
                                                                 content_type="text/html")
    with caplog.at_level(logging.WARNING):
        outcome = poll_source(engine, make_source(httpserver, clock), clock.now)
    assert outcome.problem is not None and "not a readable RSS/Atom feed" in outcome.problem
    (line,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert line.exc_info is None and line.getMessage().startswith("news:Lumora:Energienieuws: poll failed (1 in a row)")
    with transaction(engine) as conn:
        assert get_cursor(conn, "news:Lumora:Energienieuws") is None


def test_a_source_failing_too_long_raises_a_health_signal(httpserver: HTTPServer, engine: Engine,
                                                          clock: FakeClock) -> None:
    source = make_source(httpserver, clock)
    started = clock.now()
    for _ in range(5):  # every 30 minutes for two hours, the server errs
        for _attempt in range(3):
            httpserver.expect_oneshot_request("/feed").respond_with_data("oops", status=500)
        poll_source(engine, source, clock.now)
        clock.advance(timedelta(minutes=30))
    with transaction(engine) as conn:
        assert health_signals(conn, [source], started + timedelta(hours=1), timedelta(hours=2)) == []
        (signal,) = health_signals(conn, [source], clock.now(), timedelta(hours=2))
    assert signal.rule == "source-health" and signal.severity is Severity.WARNING and signal.kind == "source"
    assert signal.brand == "Lumora" and signal.group_key == "Lumora|source:news:Lumora:Energienieuws"
    assert signal.mention_ids == () and signal.fired_at == clock.now()
    assert "failing for 2 h 30 min" in signal.reason and "5 polls in a row" in signal.reason
    assert "500" in signal.reason

    httpserver.expect_oneshot_request("/feed").respond_with_data(fixture("energienieuws.rss"), content_type=RSS)
    poll_source(engine, source, clock.now)
    with transaction(engine) as conn:
        assert health_signals(conn, [source], clock.now(), timedelta(hours=2)) == []
        health = health_repo.get(conn, source.name)
    assert health is not None and health.last_success_at == clock.now() and "500" in (health.last_error or "")
