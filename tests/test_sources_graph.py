"""Facebook Page and Instagram sources against Graph API answers built from Meta's documented shapes.

No public recordings of the Graph API exist; these follow the reference pages of
``/{page-id}/posts``, ``/{post-id}/comments``, ``/{page-id}/visitor_posts``, ``/{page-id}/tagged``,
``/{ig-user-id}/media``, ``/{ig-media-id}/comments``, ``/{ig-user-id}/tags`` and the error object
(``error.code``, ``error_subcode``, ``X-Business-Use-Case-Usage``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from sqlalchemy import Engine

from monitor.clock import FakeClock
from monitor.sources.graph import FacebookSource, GraphClient, InstagramSource
from monitor.sources.polling import poll_source
from monitor.sources.resilience import RetryPolicy
from monitor.store import health as health_repo
from monitor.store import transaction
from monitor.store.mentions import count_mentions, get_cursor, set_cursor

ROOT = "https://graph.test"
V = f"{ROOT}/v21.0"
TOKEN = "EAAGtestpagetoken0123456789abcdefZZ"
PAGE, POST, IG, MEDIA = "1010", "1010_2020", "1789", "1790"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


def client(clock: FakeClock, sleeps: list[float]) -> GraphClient:
    return GraphClient(token=TOKEN, root=ROOT, version="v21.0", timeout=5, clock=clock,
                       policy=RetryPolicy(attempts=3, initial=0.01, maximum=0.02, jitter=0.0, sleep=sleeps.append))


def facebook(clock: FakeClock, sleeps: list[float], **kwargs: Any) -> FacebookSource:
    return FacebookSource(brand="Lumora", page_id=PAGE, client=client(clock, sleeps), **kwargs)


def fb_post(pid: str = POST, minute: int = 0, message: str = "Nieuwe tarieven vanaf januari") -> dict[str, Any]:
    return {"id": pid, "message": message, "created_time": f"2026-11-18T08:{minute:02d}:00+0000",
            "permalink_url": f"https://www.facebook.com/{pid}", "from": {"name": "Lumora", "id": PAGE},
            "reactions": {"data": [], "summary": {"total_count": 120}},
            "comments": {"data": [], "summary": {"total_count": 30}}, "shares": {"count": 5}}


def fb_comment(cid: str, minute: int, message: str = "Lumora, mijn voorschot is verdubbeld!",
               **extra: Any) -> dict[str, Any]:
    body = {"id": f"{POST}_{cid}", "message": message, "created_time": f"2026-11-18T09:{minute:02d}:00+0000",
            "from": {"name": f"Klant {cid}"}, "like_count": 4, "comment_count": 1,
            "permalink_url": f"https://www.facebook.com/{POST}?comment_id={cid}"}
    body.update(extra)
    return body


def listing(*items: dict[str, Any], after: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"data": list(items)}
    if after:
        body["paging"] = {"cursors": {"before": "b", "after": after}, "next": f"{V}/x?after={after}"}
    return body


def graph_error(code: int, message: str, subcode: int | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC"}
    if subcode:
        err["error_subcode"] = subcode
    return {"error": err}


def serve_page(rsps: responses.RequestsMock, comments: list[dict[str, Any]], *, visitor: list[Any] = (),
               tagged: list[Any] = ()) -> None:  # type: ignore[assignment]
    rsps.get(f"{V}/{PAGE}/posts", json=listing(fb_post()))
    rsps.get(f"{V}/{POST}/comments", json=listing(*comments))
    rsps.get(f"{V}/{PAGE}/visitor_posts", json=listing(*visitor))
    rsps.get(f"{V}/{PAGE}/tagged", json=listing(*tagged))


def fresh(rsps: responses.RequestsMock) -> None:
    rsps.reset()


def test_first_poll_reads_comments_with_paging_visitor_and_tagged_posts(
        rsps: responses.RequestsMock, clock: FakeClock, sleeps: list[float]) -> None:
    rsps.get(f"{V}/{PAGE}/posts", json=listing(fb_post()))
    rsps.get(f"{V}/{POST}/comments", json=listing(fb_comment("1", 5), fb_comment("2", 4), after="c2"))
    rsps.get(f"{V}/{POST}/comments", json=listing(fb_comment("3", 3, parent={"id": f"{POST}_1"})))
    rsps.get(f"{V}/{PAGE}/visitor_posts", json=listing({**fb_post("1010_3030", 7, "Lumora, waarom geen antwoord?"),
                                                        "from": {"name": "Bezoeker"}}))
    rsps.get(f"{V}/{PAGE}/tagged", json=listing(fb_post("4040_5050", 6, "Met @Lumora aan de lijn, 40 minuten")))
    result = facebook(clock, sleeps).poll(None)
    by_id = {m.source_id: m for m in result.mentions}
    assert sorted(by_id) == ["1010_2020_1", "1010_2020_2", "1010_2020_3", "1010_3030", "4040_5050"]
    first = by_id["1010_2020_1"]
    assert first.source == "facebook" and first.author_handle == "Klant 1" and first.engagement == 4 + 1
    assert first.author_reach == 120 + 30 + 5  # the post's engagement: a commenter's audience is not available
    assert first.conversation_id == POST and by_id["1010_2020_3"].conversation_id == f"{POST}_1"
    assert result.requests == 5 and result.problem is None
    second_page = [c for c in rsps.calls if "/comments" in c.request.url][1]
    assert second_page.request.params["after"] == "c2" and second_page.request.params["filter"] == "stream"
    assert all(TOKEN not in c.request.url and c.request.headers["Authorization"] == f"Bearer {TOKEN}"
               for c in rsps.calls)
    state = json.loads(result.next_cursor or "")
    assert state["comments"] == {"since": "2026-11-18T09:05:00+00:00", "ids": ["1010_2020_1"]}


def test_the_next_poll_sends_since_and_skips_what_was_delivered(rsps: responses.RequestsMock, clock: FakeClock,
                                                                sleeps: list[float]) -> None:
    serve_page(rsps, [fb_comment("1", 5)])
    source = facebook(clock, sleeps, visitor_posts=False, tagged=False)
    first = source.poll(None)
    fresh(rsps)
    serve_page(rsps, [fb_comment("9", 9), fb_comment("1", 5)])
    again = source.poll(first.next_cursor)
    assert [m.source_id for m in again.mentions] == ["1010_2020_9"]
    call = next(c for c in rsps.calls if "/comments" in c.request.url)
    assert call.request.params["since"] == "1794992700"  # 2026-11-18T09:05:00Z


def test_an_expired_token_is_one_clear_problem(rsps: responses.RequestsMock, engine: Engine, clock: FakeClock,
                                               sleeps: list[float], caplog: pytest.LogCaptureFixture) -> None:
    rsps.get(f"{V}/{PAGE}/posts", status=400, json=graph_error(
        190, f"Error validating access token: Session has expired. token {TOKEN}", 463))
    source = facebook(clock, sleeps)
    with caplog.at_level(logging.WARNING):
        outcome = poll_source(engine, source, clock.now)
    assert outcome.problem == "comments: access token expired or revoked (Graph API error 190/463): renew " \
                              "FACEBOOK_PAGE_TOKEN"
    assert len(rsps.calls) == 1 and TOKEN not in caplog.text  # no other listing tried with a dead token


@pytest.mark.parametrize("code", [4, 17, 32])
def test_rate_limits_defer_the_source(rsps: responses.RequestsMock, engine: Engine, clock: FakeClock,
                                      sleeps: list[float], code: int) -> None:
    usage = {PAGE: [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 42}]}
    rsps.get(f"{V}/{PAGE}/posts", status=400, json=graph_error(code, "Application request limit reached"),
             headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
    outcome = poll_source(engine, facebook(clock, sleeps), clock.now)
    assert outcome.deferred_until == clock.now() + timedelta(minutes=42)
    assert not poll_source(engine, facebook(clock, sleeps), clock.now).ran


def test_5xx_and_timeouts_are_retried_malformed_json_keeps_the_cursor(
        rsps: responses.RequestsMock, clock: FakeClock, sleeps: list[float]) -> None:
    rsps.get(f"{V}/{PAGE}/visitor_posts", status=500, body="oops")
    rsps.get(f"{V}/{PAGE}/visitor_posts", body=requests.exceptions.ReadTimeout("slow"))
    rsps.get(f"{V}/{PAGE}/visitor_posts", json=listing(fb_post("1010_3030", 7, "Lumora?")))
    source = facebook(clock, sleeps, comments=False, tagged=False)
    assert len(source.poll(None).mentions) == 1 and len(sleeps) == 2

    fresh(rsps)
    rsps.get(f"{V}/{PAGE}/visitor_posts", body='{"data": [', content_type="application/json")
    cursor = '{"visitor_posts":{"ids":["1010_3030"],"since":"2026-11-18T08:07:00+00:00"}}'
    broken = source.poll(cursor)
    assert broken.problem == "visitor_posts: the API answered with malformed JSON; cursor kept"
    assert broken.next_cursor == cursor


def test_empty_answers_removed_comments_and_edits(rsps: responses.RequestsMock, engine: Engine, clock: FakeClock,
                                                  sleeps: list[float]) -> None:
    serve_page(rsps, [])
    source = facebook(clock, sleeps)
    empty = poll_source(engine, source, clock.now)
    assert empty.fetched == 0 and empty.problem is None

    fresh(rsps)
    serve_page(rsps, [fb_comment("1", 5), fb_comment("2", 6, message="")])  # a removed/hidden comment
    stored = poll_source(engine, source, clock.now)
    assert stored.new == 1 and len(stored.skipped) == 1

    fresh(rsps)  # the post itself was removed: code 100, subcode 33
    rsps.get(f"{V}/{PAGE}/posts", json=listing(fb_post()))
    rsps.get(f"{V}/{POST}/comments", status=400, json=graph_error(100, "Object does not exist", 33))
    rsps.get(f"{V}/{PAGE}/visitor_posts", json=listing())
    rsps.get(f"{V}/{PAGE}/tagged", json=listing())
    removed = poll_source(engine, source, clock.now)
    assert removed.problem is None and len(removed.skipped) == 1

    fresh(rsps)  # edited after storing: same id, same created_time; not delivered again
    serve_page(rsps, [fb_comment("1", 5, message="Lumora (bewerkt)")])
    assert poll_source(engine, source, clock.now).fetched == 0
    with transaction(engine) as conn:
        assert count_mentions(conn) == 1
        assert json.loads(get_cursor(conn, source.name) or "")["comments"]["since"] == "2026-11-18T09:05:00+00:00"


def test_instagram_comments_replies_and_tags(rsps: responses.RequestsMock, clock: FakeClock,
                                             sleeps: list[float]) -> None:
    media = {"id": MEDIA, "caption": "Onze nieuwe app", "timestamp": "2026-11-18T08:00:00+0000",
             "permalink": "https://www.instagram.com/p/ABC/", "like_count": 300, "comments_count": 12}
    reply = {"id": "c2", "text": "@klant1 zelfde probleem", "timestamp": "2026-11-18T09:06:00+0000",
             "username": "klant2", "like_count": 1}
    rsps.get(f"{V}/{IG}/media", json=listing(media))
    top = {"id": "c1", "text": "De app van Lumora crasht", "username": "klant1",
           "timestamp": "2026-11-18T09:05:00+0000", "like_count": 7, "replies": {"data": [reply]}}
    rsps.get(f"{V}/{MEDIA}/comments", json=listing(top))
    rsps.get(f"{V}/{IG}/tags", json=listing({**media, "id": "1800", "caption": "Weer geen stroom @lumora_be",
                                             "username": "klant3", "like_count": 9, "comments_count": 1}))
    source = InstagramSource(brand="Lumora", account_id=IG, client=client(clock, sleeps))
    result = source.poll(None)
    by_id = {m.source_id: m for m in result.mentions}
    assert sorted(by_id) == ["1800", "c1", "c2"]
    assert by_id["c1"].author_reach == 312 and by_id["c1"].engagement == 7 + 1
    assert by_id["c2"].conversation_id == "c1" and by_id["c2"].url == "https://www.instagram.com/p/ABC/"
    assert by_id["1800"].source == "instagram" and by_id["1800"].author_reach == 10
    state = json.loads(result.next_cursor or "")
    assert state["comments"]["since"] == "2026-11-18T09:06:00+00:00" and state["tags"]["ids"] == ["1800"]


def test_a_missing_permission_makes_the_source_failing_with_what_to_fix(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    """Meta's real answer on comments without the permission: code 100, no subcode. Not a removed item."""
    rsps.get(f"{V}/{PAGE}/posts", json=listing(fb_post(), fb_post("1010_3030", 1)))
    rsps.get(f"{V}/{POST}/comments", status=400, json=graph_error(
        100, "(#100) This endpoint requires the 'pages_read_engagement' permission or the 'Page Public Content "
             "Access' feature."))
    outcome = poll_source(engine, facebook(clock, sleeps), clock.now)
    assert outcome.failed and not outcome.skipped
    assert outcome.problem is not None and "pages_read_engagement" in outcome.problem
    assert "grant it to the token in FACEBOOK_PAGE_TOKEN" in outcome.problem
    assert len(rsps.calls) == 2  # the other post and the other listings would answer the same: not asked
    with transaction(engine) as conn:
        health = health_repo.get(conn, "facebook:Lumora")
    assert health is not None and health.consecutive_failures == 1 and "pages_read_engagement" in (
        health.last_error or "")


