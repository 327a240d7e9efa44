"""The Bluesky source: the real atproto client against a local fake XRPC server (pytest-httpserver).

The answers follow the lexicons of ``com.atproto.server.createSession``/``refreshSession``,
``app.bsky.feed.searchPosts`` and ``app.bsky.actor.getProfiles``.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine

from monitor.clock import FakeClock
from monitor.sources.bluesky import BlueskySource, mention_from_post
from monitor.sources.polling import poll_source
from monitor.sources.resilience import RetryPolicy
from monitor.store import transaction
from monitor.store.mentions import count_mentions, get_cursor

HANDLE, PASSWORD = "monitor-lumora.bsky.social", "abcd-efgh-ijkl-mnop"
DID = "did:plc:monitorlumoraaaaaaaaaaaa"
SEARCH = "/xrpc/app.bsky.feed.searchPosts"
PROFILES = "/xrpc/app.bsky.actor.getProfiles"
LOGIN = "/xrpc/com.atproto.server.createSession"
REFRESH = "/xrpc/com.atproto.server.refreshSession"


def jwt(expires_in: float, scope: str = "com.atproto.appPass") -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    now = int(time.time())  # atproto decides about refreshing on the real clock
    claims = {"sub": DID, "scope": scope, "iat": now, "exp": int(now + expires_in)}
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def session(expires_in: float = 7200) -> dict[str, Any]:
    return {"accessJwt": jwt(expires_in), "refreshJwt": jwt(90 * 86400, "com.atproto.refresh"),
            "handle": HANDLE, "did": DID, "active": True}


def post(n: int, indexed: str, text: str = "Lumora heeft mijn factuur verdubbeld", **extra: Any) -> dict[str, Any]:
    body = {
        "uri": f"at://did:plc:klant{n:020d}/app.bsky.feed.post/3lxyz{n:08d}", "cid": f"bafyrei{n:010d}",
        "author": {"did": f"did:plc:klant{n:020d}", "handle": f"klant{n}.bsky.social", "displayName": f"Klant {n}"},
        "record": {"$type": "app.bsky.feed.post", "text": text, "createdAt": indexed, "langs": ["nl"]},
        "replyCount": 1, "repostCount": 2, "likeCount": 3, "quoteCount": 0, "indexedAt": indexed, "labels": [],
    }
    body.update(extra)
    return body


def at(minute: int) -> str:
    return f"2026-11-18T09:{minute:02d}:00.000Z"


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_source(httpserver: HTTPServer, clock: FakeClock, sleeps: list[float], **kwargs: Any) -> BlueskySource:
    options: dict[str, Any] = {
        "brand": "Lumora", "query": "Lumora", "handle": HANDLE, "app_password": PASSWORD,
        "service": httpserver.url_for("/").rstrip("/"), "languages": ["nl", "fr"], "clock": clock, "timeout": 5,
        "policy": RetryPolicy(attempts=3, initial=0.01, maximum=0.02, jitter=0.0, rate_limit_max_wait=60,
                              sleep=sleeps.append),
    }
    options.update(kwargs)
    return BlueskySource(**options)


def serve_login(httpserver: HTTPServer, expires_in: float = 7200) -> None:
    httpserver.expect_request(LOGIN, method="POST").respond_with_json(session(expires_in))


def serve_profiles(httpserver: HTTPServer, followers: int = 500) -> None:
    httpserver.expect_request(PROFILES).respond_with_handler(lambda request: _profiles(request, followers))


def _profiles(request: Any, followers: int) -> Any:
    from werkzeug import Response

    actors = request.args.getlist("actors")
    body = {"profiles": [{"did": f"did:plc:{a}", "handle": a, "followersCount": followers + i}
                         for i, a in enumerate(actors)]}
    return Response(json.dumps(body), content_type="application/json")


def searches(httpserver: HTTPServer) -> list[dict[str, str]]:
    return [dict(req.args) for req, _ in httpserver.log if req.path == SEARCH]


def test_a_post_becomes_a_mention() -> None:
    m = mention_from_post({**post(1, at(5)), "record": {"text": "Lumora!", "createdAt": at(4), "langs": ["fr-BE"],
                                                         "reply": {"root": {"uri": "at://x/app.bsky.feed.post/1"}}}},
                          brand="Lumora", languages=["fr"])
    assert m.source == "bluesky" and m.source_id == "at://did:plc:klant00000000000000000001/app.bsky.feed.post/3lxyz00000001"
    assert m.url == "https://bsky.app/profile/klant1.bsky.social/post/3lxyz00000001"
    assert m.engagement == 6 and m.language == "fr" and m.conversation_id == "at://x/app.bsky.feed.post/1"
    with pytest.raises(ValueError, match="no text"):
        mention_from_post(post(2, at(5), text=" "), brand="Lumora", languages=["nl"])


def test_first_poll_logs_in_once_reads_the_newest_page_and_fetches_followers(
        httpserver: HTTPServer, clock: FakeClock, sleeps: list[float]) -> None:
    serve_login(httpserver)
    serve_profiles(httpserver)
    httpserver.expect_oneshot_request(SEARCH).respond_with_json({"posts": [post(2, at(2)), post(1, at(1))],
                                                                 "cursor": "page2"})
    source = make_source(httpserver, clock, sleeps)
    first = source.poll(None)
    assert [m.author_handle for m in first.mentions] == ["klant2.bsky.social", "klant1.bsky.social"]
    assert {m.author_reach for m in first.mentions} == {500, 501}  # sorted handles: klant1 first
    assert json.loads(first.next_cursor or "") == {"since": at(2), "seen": [post(2, at(2))["uri"]]}
    (params,) = searches(httpserver)
    assert params == {"q": "Lumora", "sort": "latest", "limit": "100"}  # first poll: no since, one page only
    assert first.requests == 2 and source.logins == 1
    search_req = next(req for req, _ in httpserver.log if req.path == SEARCH)
    assert search_req.headers["Authorization"].startswith("Bearer ")

    # Next poll: since the newest indexedAt; the post at exactly that instant is not delivered again.
    httpserver.expect_oneshot_request(SEARCH).respond_with_json({"posts": [post(3, at(3)), post(2, at(2))]})
    again = source.poll(first.next_cursor)
    assert [m.author_handle for m in again.mentions] == ["klant3.bsky.social"]
    assert searches(httpserver)[-1]["since"] == at(2)
    assert source.logins == 1  # the session is reused
    assert PASSWORD not in repr(source)


def test_a_session_near_expiry_is_refreshed_not_logged_in_again(
        httpserver: HTTPServer, clock: FakeClock, sleeps: list[float]) -> None:
    serve_login(httpserver, expires_in=60)  # atproto refreshes 15 minutes before expiry
    httpserver.expect_request(REFRESH, method="POST").respond_with_json(session())
    serve_profiles(httpserver)
    httpserver.expect_request(SEARCH).respond_with_json({"posts": []})
    source = make_source(httpserver, clock, sleeps)
    source.poll(None)
    source.poll(None)
    paths = [req.path for req, _ in httpserver.log]
    assert paths.count(LOGIN) == 1 and paths.count(REFRESH) == 1 and source.logins == 1


def test_a_backlog_pages_and_continues_next_poll(httpserver: HTTPServer, clock: FakeClock,
                                                 sleeps: list[float]) -> None:
    serve_login(httpserver)
    serve_profiles(httpserver)
    httpserver.expect_oneshot_request(SEARCH).respond_with_json({"posts": [post(9, at(9)), post(8, at(8))],
                                                                 "cursor": "p2"})
    httpserver.expect_oneshot_request(SEARCH).respond_with_json({"posts": [post(7, at(7)), post(6, at(6))],
                                                                 "cursor": "p3"})
    source = make_source(httpserver, clock, sleeps, max_pages=2)
    cursor = json.dumps({"since": at(1), "seen": []})
    partial = source.poll(cursor)
    assert len(partial.mentions) == 4
    assert json.loads(partial.next_cursor or "") == {"since": at(1), "next": "p3", "newest": at(9),
                                                     "seen": [post(9, at(9))["uri"]]}
    httpserver.expect_oneshot_request(SEARCH).respond_with_json({"posts": [post(5, at(5))]})
    rest = source.poll(partial.next_cursor)
    assert [m.author_handle for m in rest.mentions] == ["klant5.bsky.social"]
    assert searches(httpserver)[-1] == {"q": "Lumora", "sort": "latest", "limit": "100", "since": at(1),
                                        "cursor": "p3"}
    assert json.loads(rest.next_cursor or "")["since"] == at(9)


def test_rate_limit_5xx_timeouts_and_a_refused_login(httpserver: HTTPServer, engine: Engine, clock: FakeClock,
                                                      sleeps: list[float], caplog: pytest.LogCaptureFixture) -> None:
    serve_login(httpserver)
    serve_profiles(httpserver)
    httpserver.expect_oneshot_request(SEARCH).respond_with_data("oops", status=500)
    httpserver.expect_oneshot_request(SEARCH).respond_with_data("bad gateway", status=502)
    httpserver.expect_oneshot_request(SEARCH).respond_with_json({"posts": [post(1, at(1))]})
    source = make_source(httpserver, clock, sleeps)
    assert len(source.poll(None).mentions) == 1 and len(sleeps) == 2

    reset = int(clock.now().timestamp()) + 3600
    httpserver.expect_oneshot_request(SEARCH).respond_with_json(
        {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, status=429,
        headers={"ratelimit-reset": str(reset), "ratelimit-remaining": "0"})
    outcome = poll_source(engine, source, clock.now)
    assert outcome.deferred_until is not None and int(outcome.deferred_until.timestamp()) == reset

    # A wrong app password: one clear line, the password nowhere, and no new login for an hour.
    httpserver.clear()
    httpserver.expect_request(LOGIN, method="POST").respond_with_json(
        {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}, status=401)
    fresh = make_source(httpserver, clock, sleeps, name="bluesky:Other")
    with caplog.at_level(logging.WARNING):
        refused = poll_source(engine, fresh, clock.now)
    assert refused.problem is not None and "login refused" in refused.problem and PASSWORD not in caplog.text
    assert refused.deferred_until == clock.now() + timedelta(hours=1)


def test_timeouts_are_retried(httpserver: HTTPServer, clock: FakeClock, sleeps: list[float]) -> None:
    serve_login(httpserver)
    serve_profiles(httpserver)

    def slow(request: Any) -> Any:
        time.sleep(0.5)
        from werkzeug import Response
        return Response(json.dumps({"posts": []}), content_type="application/json")

    httpserver.expect_oneshot_request(SEARCH).respond_with_handler(slow)
    httpserver.expect_oneshot_request(SEARCH).respond_with_json({"posts": [post(1, at(1))]})
    waits: list[float] = []

    def wait_for_the_slow_answer(seconds: float) -> None:  # the test server answers one request at a time
        waits.append(seconds)
        time.sleep(0.5)

    policy = RetryPolicy(attempts=3, initial=0.01, maximum=0.02, jitter=0.0, sleep=wait_for_the_slow_answer)
    result = make_source(httpserver, clock, sleeps, timeout=0.2, policy=policy).poll(None)
    assert len(result.mentions) == 1 and len(waits) == 1


def test_malformed_json_and_an_empty_answer_keep_the_cursor(httpserver: HTTPServer, clock: FakeClock,
                                                            sleeps: list[float]) -> None:
    serve_login(httpserver)
    serve_profiles(httpserver)
    cursor = json.dumps({"since": at(1), "seen": ["at://x"]}, separators=(",", ":"), sort_keys=True)
    httpserver.expect_oneshot_request(SEARCH).respond_with_data('{"posts": [', content_type="application/json")
    source = make_source(httpserver, clock, sleeps)
    broken = source.poll(cursor)
    assert broken.problem is not None and "malformed JSON" in broken.problem and broken.next_cursor == cursor
    httpserver.expect_oneshot_request(SEARCH).respond_with_json({"posts": []})
    empty = source.poll(cursor)
    assert empty.mentions == [] and empty.problem is None and empty.next_cursor == cursor


def test_deleted_after_storing_and_bad_posts(httpserver: HTTPServer, engine: Engine, clock: FakeClock,
                                             sleeps: list[float]) -> None:
    serve_login(httpserver)
    serve_profiles(httpserver)
    httpserver.expect_oneshot_request(SEARCH).respond_with_json(
        {"posts": [post(2, at(2)), post(1, at(1), text=""), {"uri": "at://nothing"}]})
    source = make_source(httpserver, clock, sleeps)
    outcome = poll_source(engine, source, clock.now)
    assert outcome.new == 1 and len(outcome.skipped) == 2
    # The post is deleted on Bluesky (posts cannot be edited): it just stops appearing.
    httpserver.expect_oneshot_request(SEARCH).respond_with_json({"posts": []})
    assert poll_source(engine, source, clock.now).problem is None
    with transaction(engine) as conn:
        assert count_mentions(conn) == 1
        assert json.loads(get_cursor(conn, source.name) or "")["since"] == at(2)


def test_a_login_refused_with_429_defers_until_retry_after(httpserver: HTTPServer, engine: Engine,
                                                           clock: FakeClock, sleeps: list[float]) -> None:
    httpserver.expect_request(LOGIN, method="POST").respond_with_json(
        {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, status=429, headers={"Retry-After": "2400"})
    source = make_source(httpserver, clock, sleeps)
    refused = poll_source(engine, source, clock.now)
    assert refused.failed and "too many logins (HTTP 429)" in (refused.problem or "")
    assert refused.deferred_until == clock.now() + timedelta(minutes=40)
    assert not poll_source(engine, source, clock.now).ran  # deferred: no new login tried
    assert [req.path for req, _ in httpserver.log].count(LOGIN) == 1


def test_an_oversized_answer_is_cut_off_and_the_cursor_kept(httpserver: HTTPServer, clock: FakeClock,
                                                            sleeps: list[float]) -> None:
    serve_login(httpserver)
    serve_profiles(httpserver)
    cursor = json.dumps({"since": at(1), "seen": ["at://x"]}, separators=(",", ":"), sort_keys=True)
    big = json.dumps({"posts": [post(n, at(2), text="x" * 1000) for n in range(2000)]})
    httpserver.expect_request(SEARCH).respond_with_data(big, content_type="application/json")
    policy = RetryPolicy(attempts=3, initial=0.01, maximum=0.02, jitter=0.0, sleep=sleeps.append, max_body=500_000)
    result = make_source(httpserver, clock, sleeps, policy=policy).poll(cursor)
    assert result.problem is not None and "answer larger than 500 kB" in result.problem
    assert result.next_cursor == cursor and not sleeps  # not retried: it would be as large again


def test_a_failed_second_page_resumes_there(httpserver: HTTPServer, clock: FakeClock, sleeps: list[float]) -> None:
    serve_login(httpserver)
    serve_profiles(httpserver)
    httpserver.expect_oneshot_request(SEARCH).respond_with_json({"posts": [post(9, at(9))], "cursor": "p2"})
    for _ in range(3):
        httpserver.expect_oneshot_request(SEARCH).respond_with_data("oops", status=500)
    source = make_source(httpserver, clock, sleeps)
    partial = source.poll(json.dumps({"since": at(1), "seen": []}))
    assert partial.problem is not None and len(partial.mentions) == 1
    httpserver.expect_oneshot_request(SEARCH).respond_with_json({"posts": [post(5, at(5))]})
    again = source.poll(partial.next_cursor)
    assert [m.text for m in again.mentions] == [post(5, at(5))["record"]["text"]]
    assert searches(httpserver)[-1]["cursor"] == "p2"
