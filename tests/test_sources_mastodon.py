"""The Mastodon source: the real Mastodon.py client against recorded and invented answers (``responses``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from sqlalchemy import Engine

from monitor.clock import FakeClock
from monitor.sources.mastodon import MastodonSource, mention_from_status
from monitor.sources.polling import poll_source
from monitor.sources.resilience import RetryPolicy
from monitor.store import transaction
from monitor.store.mentions import count_mentions, get_cursor, get_mentions, set_cursor
from tests.conftest import shared_data
from tests.fixtures.cassettes import load

BASE = "https://mastodon.test"
SEARCH = f"{BASE}/api/v2/search"
TAG = f"{BASE}/api/v1/timelines/tag/lumora"
INSTANCE = f"{BASE}/api/v2/instance/"
TOKEN = "mastodon-test-access-token-0123456789"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """Answers per URL in the order registered (the last one repeats)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


def status(n: int, text: str = "Lumora stuurt weer een foute factuur", **extra: Any) -> dict[str, Any]:
    """A status as Mastodon 4.x documents it (only the fields we read, plus a few we ignore)."""
    body: dict[str, Any] = {
        "id": str(110000000000000000 + n), "created_at": f"2026-11-18T09:{n % 60:02d}:00.000Z",
        "in_reply_to_id": None, "visibility": "public", "language": "nl", "spoiler_text": "",
        "uri": f"https://social.example/users/klant{n}/statuses/{n}",
        "url": f"https://social.example/@klant{n}/{n}",
        "replies_count": 1, "reblogs_count": 2, "favourites_count": 3, "edited_at": None,
        "content": f"<p>{text} <a href=\"https://mastodon.test/tags/lumora\" class=\"mention hashtag\">"
                   f"#<span>lumora</span></a></p>",
        "account": {"id": str(n), "acct": f"klant{n}@social.example", "followers_count": 40 + n},
    }
    body.update(extra)
    return body


def make_source(clock: FakeClock, sleeps: list[float], **kwargs: Any) -> MastodonSource:
    options: dict[str, Any] = {
        "brand": "Lumora", "query": "Lumora", "hashtags": ["lumora"], "languages": ["nl", "fr", "en"],
        "clock": clock, "timeout": 5,
        "policy": RetryPolicy(attempts=3, initial=0.01, maximum=0.02, jitter=0.0, rate_limit_max_wait=60,
                              sleep=sleeps.append),
    }
    options.update(kwargs)
    instance = options.pop("instance", BASE)
    return MastodonSource.connect(instance, **options)


def serve_instance(rsps: responses.RequestsMock) -> None:
    """Mastodon.py asks once per client whether hashtag timelines are public."""
    rsps.get(INSTANCE, json={"configuration": {"timelines_access": {"hashtag_feeds": {
        "local": "public", "remote": "public"}}}})


def fresh(rsps: responses.RequestsMock, *urls: str) -> None:
    """Forget the answers registered for ``urls`` (a used one would otherwise be served again)."""
    for url in urls:
        rsps.remove(responses.GET, url)


def params(call: Any) -> dict[str, str]:
    return dict(call.request.params)


# --- normalisation --------------------------------------------------------------------------------

def test_a_status_becomes_a_mention_with_reach_engagement_and_the_federated_id() -> None:
    m = mention_from_status(status(7, spoiler_text="Klacht", in_reply_to_id="1099"), brand="Lumora",
                            languages=["nl"])
    assert m.source == "mastodon" and m.source_id == "https://social.example/users/klant7/statuses/7"
    assert m.text == "Klacht\n\nLumora stuurt weer een foute factuur #lumora"
    assert m.author_handle == "klant7@social.example" and m.author_reach == 47 and m.engagement == 6
    assert m.url == "https://social.example/@klant7/7" and m.language == "nl" and m.conversation_id == "1099"
    assert m.created_at == datetime(2026, 11, 18, 9, 7, tzinfo=UTC)
    with pytest.raises(ValueError, match="no text"):
        mention_from_status(status(8, content="<p></p>"), brand="Lumora", languages=["nl"])


# --- polling --------------------------------------------------------------------------------------