@pytest.mark.parametrize("code", [10, 200, 283])
def test_permission_codes_stop_the_poll(rsps: responses.RequestsMock, clock: FakeClock, sleeps: list[float],
                                        code: int) -> None:
    rsps.get(f"{V}/{IG}/media", status=403, json=graph_error(code, "Permissions error"))
    result = InstagramSource(brand="Lumora", account_id=IG, client=client(clock, sleeps)).poll(None)
    assert result.problem == (f"comments: permission missing (Graph API error {code}: Permissions error): grant it "
                              "to the token in FACEBOOK_PAGE_TOKEN (the app's permissions and the page role of its "
                              "user)")
    assert len(rsps.calls) == 1


def test_a_failed_post_holds_the_comments_cursor_and_the_next_poll_stores_its_comments(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    post_b = "1010_3030"
    cursor = '{"comments":{"ids":["1010_2020_0"],"since":"2026-11-18T09:00:00+00:00"}}'
    with transaction(engine) as conn:
        set_cursor(conn, "facebook:Lumora", cursor, clock.now())
    rsps.get(f"{V}/{PAGE}/posts", json=listing(fb_post(), fb_post(post_b, 1)))
    rsps.get(f"{V}/{POST}/comments", json=listing(fb_comment("1", 30), fb_comment("2", 20)))
    b_comments = [{**fb_comment(str(i), 10 + i), "id": f"{post_b}_{i}"} for i in range(7)]
    rsps.get(f"{V}/{post_b}/comments", status=500, body="oops")
    source = facebook(clock, sleeps, visitor_posts=False, tagged=False)
    partial = poll_source(engine, source, clock.now)
    assert partial.new == 2 and partial.failed and f"post {post_b}: HTTP 500" in (partial.problem or "")
    with transaction(engine) as conn:
        assert get_cursor(conn, source.name) == cursor  # not moved past B's unseen comments

    fresh(rsps)
    rsps.get(f"{V}/{PAGE}/posts", json=listing(fb_post(), fb_post(post_b, 1)))
    rsps.get(f"{V}/{POST}/comments", json=listing(fb_comment("1", 30), fb_comment("2", 20)))
    rsps.get(f"{V}/{post_b}/comments", json=listing(*b_comments))
    again = poll_source(engine, source, clock.now)
    assert again.new == 7 and again.problem is None
    with transaction(engine) as conn:
        assert count_mentions(conn) == 9
        assert json.loads(get_cursor(conn, source.name) or "")["comments"]["since"] == "2026-11-18T09:30:00+00:00"


def test_a_failed_second_page_holds_the_listing_cursor(rsps: responses.RequestsMock, clock: FakeClock,
                                                      sleeps: list[float]) -> None:
    rsps.get(f"{V}/{IG}/tags", json=listing({"id": "1801", "caption": "Lumora!", "username": "a",
                                             "timestamp": "2026-11-18T09:05:00+0000"}, after="p2"))
    rsps.get(f"{V}/{IG}/tags", status=503, body="down")
    source = InstagramSource(brand="Lumora", account_id=IG, client=client(clock, sleeps), comments=False)
    cursor = '{"tags":{"ids":["1700"],"since":"2026-11-18T08:00:00+00:00"}}'
    result = source.poll(cursor)
    assert [m.source_id for m in result.mentions] == ["1801"] and result.problem == "tags: HTTP 503"
    assert result.next_cursor == cursor


def test_rate_limit_with_retry_after_and_no_usage_header(rsps: responses.RequestsMock, clock: FakeClock,
                                                         sleeps: list[float]) -> None:
    rsps.get(f"{V}/{PAGE}/visitor_posts", status=429, json=graph_error(4, "Application request limit reached"),
             headers={"Retry-After": "600"})
    result = facebook(clock, sleeps, comments=False, tagged=False).poll(None)
    assert result.deferred_until == clock.now() + timedelta(minutes=10)


class PagedListing:
    """A Graph edge as the API serves it: newest first, ``since`` honoured when asked, ``after`` page tokens."""

    def __init__(self, items: list[dict[str, Any]], per_page: int = 2, fail_token: str | None = None) -> None:
        self.items = items
        self.per_page = per_page
        self.fail_token = fail_token  # the page at this token answers 500 for one poll (3 attempts)
        self.failures = 3

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url or "").query)
        after = query.get("after", [None])[0]
        if after is not None and after == self.fail_token and self.failures:
            self.failures -= 1
            return 500, {}, "oops"
        since = int(query["since"][0]) if "since" in query else None
        newest_first = sorted(self.items, key=lambda i: i.get("created_time") or i.get("timestamp"), reverse=True)
        kept = [i for i in newest_first if since is None or _epoch(i) >= since]
        start = int(after or 0)
        page = kept[start:start + self.per_page]
        more = start + self.per_page < len(kept)
        return 200, {}, json.dumps(listing(*page, after=str(start + self.per_page) if more else None))


