"""Bounded I/O: a whole-request deadline, a size cap, and no sleeping inside client libraries beyond our policy.

Local servers play the misbehaving APIs: a raw socket server drips its answer
a byte at a time (``requests``' per-read timeout never fires on it), another
sends more than ``http.max_body``, and a Reddit endpoint says its window is
spent for 90 s. The limits are made small so each test takes about a second.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import praw
import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine

from monitor.clock import FakeClock
from monitor.sources.feeds import FeedSource
from monitor.sources.polling import poll_source
from monitor.sources.reddit import RedditSession, RedditSource
from monitor.sources.resilience import BodyTooLarge, DeadlineExceeded, RetryPolicy, size_text
from monitor.sources.schema import CollectConfig, HttpConfig
from monitor.store import health as health_repo
from monitor.store import transaction

REDDIT_FIXTURES = Path(__file__).parent / "fixtures" / "reddit"
RSS = ('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
       '<item><title>Lumora opens a shop</title><guid>1</guid></item></channel></rss>')


class ScriptedServer:
    """An HTTP server on a raw socket: reads each request's head, then ``script`` writes whatever it likes."""

    def __init__(self, script: Callable[[socket.socket, threading.Event], None]) -> None:
        self.script = script
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/feed.xml"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            with contextlib.suppress(OSError):  # the client gave up: exactly what these tests expect
                self.script(conn, self.stop)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[socket.socket, threading.Event], None]], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Callable[[socket.socket, threading.Event], None]) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def drip_with_length(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 5000\r\n\r\n")
    while not stop.is_set():
        conn.sendall(b"<")
        time.sleep(0.2)  # well inside the 1 s read timeout: only a deadline on the whole answer stops this


def drip_chunked(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nTransfer-Encoding: chunked\r\n\r\n")
    while not stop.is_set():
        conn.sendall(b"1\r\n<\r\n")
        time.sleep(0.2)


def flood_chunked(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nTransfer-Encoding: chunked\r\n\r\n")
    block = b"x" * 1000
    while not stop.is_set():
        conn.sendall(b"3e8\r\n" + block + b"\r\n")


def feed(url: str, *, timeout: float = 1.0, max_body: int = 5_000_000,
         sleeps: list[float] | None = None) -> FeedSource:
    policy = RetryPolicy(attempts=3, sleep=(sleeps if sleeps is not None else []).append, max_body=max_body)
    return FeedSource(brand="Lumora", site="Drip", url=url, keywords=["Lumora"], languages=["nl"],
                      timeout=timeout, policy=policy, name="news:Lumora:Drip")


@pytest.mark.parametrize("script", [drip_with_length, drip_chunked], ids=["content-length", "chunked"])
def test_a_dripping_feed_ends_at_the_deadline_not_minutes_later(
        scripted: Callable[..., ScriptedServer], script: Callable[[socket.socket, threading.Event], None],
        engine: Engine, clock: FakeClock) -> None:
    server = scripted(script)
    sleeps: list[float] = []
    source = feed(server.url, sleeps=sleeps)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        source.poll(None)
    elapsed = time.monotonic() - started
    # The 1 s deadline, not minutes later (the server drips until the test ends); ``sleeps == []``: not
    # retried. The upper bound leaves room for a loaded CI machine: it only has to be far below forever.
    assert 0.9 < elapsed < 10
    assert sleeps == []
    assert str(caught.value) == (f"{server.url}: answer not complete after 1 s (http.timeout bounds the whole "
                                 "request); the server is too slow or drips its answer")

    outcome = poll_source(engine, source, clock.now)  # the poller records it as the source's health reason
    assert outcome.failed
    with transaction(engine) as conn:
        health = health_repo.get(conn, "news:Lumora:Drip")
    assert health is not None and health.consecutive_failures == 1
    assert health.last_error == f"DeadlineExceeded: {caught.value}"


def test_a_feed_declaring_more_than_max_body_is_refused_without_reading_it(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(RSS + " " * 3000, content_type="application/rss+xml")
    with pytest.raises(BodyTooLarge) as caught:
        feed(httpserver.url_for("/feed.xml"), max_body=1000).poll(None)
    assert str(caught.value) == (f"{httpserver.url_for('/feed.xml')}: answer larger than 1 kB; raise http.max_body "
                                 "or fix the feed")
    assert len(httpserver.log) == 1  # a size problem is not retried


def test_a_streamed_feed_growing_past_max_body_is_cut_off(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(flood_chunked)  # endless, no Content-Length: only counting the bytes read stops it
    started = time.monotonic()
    with pytest.raises(BodyTooLarge, match=r"answer larger than 50 kB; raise http.max_body or fix the feed"):
        feed(server.url, max_body=50_000).poll(None)
    assert time.monotonic() - started < 10  # the flood is endless: stopped by the count, not by the server


def test_a_feed_within_the_limits_reads_as_before(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(RSS, content_type="application/rss+xml")
    result = feed(httpserver.url_for("/feed.xml"), max_body=len(RSS)).poll(None)
    assert [m.text for m in result.mentions] == ["Lumora opens a shop"]


def test_max_body_is_read_from_monitor_yaml_in_readable_units() -> None:
    assert HttpConfig(max_body="5 MB").max_body == 5_000_000
    assert HttpConfig(max_body="512 kB").max_body == 512_000
    assert HttpConfig(max_body="2 MiB").max_body == 2 * 1024 * 1024
    assert HttpConfig().max_body == 5_000_000 and size_text(5_000_000) == "5 MB"
    config = CollectConfig.model_validate({"http": {"max_body": "1 MB"}, "brands": {"Lumora": {}}})
    assert RetryPolicy.from_config(config.http).max_body == 1_000_000
    with pytest.raises(ValueError, match="expected a size like '5 MB'"):
        HttpConfig(max_body="lots")


# --- Reddit: prawcore's own sleeping is capped ------------------------------------------------------

def reddit_with_session(httpserver: HTTPServer, session: RedditSession) -> praw.Reddit:
    base = httpserver.url_for("/").rstrip("/")
    httpserver.expect_request("/api/v1/access_token", method="POST").respond_with_json(
        {"access_token": "token-abcdef123456", "token_type": "bearer", "expires_in": 3600, "scope": "*"})
    return praw.Reddit(client_id="id", client_secret="secret-0123456789", user_agent="monitor-tests/1.0",
                       oauth_url=base, reddit_url=base, check_for_updates=False,
                       requestor_kwargs={"session": session})


def serve_listing(httpserver: HTTPServer, path: str, name: str, headers: dict[str, str] | None = None) -> None:
    body = (REDDIT_FIXTURES / name).read_text(encoding="utf-8")
    httpserver.expect_oneshot_request(re.compile("^" + re.escape(path) + "/?$"), method="GET").respond_with_data(
        body, headers=headers, content_type="application/json; charset=UTF-8")


SPENT = {"x-ratelimit-remaining": "0", "x-ratelimit-used": "100"}


def test_an_exhausted_reddit_window_defers_the_source_instead_of_sleeping_in_prawcore(
        httpserver: HTTPServer, clock: FakeClock) -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=1, rate_limit_max_wait=60, sleep=sleeps.append)
    reddit = reddit_with_session(httpserver, RedditSession(5.0, policy, clock))
    serve_listing(httpserver, "/r/belgium/search", "search_1.json", {**SPENT, "x-ratelimit-reset": "90"})
    source = RedditSource(brand="Lumora", reddit=reddit, keywords=["Lumora"], subreddits=["belgium"],
                          query="Lumora", policy=policy, clock=clock)
    started = time.monotonic()
    result = source.poll(None)
    assert time.monotonic() - started < 5  # prawcore alone sleeps the 90 s here, twice
    assert len(result.mentions) == 2  # what the first listing gave is kept
    assert result.deferred_until == clock.now() + timedelta(seconds=91)
    assert result.problem == (f"submissions: rate limited (no requests left in this window) until "
                              f"{result.deferred_until:%Y-%m-%d %H:%M:%S} UTC")
    assert sleeps == []
    assert [req.path for req, _ in httpserver.log] == ["/api/v1/access_token", "/r/belgium/search/"]


def test_a_short_reddit_window_is_waited_out_through_our_policy(httpserver: HTTPServer, clock: FakeClock) -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=1, rate_limit_max_wait=60, sleep=sleeps.append)
    reddit = reddit_with_session(httpserver, RedditSession(5.0, policy, clock))
    serve_listing(httpserver, "/r/belgium/search", "search_1.json", {**SPENT, "x-ratelimit-reset": "4"})
    serve_listing(httpserver, "/r/belgium/new", "new.json")
    serve_listing(httpserver, "/r/belgium/comments", "comments.json")
    source = RedditSource(brand="Lumora", reddit=reddit, keywords=["Lumora"], subreddits=["belgium"],
                          query="Lumora", policy=policy, clock=clock)
    started = time.monotonic()
    result = source.poll(None)
    assert time.monotonic() - started < 5
    assert result.problem is None and result.deferred_until is None
    assert sleeps == [pytest.approx(5.0)]  # the 4 s reset and a second for the reset itself, via our sleep
    assert len(json.loads(result.next_cursor or "{}")) == 3


# --- YouTube (httplib2 API) and Bluesky (httpx): the same whole-answer deadline ------------------------

def drip_json(conn: socket.socket, stop: threading.Event) -> None:
    """A JSON answer one byte every 0.2 s: each read is well inside the timeout, the whole never ends."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    while not stop.is_set():
        conn.sendall(b"1\r\n \r\n")
        time.sleep(0.2)


def test_a_dripping_youtube_answer_ends_at_the_deadline(scripted: Callable[..., ScriptedServer],
                                                        clock: FakeClock) -> None:
    from monitor.sources.youtube import YouTubeSource

    server = scripted(drip_json)
    sleeps: list[float] = []
    source = YouTubeSource(brand="Lumora", api_key="AIzaSyTESTKEY0123456789abcdefghijklmno",
                           channel_id="UC" + "x" * 22, api_root=server.url.rsplit("/", 1)[0], clock=clock,
                           timeout=1.0, policy=RetryPolicy(attempts=3, sleep=sleeps.append))
    started = time.monotonic()
    result = source.poll(None)
    assert 0.9 < time.monotonic() - started < 10 and sleeps == []  # the deadline (the drip is endless); not retried
    assert result.problem is not None and "answer not complete after 1 s" in result.problem


def test_a_dripping_bluesky_answer_ends_at_the_deadline(scripted: Callable[..., ScriptedServer],
                                                        clock: FakeClock) -> None:
    from monitor.sources.bluesky import BlueskySource

    server = scripted(drip_json)
    sleeps: list[float] = []
    source = BlueskySource(brand="Lumora", query="Lumora", handle="monitor.test", app_password="abcd-efgh-ijkl-mnop",
                           service=server.url.rsplit("/", 1)[0], clock=clock, timeout=1.0,
                           policy=RetryPolicy(attempts=3, sleep=sleeps.append))
    started = time.monotonic()
    result = source.poll(None)  # the login itself drips
    assert 0.9 < time.monotonic() - started < 10 and sleeps == []  # the deadline (the drip is endless)
    assert result.problem is not None and "answer not complete after 1 s" in result.problem