def test_first_poll_reads_the_newest_page_then_continues_from_the_cursor(
        rsps: responses.RequestsMock, clock: FakeClock, sleeps: list[float]) -> None:
    serve_instance(rsps)
    rsps.get(SEARCH, json={"accounts": [], "statuses": [status(2), status(1)], "hashtags": []})
    rsps.get(TAG, json=[status(3, "Lumora #lumora storing"), status(2)])
    source = make_source(clock, sleeps)
    first = source.poll(None)
    # status 2 is both searched and tagged: delivered once.
    assert [m.source_id.rsplit("/", 1)[1] for m in first.mentions] == ["2", "1", "3"]
    assert json.loads(first.next_cursor or "") == {"search": "110000000000000002", "tag:lumora": "110000000000000003"}
    search_call = next(c for c in rsps.calls if c.request.url.startswith(SEARCH))
    assert params(search_call) == {"q": "Lumora", "type": "statuses", "limit": "40", "exclude_unreviewed": "1"}
    assert "Authorization" not in search_call.request.headers

    fresh(rsps, SEARCH, TAG)
    rsps.get(SEARCH, json={"accounts": [], "statuses": [status(4)], "hashtags": []})
    rsps.get(TAG, json=[])
    again = source.poll(first.next_cursor)
    assert [m.source_id.rsplit("/", 1)[1] for m in again.mentions] == ["4"]
    assert params(rsps.calls[-2])["min_id"] == "110000000000000002"
    assert params(rsps.calls[-1])["min_id"] == "110000000000000003"
    assert json.loads(again.next_cursor or "") == {"search": "110000000000000004", "tag:lumora": "110000000000000003"}
    assert again.requests == 2 and again.problem is None


def test_a_backlog_is_paged_forward_without_a_gap(rsps: responses.RequestsMock, clock: FakeClock,
                                                  sleeps: list[float]) -> None:
    serve_instance(rsps)
    rsps.get(TAG, json=[status(n) for n in range(140, 100, -1)])  # 40: a full page, more may follow
    rsps.get(TAG, json=[status(n) for n in range(180, 140, -1)])
    rsps.get(TAG, json=[status(185)])
    source = make_source(clock, sleeps, query=None, max_pages=3)
    result = source.poll(json.dumps({"tag:lumora": "110000000000000100"}))
    assert len(result.mentions) == 81 and result.requests == 3
    assert [params(c)["min_id"] for c in rsps.calls[1:]] == [
        "110000000000000100", "110000000000000140", "110000000000000180"]
    assert json.loads(result.next_cursor or "") == {"tag:lumora": "110000000000000185"}