def _epoch(item: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(str(item.get("created_time") or item.get("timestamp"))).timestamp())


def test_a_backlog_longer_than_the_page_limit_is_stored_over_the_next_polls(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    """Post A has 9 new comments, 2 a page, 2 pages a poll: three polls store all 9, each once, and the time
    moves only when the backlog is read; a failed page keeps its token; a comment added meanwhile comes next."""
    post_b = "1010_3030"
    floor = '{"comments":{"ids":["1010_2020_0"],"since":"2026-11-18T09:00:00+00:00"}}'
    with transaction(engine) as conn:
        set_cursor(conn, "facebook:Lumora", floor, clock.now())
    a_edge = PagedListing([fb_comment(str(i), i) for i in range(1, 10)], fail_token="6")
    rsps.get(f"{V}/{PAGE}/posts", json=listing(fb_post(), fb_post(post_b, 1)))
    rsps.add_callback(responses.GET, f"{V}/{POST}/comments", callback=a_edge)
    rsps.get(f"{V}/{post_b}/comments", json=listing({**fb_comment("1", 30), "id": f"{post_b}_1"}))
    source = facebook(clock, sleeps, visitor_posts=False, tagged=False, max_pages=2)

    news = [poll_source(engine, source, clock.now)]
    with transaction(engine) as conn:
        state = json.loads(get_cursor(conn, source.name) or "")["comments"]
    assert news[0].new == 5 and news[0].problem is None  # A's 9, 8, 7, 6 and B's one
    assert state["since"] == "2026-11-18T09:00:00+00:00" and state["newest"] == "2026-11-18T09:30:00+00:00"
    assert state["resume"] == {f"{POST}/comments": {"after": "4", "reach": 155,
                                                    "url": f"https://www.facebook.com/{POST}"}}

    news.append(poll_source(engine, source, clock.now))  # page "4" read, page "6" fails: its token is kept
    assert news[1].new == 2 and f"post {POST}: HTTP 500" in (news[1].problem or "")
    news.append(poll_source(engine, source, clock.now))  # pages "6" and "8": the backlog is read
    assert news[2].new == 3 and news[2].problem is None
    only_a = [c.request.url for c in rsps.calls[-2:]]
    assert all(f"/{POST}/comments" in u for u in only_a)  # draining asks only the post with pages left
    with transaction(engine) as conn:
        assert count_mentions(conn) == 10
        assert json.loads(get_cursor(conn, source.name) or "")["comments"] == {
            "since": "2026-11-18T09:30:00+00:00", "ids": [f"{post_b}_1"]}

    a_edge.items.append(fb_comment("10", 45))
    news.append(poll_source(engine, source, clock.now))
    assert news[3].new == 1
    with transaction(engine) as conn:
        assert count_mentions(conn) == 11
    assert sum(n.new for n in news) == 11


def test_instagram_tags_longer_than_the_page_limit_resume_without_a_since(
        rsps: responses.RequestsMock, clock: FakeClock, sleeps: list[float]) -> None:
    def media(mid: str, minute: int) -> dict[str, Any]:
        return {"id": mid, "caption": f"Lumora {mid}", "username": "a",
                "timestamp": f"2026-11-18T09:{minute:02d}:00+0000"}

    edge = PagedListing([media(f"new{i}", 10 + i) for i in range(1, 8)] + [media("old1", 1), media("old2", 0)])
    rsps.add_callback(responses.GET, f"{V}/{IG}/tags", callback=edge)
    source = InstagramSource(brand="Lumora", account_id=IG, client=client(clock, sleeps), comments=False,
                             max_pages=2)
    cursor: str | None = '{"tags":{"ids":["old0"],"since":"2026-11-18T09:05:00+00:00"}}'
    got: list[str] = []
    for _ in range(3):
        result = source.poll(cursor)
        got += [m.source_id for m in result.mentions]
        cursor = result.next_cursor
    assert sorted(got) == sorted(f"new{i}" for i in range(1, 8))  # all seven, once, and no older one
    assert json.loads(cursor or "")["tags"] == {"since": "2026-11-18T09:17:00+00:00", "ids": ["new7"]}
