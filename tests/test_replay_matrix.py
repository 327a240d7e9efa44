"""Every platform against the same hard answers: the real client library, a local server, one table.

For each platform (X through ``responses``, since tweepy's host is fixed; the
others through pytest-httpserver) the same four answers are replayed on the
endpoint a poll reads, through ``poll_source`` so the health row is checked
too:

* an empty answer: no post, no problem;
* a 10 MB answer: refused without being read whole (``http.max_body``), not
  retried, the source failing and its cursor kept;
* a 429 with ``Retry-After: 1200``: the source deferred for exactly 20 minutes;
* a permission refusal (the platform's own shape): the source failing with
  the platform's reason, never a quiet "ok";
* a 500 that lasts: retried, then the source failing with its cursor kept;
* a first poll with posts (recorded fixtures where there are some): stored,
  the cursor moved, and the same answer again stores nothing twice.

Paging, a 500 on one parent or page and "no post lost after a partial
failure" are replayed per platform in ``test_sources_<platform>.py``
(``test_a_failed_*``), with each platform's paging rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import praw
import pytest
import responses
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine

from monitor.clock import FakeClock
from monitor.sources.base import Source
from monitor.sources.bluesky import BlueskySource
from monitor.sources.feeds import FeedSource
from monitor.sources.google_news import google_news_source
from monitor.sources.graph import FacebookSource, GraphClient, InstagramSource
from monitor.sources.mastodon import MastodonSource
from monitor.sources.polling import poll_source
from monitor.sources.reddit import RedditSession, RedditSource
from monitor.sources.resilience import RetryPolicy
from monitor.sources.x import XSource
from monitor.sources.youtube import YouTubeSource
from monitor.store import health as health_repo
from monitor.store import transaction
from monitor.store.mentions import get_cursor, set_cursor

BIG = 10_000_000
FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


MEDIA = {"id": "1800", "caption": "Weer geen stroom @lumora_be", "timestamp": "2026-11-18T09:05:00+0000",
         "permalink": "https://www.instagram.com/p/ABC/", "username": "klant3", "like_count": 9, "comments_count": 1}
FB_POST = {"id": "1010_3030", "message": "Lumora, waarom geen antwoord?", "created_time": "2026-11-18T08:07:00+0000",
           "permalink_url": "https://www.facebook.com/1010_3030", "from": {"name": "Bezoeker"}}
YT_THREAD = {"kind": "youtube#commentThread", "id": "c1", "snippet": {"videoId": "vid1", "totalReplyCount": 0,
             "topLevelComment": {"kind": "youtube#comment", "id": "c1", "snippet": {
                 "videoId": "vid1", "textDisplay": "Lumora <3 maar levering duurde >2 weken",
                 "authorDisplayName": "@kijker", "likeCount": 2, "publishedAt": "2026-11-18T09:01:00Z"}}}}
MASTODON_STATUS = {"id": "110000000000000005", "created_at": "2026-11-18T09:05:00.000Z", "visibility": "public",
                   "uri": "https://social.example/users/k/statuses/5", "url": "https://social.example/@k/5",
                   "content": "<p>Lumora stuurt weer een foute factuur</p>", "account": {"acct": "k@social.example"}}
BSKY_POST = {"uri": "at://did:plc:abc/app.bsky.feed.post/3k1", "cid": "bafy", "indexedAt": "2026-11-18T09:05:00.000Z",
             "author": {"did": "did:plc:abc", "handle": "klant.bsky.social"},
             "record": {"$type": "app.bsky.feed.post", "text": "Lumora heeft mijn factuur verdubbeld",
                        "createdAt": "2026-11-18T09:04:00.000Z", "langs": ["nl"]}}
X_SEARCH = "https://api.twitter.com/2/tweets/search/recent"
RSS_EMPTY = ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
             '<link>https://example.test/</link><description>d</description></channel></rss>')


def graph_error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC"}}


@dataclass(frozen=True)
class Platform:
    """How one platform is built against ``base`` and what its answers look like on the endpoint read."""

    name: str
    build: Callable[[str, FakeClock, RetryPolicy], Source]
    path: str  # the endpoint a poll reads (a regex for pytest-httpserver; a URL for X)
    empty: str
    denied: tuple[int, Any]
    reason: str  # what the failing source's problem names
    content_type: str = "application/json"
    setup: Callable[[HTTPServer], None] = lambda server: None
    cursor: str | None = None
    first: tuple[tuple[str, str], ...] = ()  # (path regex or URL, body) of a first poll that brings posts
    listings: int = 1  # endpoints a poll reads (Reddit: search, new submissions, new comments)


def _reddit(base: str, clock: FakeClock, policy: RetryPolicy) -> Source:
    reddit = praw.Reddit(client_id="id", client_secret="secret-0123456789", user_agent="monitor-tests/1.0",
                         oauth_url=base, reddit_url=base, check_for_updates=False,
                         requestor_kwargs={"session": RedditSession(5.0, policy, clock)})
    return RedditSource(brand="Lumora", reddit=reddit, keywords=["Lumora"], subreddits=["belgium"],
                        query="Lumora", policy=policy, clock=clock)


def _reddit_token(server: HTTPServer) -> None:
    server.expect_request("/api/v1/access_token", method="POST").respond_with_json(
        {"access_token": "token-abcdef123456", "token_type": "bearer", "expires_in": 3600, "scope": "*"})


def _bluesky_login(server: HTTPServer) -> None:
    import base64
    import time

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    token = ".".join([part({"alg": "ES256K"}), part({"scope": "com.atproto.appPass", "sub": "did:plc:me",
                                                     "exp": int(time.time()) + 7200}), "sig"])
    server.expect_request("/xrpc/com.atproto.server.createSession", method="POST").respond_with_json(
        {"did": "did:plc:me", "handle": "monitor.test", "accessJwt": token, "refreshJwt": token, "active": True})


def _feed(base: str, clock: FakeClock, policy: RetryPolicy) -> Source:
    return FeedSource(brand="Lumora", site="Energienieuws", url=f"{base}/feed", keywords=["Lumora"],
                      languages=["nl"], reach=100, clock=clock, timeout=5, policy=policy)


def _news(base: str, clock: FakeClock, policy: RetryPolicy) -> Source:
    block = SimpleNamespace(query=None, root=base, poll_every=None)
    source = google_news_source("Lumora", block, "news:Lumora:google-nl-BE", keywords=["Lumora"],
                                languages=["nl", "fr", "en"], timeout=5, policy=policy)
    source.clock = clock
    return source


def _graph(base: str, clock: FakeClock, policy: RetryPolicy) -> GraphClient:
    return GraphClient(token="EAAGtestpagetoken0123456789abcdefZZ", root=base, version="v21.0", timeout=5,
                       clock=clock, policy=policy)


PLATFORMS = [
    Platform("x", lambda base, clock, policy: XSource.with_token(
        "AAAAAAAAAAAAAAAAAAAAAtest-bearer-token-0123456789", timeout=5, brand="Lumora", query="Lumora",
        languages=["nl"], clock=clock, policy=policy),
        X_SEARCH, json.dumps({"meta": {"result_count": 0}}),
        (403, {"title": "Forbidden", "detail": "Your client app is not configured with the appropriate oauth1 "
               "app permissions for this endpoint.", "type": "https://api.twitter.com/2/problems/oauth1-permissions"}),
        "check X_BEARER_TOKEN", first=((X_SEARCH, fixture("x/search_newer.json")),)),
    Platform("reddit", _reddit, r"^/r/belgium/(search|new|comments)/?$",
             json.dumps({"kind": "Listing", "data": {"children": [], "after": None}}),
             (403, {"message": "Forbidden", "error": 403}), "check praw_client_id", setup=_reddit_token, listings=3,
             first=((r"^/r/belgium/search/?$", fixture("reddit/search_1.json")),
                    (r"^/r/belgium/new/?$", fixture("reddit/new.json")),
                    (r"^/r/belgium/comments/?$", fixture("reddit/comments.json"))),
             cursor=json.dumps({k: {"newest": None, "seen": {}} for k in ("comments", "search", "submissions")},
                               separators=(",", ":"), sort_keys=True)),
    Platform("feeds", _feed, r"^/feed$", RSS_EMPTY, (403, "Forbidden"), "403",
             content_type="application/rss+xml", first=((r"^/feed$", fixture("feeds/energienieuws.rss")),)),
    Platform("google news", _news, r"^/rss/search$", RSS_EMPTY, (403, "Forbidden"), "403",
             content_type="application/rss+xml",
             first=((r"^/rss/search$", fixture("google_news/search_nl_BE.rss")),)),
    Platform("facebook", lambda base, clock, policy: FacebookSource(
        brand="Lumora", page_id="1010", client=_graph(base, clock, policy), comments=False, tagged=False),
        r"^/v21.0/1010/visitor_posts$", json.dumps({"data": []}),
        (400, graph_error(200, "(#200) Requires pages_read_user_content permission to manage the object")),
        "FACEBOOK_PAGE_TOKEN", first=((r"^/v21.0/1010/visitor_posts$", json.dumps({"data": [FB_POST]})),)),
    Platform("instagram", lambda base, clock, policy: InstagramSource(
        brand="Lumora", account_id="1789", client=_graph(base, clock, policy), comments=False),
        r"^/v21.0/1789/tags$", json.dumps({"data": []}),
        (400, graph_error(10, "(#10) Application does not have permission for this action")), "FACEBOOK_PAGE_TOKEN",
        first=((r"^/v21.0/1789/tags$", json.dumps({"data": [MEDIA]})),)),
    Platform("youtube", lambda base, clock, policy: YouTubeSource(
        brand="Lumora", api_key="AIzaSyTESTKEY0123456789abcdefghijklmno", channel_id="UC" + "x" * 22,
        api_root=base, clock=clock, timeout=5, policy=policy),
        r"^/youtube/v3/commentThreads$", json.dumps({"items": []}),
        (403, {"error": {"code": 403, "message": "The request is not properly authorized.", "errors": [
            {"reason": "forbidden", "domain": "youtube.commentThread", "message": "forbidden"}]}}),
        "check YOUTUBE_API_KEY", first=((r"^/youtube/v3/commentThreads$", json.dumps({"items": [YT_THREAD]})),)),
    Platform("mastodon", lambda base, clock, policy: MastodonSource.connect(
        base, brand="Lumora", query="Lumora", hashtags=[], languages=["nl"], clock=clock, timeout=5, policy=policy),
        r"^/api/v2/search$", json.dumps({"accounts": [], "statuses": [], "hashtags": []}),
        (401, {"error": "This method requires an authenticated user"}), "set MASTODON_ACCESS_TOKEN",
        cursor='{"search":"110000000000000001"}',
        first=((r"^/api/v2/search$", json.dumps({"accounts": [], "statuses": [MASTODON_STATUS], "hashtags": []})),)),
    Platform("bluesky", lambda base, clock, policy: BlueskySource(
        brand="Lumora", query="Lumora", handle="monitor.test", app_password="abcd-efgh-ijkl-mnop", service=base,
        languages=["nl"], clock=clock, timeout=5, policy=policy),
        r"^/xrpc/app.bsky.feed.searchPosts$", json.dumps({"posts": []}),
        (403, {"error": "AuthMissing", "message": "Authentication Required"}), "refused", setup=_bluesky_login,
        first=((r"^/xrpc/app.bsky.feed.searchPosts$", json.dumps({"posts": [BSKY_POST]})),
               (r"^/xrpc/app.bsky.actor.getProfiles$", json.dumps({"profiles": []})))),
]


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://localhost")
        mock.add_passthru("http://127.0.0.1")
        yield mock


def _serve(platform: Platform, server: HTTPServer, rsps: responses.RequestsMock, status: int, body: str | bytes,
           headers: dict[str, str] | None = None) -> None:
    if platform.path.startswith("https://"):
        rsps.add(responses.GET, platform.path, body=body, status=status, headers=headers,
                 content_type=platform.content_type)
        return
    platform.setup(server)
    server.expect_request(re.compile(platform.path)).respond_with_data(body, status=status, headers=headers,
                                                                      content_type=platform.content_type)


def _requests_to(platform: Platform, server: HTTPServer, rsps: responses.RequestsMock) -> int:
    if platform.path.startswith("https://"):
        return sum(1 for c in rsps.calls if c.request.url.startswith(platform.path))
    return sum(1 for req, _ in server.log if re.match(platform.path, req.path))


def _poll(platform: Platform, server: HTTPServer, engine: Engine, clock: FakeClock) -> Any:
    policy = RetryPolicy(attempts=3, initial=0.01, maximum=0.02, jitter=0.0, rate_limit_max_wait=60,
                         sleep=lambda s: None)
    source = platform.build(server.url_for("/").rstrip("/"), clock, policy)
    if platform.cursor:
        with transaction(engine) as conn:
            set_cursor(conn, source.name, platform.cursor, clock.now())
    outcome = poll_source(engine, source, clock.now)
    with transaction(engine) as conn:
        health = health_repo.get(conn, source.name)
        cursor = get_cursor(conn, source.name)
    return outcome, health, cursor


def _same(cursor: str | None, before: str | None) -> bool:
    """The cursor did not move ('{}' is a source's way of writing "nothing yet")."""
    return json.loads(cursor or "{}") == json.loads(before or "{}")


IDS = [p.name for p in PLATFORMS]


@pytest.mark.parametrize("platform", PLATFORMS, ids=IDS)
def test_an_empty_answer_is_a_quiet_success(platform: Platform, httpserver: HTTPServer,
                                            rsps: responses.RequestsMock, engine: Engine, clock: FakeClock) -> None:
    _serve(platform, httpserver, rsps, 200, platform.empty)
    outcome, health, _cursor = _poll(platform, httpserver, engine, clock)
    assert outcome.ran and outcome.fetched == 0 and outcome.problem is None, outcome.problem
    assert health is not None and health.consecutive_failures == 0


@pytest.mark.parametrize("platform", PLATFORMS, ids=IDS)
def test_a_10_mb_answer_is_refused_not_retried_and_the_cursor_kept(
        platform: Platform, httpserver: HTTPServer, rsps: responses.RequestsMock, engine: Engine,
        clock: FakeClock) -> None:
    _serve(platform, httpserver, rsps, 200, platform.empty[:-1].ljust(BIG) + platform.empty[-1])
    outcome, health, cursor = _poll(platform, httpserver, engine, clock)
    assert outcome.failed and "answer larger than 5 MB" in (outcome.problem or ""), outcome.problem
    assert _requests_to(platform, httpserver, rsps) == platform.listings  # as large next time: not retried
    assert health is not None and health.consecutive_failures == 1
    assert _same(cursor, platform.cursor)


@pytest.mark.parametrize("platform", PLATFORMS, ids=IDS)
def test_a_429_with_retry_after_defers_the_source_that_long(
        platform: Platform, httpserver: HTTPServer, rsps: responses.RequestsMock, engine: Engine,
        clock: FakeClock) -> None:
    body = json.dumps(graph_error(4, "Application request limit reached")) if "v21.0" in platform.path else \
        json.dumps({"error": "RateLimitExceeded", "message": "Too many requests"})
    _serve(platform, httpserver, rsps, 429, body, {"Retry-After": "1200"})
    outcome, health, cursor = _poll(platform, httpserver, engine, clock)
    assert outcome.failed and outcome.deferred_until == clock.now() + timedelta(minutes=20), outcome.problem
    assert health is not None and health.deferred_until == clock.now() + timedelta(minutes=20)
    assert _same(cursor, platform.cursor)


@pytest.mark.parametrize("platform", PLATFORMS, ids=IDS)
def test_a_permission_refusal_makes_the_source_failing(platform: Platform, httpserver: HTTPServer,
                                                       rsps: responses.RequestsMock, engine: Engine,
                                                       clock: FakeClock) -> None:
    status, body = platform.denied
    _serve(platform, httpserver, rsps, status, body if isinstance(body, str) else json.dumps(body))
    outcome, health, cursor = _poll(platform, httpserver, engine, clock)
    assert outcome.failed and platform.reason in (outcome.problem or ""), outcome.problem
    assert health is not None and health.consecutive_failures == 1 and health.last_error
    assert platform.reason in health.last_error and _same(cursor, platform.cursor)
    # "We cannot see" is alerted at once (a public feed has no credentials to fix: it keeps the grace period).
    assert health.blind == outcome.blind == (platform.name not in {"feeds", "google news"})


@pytest.mark.parametrize("platform", PLATFORMS, ids=IDS)
def test_a_lasting_500_is_retried_then_the_source_failing_with_its_cursor_kept(
        platform: Platform, httpserver: HTTPServer, rsps: responses.RequestsMock, engine: Engine,
        clock: FakeClock) -> None:
    _serve(platform, httpserver, rsps, 500, "internal error")
    outcome, health, cursor = _poll(platform, httpserver, engine, clock)
    assert outcome.failed and outcome.deferred_until is None and outcome.new == 0
    assert _requests_to(platform, httpserver, rsps) > platform.listings  # retried
    assert health is not None and health.consecutive_failures == 1 and _same(cursor, platform.cursor)
    assert not health.blind  # a 5xx may heal: the source-health alert keeps its grace period


@pytest.mark.parametrize("platform", PLATFORMS, ids=IDS)
def test_a_first_poll_stores_posts_and_the_same_answer_again_stores_nothing_twice(
        platform: Platform, httpserver: HTTPServer, rsps: responses.RequestsMock, engine: Engine,
        clock: FakeClock) -> None:
    platform.setup(httpserver)
    for path, body in platform.first:
        if path.startswith("https://"):
            rsps.add(responses.GET, path, body=body, content_type=platform.content_type)
        else:
            httpserver.expect_request(re.compile(path)).respond_with_data(body, content_type=platform.content_type)
    first, health, cursor = _poll(platform, httpserver, engine, clock)
    assert first.problem is None and first.new >= 1, (first.problem, first.skipped)
    assert health is not None and health.last_success_at is not None and not _same(cursor, platform.cursor)
    policy = RetryPolicy(attempts=1, sleep=lambda s: None)
    again = poll_source(engine, platform.build(httpserver.url_for("/").rstrip("/"), clock, policy), clock.now)
    assert again.problem is None and again.new == 0
