"""The Reddit source: the real praw client against a local endpoint serving recorded and invented responses."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import praw
import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine

from monitor.clock import FakeClock
from monitor.sources.polling import poll_source
from monitor.sources.reddit import RedditSource, parse_cursor
from monitor.sources.resilience import RetryPolicy
from monitor.store import health as health_repo
from monitor.store import transaction
from monitor.store.mentions import count_mentions, get_cursor
from tests.conftest import shared_data
from tests.fixtures.cassettes import Interaction, load

FIXTURES = Path(__file__).parent / "fixtures" / "reddit"
CLIENT_ID, CLIENT_SECRET = "monitor-test-client", "monitor-test-secret-0123456789"
ACCESS_TOKEN = "recorded-access-token-abcdef123456"
JSON = "application/json; charset=UTF-8"


@pytest.fixture
def reddit(httpserver: HTTPServer) -> Iterator[praw.Reddit]:
    """A real praw client whose token exchange and API calls go to the local server."""
    base = httpserver.url_for("/").rstrip("/")
    httpserver.expect_request("/api/v1/access_token", method="POST").respond_with_json(
        {"access_token": ACCESS_TOKEN, "token_type": "bearer", "expires_in": 3600, "scope": "*"})
    client = praw.Reddit(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, user_agent="monitor-tests/1.0",
                         oauth_url=base, reddit_url=base, check_for_updates=False)
    yield client


def serve(httpserver: HTTPServer, path: str, body: str | dict[str, Any], status: int = 200,
          headers: dict[str, str] | None = None) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    httpserver.expect_oneshot_request(re.compile("^" + re.escape(path) + "/?$"), method="GET").respond_with_data(
        text, status=status, headers=headers, content_type=JSON)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def listing_requests(httpserver: HTTPServer) -> list[Any]:
    return [req for req, _ in httpserver.log if req.path != "/api/v1/access_token"]


def make_source(reddit: praw.Reddit, clock: FakeClock, sleeps: list[float] | None = None,
                **kwargs: Any) -> RedditSource:
    options: dict[str, Any] = {
        "brand": "Lumora", "keywords": ["Lumora", "@lumora_be"], "subreddits": ["belgium", "brussels"],
        "query": "Lumora", "clock": clock,
        "policy": RetryPolicy(attempts=1, rate_limit_max_wait=60, sleep=(sleeps if sleeps is not None else []).append),
    }
    options.update(kwargs)
    return RedditSource(reddit=reddit, **options)


def serve_lumora(httpserver: HTTPServer, search: str = "search_1.json") -> None:
    serve(httpserver, "/r/belgium+brussels/search", fixture(search))
    serve(httpserver, "/r/belgium+brussels/new", fixture("new.json"))
    serve(httpserver, "/r/belgium+brussels/comments", fixture("comments.json"))


# --- invented listings ----------------------------------------------------------------------------

def test_search_new_posts_and_comments_that_name_the_brand(httpserver: HTTPServer, reddit: praw.Reddit,
                                                           clock: FakeClock) -> None:
    serve_lumora(httpserver)
    result = make_source(reddit, clock).poll(None)
    by_id = {m.source_id: m for m in result.mentions}
    # Search results as given; 'Lumoravision', a removed post, a deleted comment, a private subreddit and
    # posts that do not name the brand are not mentions. lum001 is both searched and new: delivered once.
    assert sorted(by_id) == ["t1_c01", "t3_lum001", "t3_lum002"]
    post = by_id["t3_lum001"]
    assert post.source == "reddit" and post.brand == "Lumora" and post.author_handle == "gentse_fietser"
    assert post.url == "https://www.reddit.com/r/belgium/comments/lum001/lumora_factuur_verdubbeld/"
    assert post.author_reach == 42 and post.engagement == 42 + 17  # reach: the score (see the module docstring)
    assert post.text.startswith("Lumora factuur verdubbeld?\n\nMijn voorschot")
    assert post.conversation_id == "t3_lum001" and post.language is None
    comment = by_id["t1_c01"]
    assert comment.conversation_id == "t3_lum001" and comment.engagement == 12 and comment.author_reach == 12
    assert comment.created_at == datetime(2026, 11, 18, 9, 49, tzinfo=UTC)
    assert result.problem is None
    # Read-only app credentials: the token exchange used the client id and secret, the listings the token.
    token_req = next(req for req, _ in httpserver.log if req.path == "/api/v1/access_token")
    assert token_req.headers["Authorization"] == "Basic " + base64.b64encode(
        f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert b"grant_type=client_credentials" in token_req.get_data()
    searched = listing_requests(httpserver)[0]
    assert searched.headers["Authorization"] == f"bearer {ACCESS_TOKEN}"
    assert searched.args["q"] == "Lumora" and searched.args["sort"] == "new" and searched.args["restrict_sr"] == "True"


def test_a_restart_resumes_without_redelivery_and_late_search_results_still_arrive(
        httpserver: HTTPServer, reddit: praw.Reddit, engine: Engine, clock: FakeClock) -> None:
    serve_lumora(httpserver)
    first = poll_source(engine, make_source(reddit, clock), clock.now)
    assert first.new == 3

    clock.advance(timedelta(minutes=10))
    serve_lumora(httpserver, search="search_2.json")  # lum005 (20 min old) shows up in the index late
    second = poll_source(engine, make_source(reddit, clock), clock.now)  # a new process, same store
    assert (second.fetched, second.new) == (1, 1)
    with transaction(engine) as conn:
        assert count_mentions(conn) == 4
        state = parse_cursor(get_cursor(conn, "reddit:Lumora"))
    assert "t3_lum005" in state["search"].seen and state["comments"].newest is not None


def test_a_short_429_is_waited_out_and_a_long_one_defers(httpserver: HTTPServer, reddit: praw.Reddit,
                                                        engine: Engine, clock: FakeClock) -> None:
    sleeps: list[float] = []
    serve(httpserver, "/r/belgium+brussels/search", "Too Many Requests", status=429, headers={"retry-after": "4"})
    serve(httpserver, "/r/belgium+brussels/search", fixture("search_1.json"))
    source = make_source(reddit, clock, sleeps, subreddits=["belgium", "brussels"], submissions=False,
                         comments=False)
    result = source.poll(None)
    assert len(result.mentions) == 2 and sleeps == [pytest.approx(5.0)]

    serve(httpserver, "/r/belgium+brussels/search", "Too Many Requests", status=429, headers={"retry-after": "900"})
    outcome = poll_source(engine, source, clock.now)
    assert outcome.deferred_until == clock.now() + timedelta(seconds=900)
    with transaction(engine) as conn:
        health = health_repo.get(conn, "reddit:Lumora")
    assert health is not None and health.deferred_until == outcome.deferred_until
    assert "429" in (health.last_error or "")


def test_a_failing_listing_does_not_cost_the_others(httpserver: HTTPServer, reddit: praw.Reddit,
                                                    clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    serve(httpserver, "/r/belgium+brussels/search", fixture("search_1.json"))
    serve(httpserver, "/r/belgium+brussels/new", {"message": "Forbidden", "error": 403}, status=403)
    serve(httpserver, "/r/belgium+brussels/comments", fixture("comments.json"))
    with caplog.at_level(logging.DEBUG):
        result = make_source(reddit, clock).poll(None)
    assert {m.source_id for m in result.mentions} == {"t3_lum001", "t3_lum002", "t1_c01"}
    assert result.problem is not None and result.problem.startswith("submissions: Forbidden")
    assert ACCESS_TOKEN not in caplog.text and CLIENT_SECRET not in caplog.text


# --- the recorded responses of the real API ------------------------------------------------------

def replay(httpserver: HTTPServer, recorded: list[Interaction], path: str) -> None:
    """Serve the cassette's responses in order: its recorded token exchange, then its listings at ``path``."""
    for item in recorded:
        if item.path.endswith("/access_token"):
            httpserver.expect_oneshot_request("/api/v1/access_token", method="POST").respond_with_data(
                item.body, status=item.status, content_type=JSON)
            continue
        serve(httpserver, path, item.body, status=item.status)


