"""The X source: the real tweepy client against recorded and invented API responses (``responses``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses.registries import OrderedRegistry
from sqlalchemy import Engine

from monitor.clock import FakeClock
from monitor.sources.base import PollResult
from monitor.sources.polling import poll_source
from monitor.sources.resilience import RetryPolicy
from monitor.sources.x import XCursor, XSource, mentions_from_page, snowflake_time
from monitor.store import health as health_repo
from monitor.store import transaction
from monitor.store.mentions import count_mentions, get_cursor, get_mentions
from tests.conftest import shared_data
from tests.fixtures.cassettes import load

FIXTURES = Path(__file__).parent / "fixtures" / "x"
SEARCH = "https://api.twitter.com/2/tweets/search/recent"
TOKEN = "AAAAAAAAAAAAAAAAAAAAAtest-bearer-token-0123456789"


def page(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_source(clock: FakeClock, sleeps: list[float], **kwargs: Any) -> XSource:
    options: dict[str, Any] = {"brand": "Lumora", "query": '"Lumora" OR @lumora_be -is:retweet',
                               "languages": ["nl", "fr", "en"], "clock": clock,
                               "policy": RetryPolicy(attempts=3, initial=0.01, maximum=0.02, jitter=0.0,
                                                     rate_limit_max_wait=60, sleep=sleeps.append)}
    options.update(kwargs)
    return XSource.with_token(TOKEN, timeout=5, **options)


def params(call: Any) -> dict[str, str]:
    return dict(call.request.params)


# --- normalisation --------------------------------------------------------------------------------

def test_a_page_becomes_mentions_with_reach_engagement_url_and_language() -> None:
    result = mentions_from_page(page("search_page1.json"), brand="Lumora", languages=["nl", "fr", "en"])
    by_id = {m.source_id: m for m in result.mentions}
    first = by_id["2122990000000000005"]
    assert first.source == "x" and first.brand == "Lumora"
    assert first.author_handle == "jan_peeters_gent"
    assert first.author_reach == 1240  # followers_count
    assert first.engagement == 4 + 2 + 11 + 1  # retweets, replies, likes, quotes (not impressions)
    assert first.url == "https://x.com/jan_peeters_gent/status/2122990000000000005"
    assert first.language == "nl"
    assert first.created_at == datetime(2026, 11, 18, 9, 12, 40, tzinfo=UTC)
    assert by_id["2122990000000000003"].conversation_id == "2122990000000000005"
    assert by_id["2122990000000000003"].language is None  # 'de' is not expected: our detector decides
    assert result.next_token == "b26v89c19zqg8o3fpage2"
    assert result.newest_id == 2122990000000000005


def test_a_malformed_tweet_is_skipped_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        result = mentions_from_page(page("search_page2.json"), brand="Lumora", languages=["en"], where="p2")
    assert [m.source_id for m in result.mentions] == ["2122990000000000002"]
    assert len(result.skipped) == 1 and "2122990000000000001 has no text" in result.skipped[0]
    assert [r.getMessage() for r in caplog.records] == result.skipped


def test_odd_inputs_never_raise() -> None:
    assert mentions_from_page("nonsense", brand="B").skipped
    assert mentions_from_page({"data": "oops"}, brand="B").skipped
    assert mentions_from_page({"errors": [{"title": "Invalid Request"}]}, brand="B").skipped
    assert not mentions_from_page({"meta": {"result_count": 0}}, brand="B").skipped
    lone = mentions_from_page({"id": "2122990000000000005", "text": "Lumora"}, brand="B")
    assert lone.mentions[0].url == "https://x.com/i/web/status/2122990000000000005"  # no username known
    assert lone.mentions[0].created_at == snowflake_time("2122990000000000005")


def test_snowflake_time_matches_created_at() -> None:
    # The recorded brexit page: every tweet's id encodes its created_at.
    tweet = {"id": "1440716895355764743", "created_at": "2021-09-22T16:37:29.000Z"}
    assert abs(snowflake_time(tweet["id"]) - datetime(2021, 9, 22, 16, 37, 29, tzinfo=UTC)) < timedelta(seconds=1)


# --- polling --------------------------------------------------------------------------------------

def test_poll_pages_through_with_the_documented_parameters(rsps: responses.RequestsMock, clock: FakeClock,
                                                           sleeps: list[float]) -> None:
    rsps.get(SEARCH, json=page("search_page1.json"))
    rsps.get(SEARCH, json=page("search_page2.json"))
    result = make_source(clock, sleeps).poll("2122989999999999999")
    assert isinstance(result, PollResult) and result.requests == 2
    assert [m.source_id for m in result.mentions] == ["2122990000000000005", "2122990000000000004",
                                                      "2122990000000000003", "2122990000000000002"]
    assert len(result.skipped) == 1
    assert result.next_cursor == "2122990000000000005" and result.requests == 2 and result.problem is None
    first, second = params(rsps.calls[0]), params(rsps.calls[1])
    assert first["query"] == '"Lumora" OR @lumora_be -is:retweet'
    assert first["since_id"] == "2122989999999999999"
    assert first["max_results"] == "100"
    assert first["expansions"] == "author_id"
    assert set(first["tweet.fields"].split(",")) == {"created_at", "lang", "public_metrics", "conversation_id",
                                                      "author_id"}
    assert set(first["user.fields"].split(",")) == {"public_metrics", "username"}
    assert "next_token" not in first
    assert second["next_token"] == "b26v89c19zqg8o3fpage2" and second["since_id"] == "2122989999999999999"
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_nothing_new_keeps_the_cursor(rsps: responses.RequestsMock, clock: FakeClock, sleeps: list[float]) -> None:
    rsps.get(SEARCH, json=page("search_empty.json"))
    result = make_source(clock, sleeps).poll("2122990000000000005")
    assert result.mentions == [] and result.next_cursor == "2122990000000000005"


def test_a_short_rate_limit_is_waited_out(rsps: responses.RequestsMock, clock: FakeClock,
                                          sleeps: list[float]) -> None:
    reset = int((clock.now() + timedelta(seconds=20)).timestamp())
    rsps.get(SEARCH, status=429, json={"title": "Too Many Requests", "status": 429},
             headers={"x-rate-limit-limit": "450", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)})
    rsps.get(SEARCH, json=page("search_page2.json"))
    result = make_source(clock, sleeps).poll("2122989999999999999")
    assert [m.source_id for m in result.mentions] == ["2122990000000000002"]
    assert result.problem is None and result.deferred_until is None and result.requests == 2
    assert sleeps == [pytest.approx(21.0)]  # reset - now, plus one second; injected, nobody waited


def test_a_long_rate_limit_defers_the_source_and_keeps_the_cursor(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    with transaction(engine) as conn:
        from monitor.store.mentions import set_cursor
        set_cursor(conn, "x:Lumora", "2122989999999999999", clock.now())
    reset_at = clock.now() + timedelta(minutes=14)
    rsps.get(SEARCH, status=429, json={"title": "Too Many Requests"},
             headers={"x-rate-limit-reset": str(int(reset_at.timestamp()))})
    source = make_source(clock, sleeps)

    outcome = poll_source(engine, source, clock.now)
    assert outcome.deferred_until == reset_at and sleeps == []
    with transaction(engine) as conn:
        assert get_cursor(conn, "x:Lumora") == "2122989999999999999"
        health = health_repo.get(conn, "x:Lumora")
    assert health is not None and health.deferred_until == reset_at
    assert "rate limited" in (health.last_error or "") and health.consecutive_failures == 1

    clock.advance(timedelta(minutes=5))  # before the reset: skipped without a request
    skipped = poll_source(engine, source, clock.now)
    assert not skipped.ran and len(rsps.calls) == 1

    clock.set(reset_at + timedelta(seconds=1))
    rsps.get(SEARCH, json=page("search_page2.json"))
    after = poll_source(engine, source, clock.now)
    assert after.ran and after.new == 1 and len(rsps.calls) == 2
    assert params(rsps.calls[1])["since_id"] == "2122989999999999999"
    with transaction(engine) as conn:
        health = health_repo.get(conn, "x:Lumora")
    assert health is not None and health.consecutive_failures == 0 and health.deferred_until is None


def test_a_503_is_retried_with_backoff(rsps: responses.RequestsMock, clock: FakeClock, sleeps: list[float]) -> None:
    rsps.get(SEARCH, status=503, json={"title": "Service Unavailable"})
    rsps.get(SEARCH, body=requests.exceptions.ConnectionError("connection reset by peer"))
    rsps.get(SEARCH, json=page("search_page2.json"))
    result = make_source(clock, sleeps).poll("2122989999999999999")
    assert [m.source_id for m in result.mentions] == ["2122990000000000002"]
    assert len(sleeps) == 2 and all(s < 1 for s in sleeps)
    assert result.requests == 3


def test_persistent_failure_is_one_log_line_and_recorded(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float],
        caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(3):
        rsps.get(SEARCH, status=503, json={"title": "Service Unavailable"})
    with caplog.at_level(logging.DEBUG):
        outcome = poll_source(engine, make_source(clock, sleeps), clock.now)
    assert outcome.problem is not None and "503" in outcome.problem
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None and "\n" not in errors[0].getMessage()
    assert TOKEN not in caplog.text  # tweepy's DEBUG lines carry the header: redacted
    with transaction(engine) as conn:
        health = health_repo.get(conn, "x:Lumora")
        assert get_cursor(conn, "x:Lumora") is None
    assert health is not None and health.consecutive_failures == 1 and "503" in (health.last_error or "")


def test_a_rejected_token_never_reaches_logs_or_the_store(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float],
        caplog: pytest.LogCaptureFixture) -> None:
    rsps.get(SEARCH, status=401, json={"title": "Unauthorized", "detail": f"Bearer {TOKEN} is not valid"})
    with caplog.at_level(logging.DEBUG):
        poll_source(engine, make_source(clock, sleeps), clock.now)
    with transaction(engine) as conn:
        health = health_repo.get(conn, "x:Lumora")
    assert health is not None and "Unauthorized" in (health.last_error or "")
    assert TOKEN not in (health.last_error or "") and TOKEN not in caplog.text


def test_a_malformed_page_is_skipped_without_losing_the_others(
        rsps: responses.RequestsMock, clock: FakeClock, sleeps: list[float], caplog: pytest.LogCaptureFixture) -> None:
    first = page("search_page1.json")
    rsps.get(SEARCH, json=first)
    rsps.get(SEARCH, json={"data": {"not": "a tweet"}, "meta": {"next_token": "page3"}})
    rsps.get(SEARCH, json=page("search_page2.json"))
    with caplog.at_level(logging.WARNING, logger="monitor.sources.x"):
        result = make_source(clock, sleeps).poll("2122989999999999999")
    assert {m.source_id for m in result.mentions} == {"2122990000000000005", "2122990000000000004",
                                                      "2122990000000000003", "2122990000000000002"}
    assert len(result.skipped) == 2  # the malformed page's object and the tweet without text
    assert params(rsps.calls[2])["next_token"] == "page3"
    assert all("\n" not in r.getMessage() for r in caplog.records)


def test_a_restart_resumes_from_the_stored_cursor_without_redelivery(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    rsps.get(SEARCH, json=page("search_page1.json"))
    rsps.get(SEARCH, json=page("search_page2.json"))
    first = poll_source(engine, make_source(clock, sleeps), clock.now)
    assert first.new == 4

    # A new process: new client, same store.
    clock.advance(timedelta(minutes=5))
    rsps.get(SEARCH, json=page("search_newer.json"))
    second = poll_source(engine, make_source(clock, sleeps), clock.now)
    assert params(rsps.calls[2])["since_id"] == "2122990000000000005"
    assert second.fetched == 2 and second.new == 2
    with transaction(engine) as conn:
        assert count_mentions(conn) == 6
        assert get_cursor(conn, "x:Lumora") == "2122990000000000007"
        hashtags_only = [sm for sm in get_mentions(conn, list(range(1, 7)))
                         if sm.mention.source_id == "2122990000000000006"]
    assert hashtags_only[0].mention.language is None  # 'qht' (hashtags only) is never a language


def test_a_backlog_continues_on_the_next_poll_without_a_gap(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    with transaction(engine) as conn:
        from monitor.store.mentions import set_cursor
        set_cursor(conn, "x:Lumora", "2122989999999999999", clock.now())
    rsps.get(SEARCH, json=page("search_page1.json"))
    poll_source(engine, make_source(clock, sleeps, max_pages=1), clock.now)
    with transaction(engine) as conn:
        state = XCursor.parse(get_cursor(conn, "x:Lumora"))
    assert state == XCursor(since_id="2122989999999999999", next_token="b26v89c19zqg8o3fpage2",
                            newest_id="2122990000000000005")

    rsps.get(SEARCH, json=page("search_page2.json"))
    poll_source(engine, make_source(clock, sleeps, max_pages=1), clock.now)  # after a restart, too
    resumed = params(rsps.calls[1])
    assert resumed["since_id"] == "2122989999999999999" and resumed["next_token"] == "b26v89c19zqg8o3fpage2"
    with transaction(engine) as conn:
        assert get_cursor(conn, "x:Lumora") == "2122990000000000005"  # caught up: newest id received
        assert count_mentions(conn) == 4


def test_the_daily_budget_survives_a_restart_and_renews_at_midnight_utc(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    with transaction(engine) as conn:
        from monitor.store.mentions import set_cursor
        set_cursor(conn, "x:Lumora", "2122989999999999999", clock.now())
    rsps.get(SEARCH, json=page("search_page1.json"))
    first = poll_source(engine, make_source(clock, sleeps, daily_budget=1), clock.now)
    assert first.requests == 1 and len(rsps.calls) == 1  # page 2 exists but the budget says stop
    with transaction(engine) as conn:
        health = health_repo.get(conn, "x:Lumora")
    assert health is not None and health.budget_used == 1 and health.consecutive_failures == 0

    clock.advance(timedelta(minutes=5))
    spent = poll_source(engine, make_source(clock, sleeps, daily_budget=1), clock.now)  # a restarted worker
    assert not spent.ran and spent.deferred_until == datetime(2026, 11, 19, tzinfo=UTC)
    assert len(rsps.calls) == 1

    clock.set(datetime(2026, 11, 19, 0, 0, 30, tzinfo=UTC))
    rsps.get(SEARCH, json=page("search_page2.json"))
    renewed = poll_source(engine, make_source(clock, sleeps, daily_budget=1), clock.now)
    assert renewed.ran and renewed.new == 1
    assert params(rsps.calls[1])["next_token"] == "b26v89c19zqg8o3fpage2"


def test_an_expired_cursor_starts_again_from_the_newest_posts(
        rsps: responses.RequestsMock, clock: FakeClock, sleeps: list[float]) -> None:
    rsps.get(SEARCH, status=400, json={"errors": [{"parameters": {"since_id": ["1"]}, "message":
                                                   "Invalid 'since_id':'1'. 'since_id' must be a tweet id created "
                                                   "after 2026-11-11T10:00Z."}], "title": "Invalid Request"})
    rsps.get(SEARCH, json=page("search_newer.json"))
    result = make_source(clock, sleeps).poll("1")
    assert "since_id" not in params(rsps.calls[1])
    assert result.next_cursor == "2122990000000000007" and len(result.mentions) == 2


# --- the recorded responses of the real API ------------------------------------------------------

@pytest.mark.shared_data
def test_the_recorded_tweepy_cassette_parses(rsps: responses.RequestsMock, clock: FakeClock,
                                             sleeps: list[float]) -> None:
    (recorded,) = load(shared_data("api", "x", "tweepy_cassette_search_recent_tweets.yaml"))
    headers = {k: v for k, v in recorded.headers.items() if k.lower() != "content-type"}
    rsps.get(SEARCH, body=recorded.body, status=recorded.status, headers=headers,
             content_type=recorded.headers["Content-Type"])
    source = make_source(clock, sleeps, max_pages=1, brand="Tweepy", languages=["en"])
    result = source.poll(None)
    assert len(result.mentions) == 10 and not result.skipped
    # Default fields only: no created_at, no author. The id still dates the post; the URL still works.
    assert all(m.created_at.date() == datetime(2022, 10, 7).date() for m in result.mentions)
    assert all(m.url == f"https://x.com/i/web/status/{m.source_id}" for m in result.mentions)
    assert result.next_cursor == "1578522194770296832"


@pytest.mark.shared_data
def test_the_recorded_brexit_page_parses_through_the_live_source(rsps: responses.RequestsMock, clock: FakeClock,
                                                                 sleeps: list[float]) -> None:
    line = shared_data("api", "x", "recent_search_brexit.jsonl").read_text(encoding="utf-8").splitlines()[0]
    recorded = json.loads(line)
    rsps.get(SEARCH, json=recorded)
    result = make_source(clock, sleeps, max_pages=1, brand="Brexit", languages=["en", "de"]).poll(None)
    assert len(result.mentions) == 100 and not result.skipped
    assert all(m.author_handle and m.url and m.url.startswith(f"https://x.com/{m.author_handle}/status/")
               for m in result.mentions)
    assert sum(m.author_reach > 0 for m in result.mentions) > 90
    assert {m.language for m in result.mentions} == {"en", "de", None}
    # The same page through the importer's path gives identical mentions.
    assert mentions_from_page(recorded, brand="Brexit", languages=["en", "de"]).mentions == result.mentions