def test_a_short_rate_limit_is_waited_out_a_long_one_defers_and_keeps_the_cursor(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    soon = (clock.now() + timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    rsps.get(SEARCH, status=429, json={"error": "Too many requests"}, headers={"X-RateLimit-Reset": soon})
    rsps.get(SEARCH, json={"accounts": [], "statuses": [status(5)], "hashtags": []})
    result = make_source(clock, sleeps, hashtags=[]).poll('{"search":"110000000000000001"}')
    assert len(result.mentions) == 1 and sleeps == [21.0]

    fresh(rsps, SEARCH)
    later = (clock.now() + timedelta(minutes=4)).isoformat()
    rsps.get(SEARCH, status=429, json={"error": "Too many requests"}, headers={"X-RateLimit-Reset": later})
    source = make_source(clock, sleeps, hashtags=[])
    with transaction(engine) as conn:
        set_cursor(conn, source.name, '{"search":"110000000000000005"}', clock.now())
    outcome = poll_source(engine, source, clock.now)
    assert outcome.deferred_until == clock.now() + timedelta(minutes=4)
    assert outcome.problem is not None and "rate limited" in outcome.problem
    with transaction(engine) as conn:
        assert get_cursor(conn, source.name) == '{"search":"110000000000000005"}'
    assert not poll_source(engine, source, clock.now).ran


def test_5xx_and_timeouts_are_retried_then_one_problem_line(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float],
        caplog: pytest.LogCaptureFixture) -> None:
    rsps.get(SEARCH, status=502, body="bad gateway")
    rsps.get(SEARCH, body=requests.exceptions.ReadTimeout("read timed out"))
    rsps.get(SEARCH, json={"accounts": [], "statuses": [status(6)], "hashtags": []})
    source = make_source(clock, sleeps, hashtags=[], access_token=TOKEN)
    assert len(source.poll(None).mentions) == 1 and len(sleeps) == 2

    fresh(rsps, SEARCH)
    for _ in range(3):
        rsps.get(SEARCH, status=503, body="down")
    with caplog.at_level(logging.WARNING):
        outcome = poll_source(engine, source, clock.now)
    assert outcome.problem is not None and "503" in outcome.problem and outcome.new == 0
    assert TOKEN not in caplog.text and TOKEN not in outcome.problem


def test_malformed_json_is_one_line_and_the_cursor_is_kept(rsps: responses.RequestsMock, clock: FakeClock,
                                                            sleeps: list[float]) -> None:
    serve_instance(rsps)
    rsps.get(SEARCH, body='{"statuses": [{"id": "1", ', content_type="application/json")
    rsps.get(TAG, json=[status(9)])
    result = make_source(clock, sleeps).poll('{"search":"110000000000000001"}')
    assert result.problem == "search: https://mastodon.test answered with malformed JSON; cursor kept"
    # The other stream still ran; the broken one keeps its cursor.
    assert json.loads(result.next_cursor or "") == {"search": "110000000000000001", "tag:lumora": "110000000000000009"}


def test_an_empty_answer_and_odd_statuses_are_handled(rsps: responses.RequestsMock, clock: FakeClock,
                                                      sleeps: list[float]) -> None:
    serve_instance(rsps)
    rsps.get(SEARCH, json={"accounts": [], "statuses": [], "hashtags": []})
    rsps.get(TAG, json=[status(12, visibility="direct"), status(11, content=""), status(10)])
    result = make_source(clock, sleeps).poll(None)
    assert [m.source_id.rsplit("/", 1)[1] for m in result.mentions] == ["10"]
    assert result.skipped == [
        "mastodon:Lumora:mastodon.test tag:lumora: skipped: status 110000000000000011 has no text"]
    assert json.loads(result.next_cursor or "") == {"tag:lumora": "110000000000000012"}


def test_edited_or_deleted_after_storing_changes_nothing_stored(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    serve_instance(rsps)
    rsps.get(TAG, json=[status(20)])
    source = make_source(clock, sleeps, query=None)
    assert poll_source(engine, source, clock.now).new == 1
    # An instance that ignores min_id sends the edited status again: it is not delivered twice.
    fresh(rsps, TAG)
    rsps.get(TAG, json=[status(20, "Lumora (bewerkt)", edited_at="2026-11-18T10:00:00Z")])
    outcome = poll_source(engine, source, clock.now)
    assert outcome.fetched == 0 and outcome.problem is None
    # Deleted: it is simply gone from the answer; the stored copy stays until the retention purge.
    fresh(rsps, TAG)
    rsps.get(TAG, json=[])
    assert poll_source(engine, source, clock.now).problem is None
    with transaction(engine) as conn:
        assert count_mentions(conn) == 1
        (stored,) = get_mentions(conn, [1])
    assert stored.mention.text.startswith("Lumora stuurt weer")


def test_the_same_status_through_two_instances_is_stored_once(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    other = "https://other.test"
    rsps.get(SEARCH, json={"statuses": [status(30)]})
    rsps.get(f"{other}/api/v2/search", json={"statuses": [status(30, id="9990")]})
    one = make_source(clock, sleeps, hashtags=[])
    two = make_source(clock, sleeps, hashtags=[], instance=other)
    assert one.name != two.name
    assert poll_source(engine, one, clock.now).new == 1
    assert poll_source(engine, two, clock.now).new == 0


# --- Mastodon.py's own recordings -----------------------------------------------------------------

@pytest.mark.shared_data
def test_the_recorded_search_and_hashtag_timeline_parse(rsps: responses.RequestsMock, clock: FakeClock,
                                                        sleeps: list[float]) -> None:
    root = "http://localhost:3000"
    for name in ("mastodonpy_test_search.yaml", "mastodonpy_test_hashtag_tl.yaml"):
        for rec in load(shared_data("api", "mastodon", name)):
            if rec.method == "GET":
                rsps.get(rec.uri.split("?")[0], body=rec.body, status=rec.status, headers={
                    k: v for k, v in rec.headers.items() if k.lower() != "content-type"},
                         content_type=rec.headers.get("content-type", "application/json"))
    searched = make_source(clock, sleeps, instance=root, query="mastodonpy_test", hashtags=[]).poll(None)
    assert searched.mentions == [] and searched.problem is None and searched.next_cursor == "{}"
    tagged = make_source(clock, sleeps, instance=root, query=None, hashtags=["hoot"], languages=["en"]).poll(None)
    (m,) = tagged.mentions
    assert m.text == "#hoot (hashtag toot)" and m.author_handle == "mastodonpy_test_2"
    assert m.source_id == "http://localhost:3000/ap/users/117020566092212359/statuses/117020593741189701"
    assert m.language is None  # tagged 'ja', not a language this brand expects
    assert json.loads(tagged.next_cursor or "") == {"tag:hoot": "117020593741189701"}


def test_a_failed_second_search_page_keeps_the_cursor_and_the_next_poll_stores_it(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    first_page = {"accounts": [], "statuses": [status(n) for n in range(160, 120, -1)], "hashtags": []}
    second_page = {"accounts": [], "statuses": [status(n) for n in range(120, 113, -1)], "hashtags": []}
    rsps.get(SEARCH, json=first_page)
    for _ in range(3):
        rsps.get(SEARCH, status=500, body="oops")
    source = make_source(clock, sleeps, hashtags=[])
    cursor = '{"search":"110000000000000100"}'
    with transaction(engine) as conn:
        set_cursor(conn, source.name, cursor, clock.now())
    partial = poll_source(engine, source, clock.now)
    assert partial.new == 40 and partial.failed and partial.requests == 4  # retries counted
    with transaction(engine) as conn:
        assert get_cursor(conn, source.name) == cursor

    fresh(rsps, SEARCH)
    rsps.get(SEARCH, json=first_page)
    rsps.get(SEARCH, json=second_page)
    again = poll_source(engine, source, clock.now)
    assert again.new == 7 and again.problem is None
    with transaction(engine) as conn:
        assert count_mentions(conn) == 47 and get_cursor(conn, source.name) == '{"search":"110000000000000160"}'


def test_retry_after_is_honoured(rsps: responses.RequestsMock, clock: FakeClock, sleeps: list[float]) -> None:
    rsps.get(SEARCH, status=429, json={"error": "Too many requests"}, headers={"Retry-After": "900"})
    result = make_source(clock, sleeps, hashtags=[]).poll('{"search":"110000000000000001"}')
    assert result.deferred_until == clock.now() + timedelta(minutes=15) and sleeps == []


def test_a_reset_in_the_past_never_defers_into_the_past(rsps: responses.RequestsMock, clock: FakeClock,
                                                          sleeps: list[float]) -> None:
    past = (clock.now() - timedelta(minutes=3)).isoformat()
    rsps.get(SEARCH, status=429, json={"error": "Too many requests"}, headers={"X-RateLimit-Reset": past})
    result = make_source(clock, sleeps, hashtags=[]).poll('{"search":"110000000000000001"}')
    assert result.deferred_until is not None and result.deferred_until > clock.now()
    assert sleeps == [1.0]  # one short wait, then deferred


def test_unreadable_rate_limit_headers_on_a_200_are_not_a_429(rsps: responses.RequestsMock, clock: FakeClock,
                                                               sleeps: list[float]) -> None:
    """A proxy that adds a second Date header: Mastodon.py cannot parse it and raises its rate-limit error."""
    later = (clock.now() + timedelta(minutes=4)).isoformat()
    rsps.get(SEARCH, json={"accounts": [], "statuses": [status(5)], "hashtags": []},
             headers=[("X-RateLimit-Reset", later), ("Date", "Wed, 18 Nov 2026 10:00:00 GMT"),
                      ("Date", "Wed, 18 Nov 2026 10:00:01 GMT")])
    result = make_source(clock, sleeps, hashtags=[]).poll('{"search":"110000000000000001"}')
    assert result.deferred_until is None and result.problem is not None
    assert "429" not in result.problem and "HTTP 200" in result.problem and "not a rate limit" in result.problem
    assert result.next_cursor == '{"search":"110000000000000001"}'


def test_a_search_longer_than_the_page_limit_is_stored_over_the_next_polls(
        rsps: responses.RequestsMock, engine: Engine, clock: FakeClock, sleeps: list[float]) -> None:
    """100 new statuses, 40 a page, 2 pages a poll: the second poll goes on below the oldest received (max_id)
    and stores the last 20; the cursor moves to the newest only then; a status posted meanwhile comes next."""
    statuses = [status(n) for n in range(90, 201)]

    def search(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url or "").query)
        low, high = (int(query[k][0]) if k in query else None for k in ("min_id", "max_id"))
        offset, limit = int(query.get("offset", ["0"])[0]), int(query["limit"][0])
        kept = sorted((s for s in statuses if (low is None or int(s["id"]) > low)
                       and (high is None or int(s["id"]) < high)), key=lambda s: int(s["id"]), reverse=True)
        return 200, {}, json.dumps({"accounts": [], "statuses": kept[offset:offset + limit], "hashtags": []})

    rsps.add_callback(responses.GET, SEARCH, callback=search)
    source = make_source(clock, sleeps, hashtags=[], max_pages=2)
    with transaction(engine) as conn:
        set_cursor(conn, source.name, '{"search":"110000000000000100"}', clock.now())
    first = poll_source(engine, source, clock.now)
    with transaction(engine) as conn:
        assert json.loads(get_cursor(conn, source.name) or "") == {
            "search": "110000000000000100", "search:before": "110000000000000121",
            "search:newest": "110000000000000200"}
    second = poll_source(engine, source, clock.now)
    asked = parse_qs(urlsplit(rsps.calls[-1].request.url or "").query)
    assert asked["max_id"] == ["110000000000000121"] and asked["min_id"] == ["110000000000000100"]
    with transaction(engine) as conn:
        assert get_cursor(conn, source.name) == '{"search":"110000000000000200"}'
        assert count_mentions(conn) == 100
    statuses.append(status(201))
    third = poll_source(engine, source, clock.now)
    assert [first.new, second.new, third.new] == [80, 20, 1] and not any(
        r.problem for r in (first, second, third))