def used_recorded_token(httpserver: HTTPServer) -> bool:
    """The listings were fetched with the token of the recorded exchange (a placeholder in the cassettes)."""
    return all(req.headers["Authorization"] == "bearer <ACCESS_TOKEN>" for req in listing_requests(httpserver))


@pytest.mark.shared_data
def test_the_recorded_search_parses(httpserver: HTTPServer, reddit: praw.Reddit) -> None:
    recorded = load(shared_data("api", "reddit", "praw_TestSubreddit.test_search.json"))
    replay(httpserver, recorded, "/r/all/search")
    clock = FakeClock(datetime(2016, 7, 12, 17, 11, tzinfo=UTC))
    source = make_source(reddit, clock, brand="PRAW", keywords=["praw"], subreddits=[], query="praw oauth search",
                         first_poll=timedelta(days=3650))
    result = source.poll(None)
    body = json.loads(recorded[1].body)
    assert len(result.mentions) == len(body["data"]["children"]) == 6
    for mention, child in zip(result.mentions, body["data"]["children"], strict=True):
        data = child["data"]
        assert mention.source_id == data["name"] and mention.author_handle == data["author"]
        assert mention.url == "https://www.reddit.com" + data["permalink"].split("?")[0]
        assert mention.author_reach == max(0, data["score"])
        assert mention.engagement == max(0, data["score"]) + data["num_comments"]
        assert mention.text.startswith(data["title"])
    assert used_recorded_token(httpserver)

    replay(httpserver, recorded, "/r/all/search")
    again = source.poll(result.next_cursor)
    assert again.mentions == []  # the same listing after a restart: nothing delivered twice


