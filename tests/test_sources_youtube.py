"""The YouTube source: the real google-api-python-client (bundled discovery document) against a local server.

Answers follow the documented shapes of ``commentThreads.list`` and ``search.list`` and of the
API's error body (``error.errors[].reason``: ``quotaExceeded``, ``rateLimitExceeded``).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine
from werkzeug import Request, Response

from monitor.clock import FakeClock
from monitor.sources.polling import poll_source
from monitor.sources.resilience import RetryPolicy
from monitor.sources.youtube import YouTubeSource, mentions_from_thread, next_quota_reset
from monitor.store import health as health_repo
from monitor.store import transaction
from monitor.store.mentions import count_mentions, get_cursor, set_cursor

KEY = "AIzaSyTESTKEY0123456789abcdefghijklmno"
CHANNEL = "UCmonitorLumora0123456789"[:2] + "x" * 22
THREADS = "/youtube/v3/commentThreads"
SEARCH = "/youtube/v3/search"


def comment(cid: str, minute: int, text: str = "Lumora, waar blijft mijn terugbetaling?", **extra: Any
            ) -> dict[str, Any]:
    snippet = {"videoId": "vid1", "textDisplay": text, "textOriginal": text, "authorDisplayName": f"@kijker{cid}",
               "likeCount": 2, "publishedAt": f"2026-11-18T09:{minute:02d}:00Z",
               "updatedAt": f"2026-11-18T09:{minute:02d}:00Z"}
    snippet.update(extra)
    return {"kind": "youtube#comment", "id": cid, "snippet": snippet}


def thread(cid: str, minute: int, replies: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "youtube#commentThread", "id": cid, "snippet": {
        "channelId": CHANNEL, "videoId": "vid1", "topLevelComment": comment(cid, minute, **extra),
        "canReply": True, "totalReplyCount": len(replies or []), "isPublic": True}}
    if replies:
        body["replies"] = {"comments": replies}
    return body


def page(*threads: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "youtube#commentThreadListResponse", "items": list(threads),
                            "pageInfo": {"totalResults": len(threads), "resultsPerPage": 100}}
    if token:
        body["nextPageToken"] = token
    return body


def error(status: int, reason: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": reason, "errors": [{"message": reason, "domain": "youtube.quota",
                                                                     "reason": reason}]}}


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_source(httpserver: HTTPServer, clock: FakeClock, sleeps: list[float], **kwargs: Any) -> YouTubeSource:
    options: dict[str, Any] = {
        "brand": "Lumora", "api_key": KEY, "channel_id": CHANNEL, "search": None,
        "api_root": httpserver.url_for("/").rstrip("/"), "clock": clock, "timeout": 5,
        "policy": RetryPolicy(attempts=3, initial=0.01, maximum=0.02, jitter=0.0, sleep=sleeps.append),
    }
    options.update(kwargs)
    return YouTubeSource(**options)


def calls(httpserver: HTTPServer, path: str) -> list[dict[str, str]]:
    return [dict(req.args) for req, _ in httpserver.log if req.path == path]


def test_a_thread_and_its_replies_become_mentions() -> None:
    reply = comment("r1", 5, "Zelfde hier", parentId="c1")
    top, rep = mentions_from_thread(thread("c1", 4, [reply, comment("r2", 6, "")]), brand="Lumora")
    assert top.source == "youtube" and top.source_id == "c1" and top.engagement == 2 + 2
    assert top.url == "https://www.youtube.com/watch?v=vid1&lc=c1" and top.author_handle == "@kijkerc1"
    assert top.author_reach == 0 and top.created_at == datetime(2026, 11, 18, 9, 4, tzinfo=UTC)
    assert rep.conversation_id == "c1" and rep.text == "Zelfde hier"  # the removed reply r2 is left out


def test_first_poll_then_incremental_with_paging(httpserver: HTTPServer, clock: FakeClock,
                                                 sleeps: list[float]) -> None:
    httpserver.expect_oneshot_request(THREADS).respond_with_json(page(thread("c2", 2), thread("c1", 1), token="p2"))
    source = make_source(httpserver, clock, sleeps)
    first = source.poll(None, requests_left=10_000)
    assert [m.source_id for m in first.mentions] == ["c2", "c1"] and first.requests == 1
    (params,) = calls(httpserver, THREADS)
    assert params["allThreadsRelatedToChannelId"] == CHANNEL and params["key"] == KEY
    assert params["part"] == "snippet,replies" and params["order"] == "time" and "pageToken" not in params
    assert json.loads(first.next_cursor or "")["comments_since"] == "2026-11-18T09:02:00+00:00"

    httpserver.expect_oneshot_request(THREADS).respond_with_json(page(thread("c5", 5), thread("c4", 4), token="p2"))
    httpserver.expect_oneshot_request(THREADS).respond_with_json(
        page(thread("c3", 3, [comment("r9", 9, "Nog steeds niets", parentId="c3")]), thread("c2", 2), token="p3"))
    again = source.poll(first.next_cursor)
    assert [m.source_id for m in again.mentions] == ["c5", "c4", "c3", "r9"]
    assert calls(httpserver, THREADS)[-1]["pageToken"] == "p2"
    assert len(calls(httpserver, THREADS)) == 3  # page 2 reached c2, already delivered: no third page
    state = json.loads(again.next_cursor or "")
    assert state["comments_since"] == "2026-11-18T09:09:00+00:00" and state["comments_seen"] == ["r9"]


def test_search_runs_daily_and_is_budgeted(httpserver: HTTPServer, engine: Engine, clock: FakeClock,
                                           sleeps: list[float]) -> None:
    video = {"kind": "youtube#searchResult", "id": {"kind": "youtube#video", "videoId": "abc123"},
             "snippet": {"publishedAt": "2026-11-18T08:00:00Z", "channelTitle": "Consument TV",
                         "title": "Lumora: de voorschotten uitgelegd", "description": "Wat klanten moeten weten"}}
    httpserver.expect_request(SEARCH).respond_with_json({"items": [video]})
    httpserver.expect_request(THREADS).respond_with_json(page())
    # 100 units a day: after the comments' 1 unit, a 100-unit search no longer fits.
    small = make_source(httpserver, clock, sleeps, search="Lumora", units_per_day=100, name="youtube:Small")
    assert poll_source(engine, small, clock.now).requests == 1 and calls(httpserver, SEARCH) == []

    source = make_source(httpserver, clock, sleeps, search="Lumora", units_per_day=10_000)
    outcome = poll_source(engine, source, clock.now)
    assert outcome.new == 1 and outcome.requests == 101  # 1 unit of comments + 100 of search
    (params,) = calls(httpserver, SEARCH)
    assert params["q"] == "Lumora" and params["type"] == "video" and params["publishedAfter"] == "2026-11-17T10:00:00Z"
    clock.advance(timedelta(hours=1))
    assert poll_source(engine, source, clock.now).requests == 1  # searched less than a day ago
    with transaction(engine) as conn:
        health = health_repo.get(conn, source.name)
    assert health is not None and health.budget_left(10_000, clock.now().date()) == 10_000 - 102
    clock.advance(timedelta(days=1))
    poll_source(engine, source, clock.now)
    assert calls(httpserver, SEARCH)[-1]["publishedAfter"] == "2026-11-18T10:00:00Z"


def test_quota_exceeded_defers_until_midnight_pacific(httpserver: HTTPServer, engine: Engine, clock: FakeClock,
                                                      sleeps: list[float], caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_request(THREADS).respond_with_json(error(403, "quotaExceeded"), status=403)
    source = make_source(httpserver, clock, sleeps)
    with caplog.at_level(logging.WARNING):
        outcome = poll_source(engine, source, clock.now)
    assert outcome.deferred_until == datetime(2026, 11, 19, 8, 0, tzinfo=UTC)  # 00:00 PST
    assert outcome.problem is not None and "quotaExceeded" in outcome.problem
    assert KEY not in caplog.text and KEY not in outcome.problem
    assert next_quota_reset(datetime(2026, 7, 1, 12, 0, tzinfo=UTC)) == datetime(2026, 7, 2, 7, 0, tzinfo=UTC)


def test_rate_limit_5xx_timeout_and_malformed_json(httpserver: HTTPServer, clock: FakeClock,
                                                   sleeps: list[float]) -> None:
    httpserver.expect_oneshot_request(THREADS).respond_with_data("boom", status=503)
    httpserver.expect_oneshot_request(THREADS).respond_with_json(page(thread("c1", 1)))
    source = make_source(httpserver, clock, sleeps)
    assert len(source.poll(None).mentions) == 1 and len(sleeps) == 1

    httpserver.expect_oneshot_request(THREADS).respond_with_json(error(403, "rateLimitExceeded"), status=403)
    limited = source.poll('{"comments_since":"2026-11-18T09:01:00+00:00"}')
    assert limited.deferred_until == clock.now() + timedelta(minutes=15)
    assert json.loads(limited.next_cursor or "")["comments_since"] == "2026-11-18T09:01:00+00:00"

    httpserver.expect_oneshot_request(THREADS).respond_with_data('{"items": [', content_type="application/json")
    broken = source.poll('{"comments_since":"2026-11-18T09:01:00+00:00"}')
    assert broken.problem == "comments: the API answered with malformed JSON; cursor kept"

    def slow(request: Any) -> Any:
        time.sleep(0.6)
        from werkzeug import Response
        return Response(json.dumps(page()), content_type="application/json")

    waits: list[float] = []
    httpserver.expect_request(THREADS).respond_with_handler(slow)
    timing_out = make_source(httpserver, clock, sleeps, timeout=0.2, policy=RetryPolicy(
        attempts=2, initial=0.01, maximum=0.01, jitter=0.0, sleep=lambda s: (waits.append(s), time.sleep(0.6))))
    result = timing_out.poll(None)
    assert result.problem is not None and "timed out" in result.problem.lower() and len(waits) == 1


def test_an_empty_answer_and_an_edited_or_removed_comment(httpserver: HTTPServer, engine: Engine,
                                                          clock: FakeClock, sleeps: list[float]) -> None:
    httpserver.expect_oneshot_request(THREADS).respond_with_json(page(thread("c1", 1)))
    source = make_source(httpserver, clock, sleeps)
    assert poll_source(engine, source, clock.now).new == 1
    # Edited later (updatedAt moves, publishedAt does not): not delivered again, the stored text stays.
    httpserver.expect_oneshot_request(THREADS).respond_with_json(
        page(thread("c1", 1, text="Lumora (bewerkt)", updatedAt="2026-11-18T10:00:00Z")))
    assert poll_source(engine, source, clock.now).fetched == 0
    # Removed by its author or held for review: gone from the answer, or present without text.
    httpserver.expect_oneshot_request(THREADS).respond_with_json(page(thread("c7", 7, text="")))
    removed = poll_source(engine, source, clock.now)
    assert removed.fetched == 0 and len(removed.skipped) == 1 and removed.problem is None
    httpserver.expect_oneshot_request(THREADS).respond_with_json(page())
    assert poll_source(engine, source, clock.now).problem is None
    with transaction(engine) as conn:
        assert count_mentions(conn) == 1


def test_plain_text_comments_keep_what_looks_like_a_tag() -> None:
    text = "Lumora <3 maar levering duurde >2 weken"
    (top,) = mentions_from_thread(thread("c1", 1, text=text), brand="Lumora")
    assert top.text == text


def test_a_failed_second_page_keeps_the_cursor_and_the_next_poll_reads_it(
        httpserver: HTTPServer, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    cursor = '{"comments_seen":["c1"],"comments_since":"2026-11-18T09:01:00+00:00"}'
    with transaction(engine) as conn:
        set_cursor(conn, "youtube:Lumora", cursor, clock.now())
    httpserver.expect_oneshot_request(THREADS).respond_with_json(page(thread("c9", 9), thread("c8", 8), token="p2"))
    for _ in range(3):  # every retry of page 2 fails
        httpserver.expect_oneshot_request(THREADS).respond_with_data("boom", status=500)
    source = make_source(httpserver, clock, sleeps)
    partial = poll_source(engine, source, clock.now)
    assert partial.new == 2 and partial.failed and partial.problem == "comments: HTTP 500"
    assert partial.requests == 4  # 1 unit per request sent, retries included
    with transaction(engine) as conn:
        assert get_cursor(conn, source.name) == cursor

    httpserver.expect_oneshot_request(THREADS).respond_with_json(page(thread("c9", 9), thread("c8", 8), token="p2"))
    httpserver.expect_oneshot_request(THREADS).respond_with_json(page(thread("c7", 7), thread("c1", 1)))
    again = poll_source(engine, source, clock.now)
    assert again.new == 1 and again.problem is None and calls(httpserver, THREADS)[-1]["pageToken"] == "p2"
    with transaction(engine) as conn:
        assert count_mentions(conn) == 3
        assert json.loads(get_cursor(conn, source.name) or "")["comments_since"] == "2026-11-18T09:09:00+00:00"


def test_a_429_with_retry_after_defers_that_long(httpserver: HTTPServer, clock: FakeClock,
                                                 sleeps: list[float]) -> None:
    httpserver.expect_request(THREADS).respond_with_json(error(429, "rateLimitExceeded"), status=429,
                                                         headers={"Retry-After": "1800"})
    limited = make_source(httpserver, clock, sleeps).poll('{"comments_since":"2026-11-18T09:01:00+00:00"}')
    assert limited.deferred_until == clock.now() + timedelta(minutes=30)


def test_an_oversized_answer_is_refused_not_read_whole(httpserver: HTTPServer, clock: FakeClock,
                                                       sleeps: list[float]) -> None:
    big = json.dumps(page(*(thread(f"c{i}", i % 60, text="x" * 1000) for i in range(10_000))))
    httpserver.expect_request(THREADS).respond_with_data(big, content_type="application/json")
    policy = RetryPolicy(attempts=3, initial=0.01, maximum=0.02, jitter=0.0, sleep=sleeps.append, max_body=1_000_000)
    result = make_source(httpserver, clock, sleeps, policy=policy).poll(None)
    assert result.problem is not None and "answer larger than 1 MB" in result.problem and not sleeps


def test_comments_longer_than_the_page_limit_are_stored_over_the_next_polls(
        httpserver: HTTPServer, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    """Nine new threads, two a page, two pages a poll: all nine are stored over three polls, each once; the
    time moves only when the backlog is read; a thread added meanwhile comes on the poll after."""
    threads = [thread(f"c{i}", 10 + i) for i in range(1, 10)] + [thread("old", 1)]

    def paged(request: Request) -> Response:
        newest_first = sorted(threads, key=lambda t: t["snippet"]["topLevelComment"]["snippet"]["publishedAt"],
                              reverse=True)
        start = int(request.args.get("pageToken") or 0)
        more = start + 2 < len(newest_first)
        return Response(json.dumps(page(*newest_first[start:start + 2], token=str(start + 2) if more else None)),
                        content_type="application/json")

    httpserver.expect_request(THREADS).respond_with_handler(paged)
    cursor = '{"comments_seen":["old"],"comments_since":"2026-11-18T09:01:00+00:00"}'
    with transaction(engine) as conn:
        set_cursor(conn, "youtube:Lumora", cursor, clock.now())
    source = make_source(httpserver, clock, sleeps, max_pages=2)
    news = [poll_source(engine, source, clock.now).new]
    with transaction(engine) as conn:
        state = json.loads(get_cursor(conn, source.name) or "")
    assert news == [4] and state["comments_next"] == "4" and state["comments_since"] == "2026-11-18T09:01:00+00:00"
    assert state["comments_newest"] == "2026-11-18T09:19:00+00:00"
    news += [poll_source(engine, source, clock.now).new for _ in range(2)]
    assert news == [4, 4, 1]
    assert [c.get("pageToken") for c in calls(httpserver, THREADS)] == [None, "2", "4", "6", "8"]
    with transaction(engine) as conn:
        assert count_mentions(conn) == 9
        state = json.loads(get_cursor(conn, source.name) or "")
    assert state == {"comments_seen": ["c9"], "comments_since": "2026-11-18T09:19:00+00:00"}

    threads.append(thread("c10", 30))
    assert poll_source(engine, source, clock.now).new == 1


def test_a_spent_budget_keeps_the_page_to_go_on_from(httpserver: HTTPServer, clock: FakeClock,
                                                     sleeps: list[float]) -> None:
    httpserver.expect_oneshot_request(THREADS).respond_with_json(page(thread("c9", 9), thread("c8", 8), token="p2"))
    source = make_source(httpserver, clock, sleeps)
    cursor = '{"comments_seen":["c1"],"comments_since":"2026-11-18T09:01:00+00:00"}'
    stopped = source.poll(cursor, requests_left=1)
    state = json.loads(stopped.next_cursor or "")
    assert [m.source_id for m in stopped.mentions] == ["c9", "c8"] and state["comments_next"] == "p2"
    httpserver.expect_oneshot_request(THREADS).respond_with_json(page(thread("c7", 7), thread("c1", 1)))
    resumed = source.poll(stopped.next_cursor, requests_left=10)
    assert [m.source_id for m in resumed.mentions] == ["c7"] and calls(httpserver, THREADS)[-1]["pageToken"] == "p2"
    assert json.loads(resumed.next_cursor or "") == {"comments_seen": ["c9"],
                                                     "comments_since": "2026-11-18T09:09:00+00:00"}