@pytest.mark.shared_data
def test_the_recorded_comment_stream_parses_and_resumes(httpserver: HTTPServer, reddit: praw.Reddit) -> None:
    cassette = shared_data("api", "reddit", "praw_TestSubredditStreams.test_comments__with_pause.json")
    recorded = [i for i in load(cassette) if i.path.endswith("/access_token") or "before=" not in i.uri]
    clock = FakeClock(datetime(2017, 4, 17, 7, 45, tzinfo=UTC))
    source = make_source(reddit, clock, brand="Kakapo", keywords=["favourite", "nice"], subreddits=["kakapo"],
                         query=None, submissions=False, first_poll=timedelta(days=3650))
    replay(httpserver, recorded[:2], "/r/kakapo/comments")
    first = source.poll(None)
    assert sorted(m.source_id for m in first.mentions) == ["t1_dg7dqfd", "t1_dg8ievl"]
    # 2017 comments carry no permalink: the URL is built from the submission id.
    dg8 = next(m for m in first.mentions if m.source_id == "t1_dg8ievl")
    assert dg8.url == "https://www.reddit.com/r/kakapo/comments/654eqk/_/dg8ievl/"
    assert dg8.conversation_id == "t3_654eqk" and dg8.author_handle == "3string"
    assert used_recorded_token(httpserver)

    clock.advance(timedelta(minutes=3))
    replay(httpserver, recorded[2:], "/r/kakapo/comments")  # the later listing: one new comment on top
    second = source.poll(first.next_cursor)
    assert [m.source_id for m in second.mentions] == ["t1_dgd9bcm"]


@pytest.mark.shared_data
def test_the_recorded_new_queue_parses(httpserver: HTTPServer, reddit: praw.Reddit) -> None:
    recorded = load(shared_data("api", "reddit", "praw_TestSubredditStreams.test_submissions.json"))
    replay(httpserver, recorded[:2], "/r/all/new")
    body = json.loads(recorded[1].body)
    word = re.compile(r"(?<!\w)trump(?!\w)", re.IGNORECASE)
    expected = {c["data"]["name"] for c in body["data"]["children"]
                if word.search(c["data"]["title"] + " " + c["data"]["selftext"])}
    clock = FakeClock(datetime(2016, 12, 22, 2, 17, tzinfo=UTC))
    source = make_source(reddit, clock, brand="Trump", keywords=["Trump"], subreddits=["all"], query=None,
                         comments=False, max_items=100, first_poll=timedelta(days=1))
    result = source.poll(None)
    assert expected and {m.source_id for m in result.mentions} == expected
    assert all(m.url and m.url.startswith("https://www.reddit.com/r/") for m in result.mentions)


@pytest.mark.shared_data
def test_the_recorded_429_with_retry_after_is_understood(httpserver: HTTPServer, reddit: praw.Reddit,
                                                         clock: FakeClock) -> None:
    recorded = load(shared_data("api", "reddit",
                                "prawcore_TestSession.test_request__too__many_requests__with_retry_headers.json"))
    limited = next(i for i in recorded if i.status == 429)
    assert limited.headers["retry-after"] == "4"
    serve(httpserver, "/r/belgium+brussels/search", limited.body, status=429, headers={"retry-after": "4"})
    serve(httpserver, "/r/belgium+brussels/search", fixture("search_1.json"))
    sleeps: list[float] = []
    result = make_source(reddit, clock, sleeps, submissions=False, comments=False).poll(None)
    assert len(result.mentions) == 2 and sleeps == [pytest.approx(5.0)]
