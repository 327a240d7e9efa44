"""Google News per edition through the feed source: URL, publisher links, dedupe across editions."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, select

from monitor.app import build_pipeline
from monitor.clock import FakeClock
from monitor.notify import ConsoleNotifier
from monitor.sources.google_news import decode_link, feed_url, google_news_source, split_title
from monitor.sources.polling import poll_source
from monitor.sources.resilience import RetryPolicy
from monitor.store import transaction
from monitor.store.mentions import count_mentions
from monitor.store.tables import mentions
from tests.test_quarantine import SETTINGS, Model

FIXTURES = Path(__file__).parent / "fixtures" / "google_news"
RSS = "application/rss+xml; charset=utf-8"
STANDAARD = "https://www.standaard.be/cnt/dmf20261118_lumora-voorschotten"


def fixture(edition: str) -> str:
    return (FIXTURES / f"search_{edition.replace('-', '_')}.rss").read_text(encoding="utf-8")


def make(httpserver: HTTPServer, clock: FakeClock, edition: str, sleeps: list[float] | None = None) -> Any:
    block = SimpleNamespace(query=None, root=httpserver.url_for("/").rstrip("/"), poll_every=None)
    source = google_news_source("Lumora", block, f"news:Lumora:google-{edition}", keywords=["Lumora"],
                                languages=["nl", "fr", "en"], timeout=5, policy=RetryPolicy(
                                    attempts=2, initial=0.01, maximum=0.01, jitter=0.0,
                                    sleep=(sleeps if sleeps is not None else []).append))
    source.clock = clock
    return source


def serve(httpserver: HTTPServer, edition: str, body: str | None = None, **kwargs: Any) -> None:
    language, region = edition.split("-")
    httpserver.expect_oneshot_request("/rss/search", query_string={
        "q": "Lumora", "hl": language, "gl": region, "ceid": f"{region}:{language}"}).respond_with_data(
        body if body is not None else fixture(edition), content_type=RSS, **kwargs)


def test_feed_url_and_offline_link_decoding() -> None:
    assert feed_url("https://news.google.com", '"Lumora Energie" OR lumora.be', "fr-BE") == (
        "https://news.google.com/rss/search?q=%22Lumora+Energie%22+OR+lumora.be&hl=fr&gl=BE&ceid=BE:fr")
    token = base64.urlsafe_b64encode(b"\x08\x13\x22" + bytes([len(STANDAARD)]) + STANDAARD.encode()
                                     + b"\xd2\x01\x00").decode().rstrip("=")
    assert decode_link(f"https://news.google.com/rss/articles/{token}?oc=5") == STANDAARD
    assert decode_link("https://news.google.com/articles/x?url=https://www.rtbf.be/article/1") == \
        "https://www.rtbf.be/article/1"
    assert decode_link("https://news.google.com/rss/articles/AU_yqLNopaqueVrtArticle01?oc=5") is None
    assert split_title("Lumora - klanten boos - De Standaard") == ("Lumora - klanten boos", "De Standaard")
    assert split_title("Geen uitgever") == ("Geen uitgever", None)


def test_items_become_publisher_articles(httpserver: HTTPServer, clock: FakeClock) -> None:
    serve(httpserver, "nl-BE", headers={"ETag": '"g1"'})
    result = make(httpserver, clock, "nl-BE").poll(None)
    by_author = {m.author_handle: m for m in result.mentions}
    assert sorted(by_author) == ["De Standaard", "VRT NWS"]  # the HLN item does not name the brand
    std = by_author["De Standaard"]
    assert std.text == "Lumora verdubbelt voorschotten: klanten boos" and std.url == STANDAARD
    assert std.source == "news" and std.source_id.startswith("gnews:")
    assert std.language is None  # the edition's hl is no item's language: the detector decides
    vrt = by_author["VRT NWS"]  # the newer opaque id: Google's link is kept
    assert vrt.url == "https://news.google.com/rss/articles/AU_yqLNopaqueVrtArticle01?oc=5"
    assert json.loads(result.next_cursor)["etag"] == '"g1"'


def test_the_same_article_in_two_editions_is_stored_once(httpserver: HTTPServer, engine: Engine,
                                                          clock: FakeClock) -> None:
    serve(httpserver, "nl-BE")
    serve(httpserver, "fr-BE")
    nl, fr = make(httpserver, clock, "nl-BE"), make(httpserver, clock, "fr-BE")
    assert poll_source(engine, nl, clock.now).new == 2
    outcome = poll_source(engine, fr, clock.now)
    assert outcome.fetched == 2 and outcome.new == 1  # De Standaard again (another Google id), Le Soir new
    # Polled again with nothing new: the feed's own cursor, and the store, keep it at three.
    serve(httpserver, "nl-BE", status=304, body="")
    assert poll_source(engine, nl, clock.now).fetched == 0
    with transaction(engine) as conn:
        assert count_mentions(conn) == 3


def test_errors_empty_feeds_and_edited_headlines(httpserver: HTTPServer, engine: Engine, clock: FakeClock) -> None:
    sleeps: list[float] = []
    source = make(httpserver, clock, "nl-BE", sleeps)
    serve(httpserver, "nl-BE", status=503, body="busy")
    serve(httpserver, "nl-BE")
    assert len(source.poll(None).mentions) == 2 and len(sleeps) == 1

    serve(httpserver, "nl-BE", status=429, body="", headers={"Retry-After": "3600"})
    assert source.poll(None).deferred_until is not None

    consent = (FIXTURES.parent / "feeds" / "not_a_feed.html").read_text(encoding="utf-8")
    serve(httpserver, "nl-BE", body=consent)
    with pytest.raises(ValueError, match="not a readable RSS/Atom feed"):
        source.poll(None)

    empty = fixture("nl-BE").split("<item>")[0] + "</channel></rss>"
    serve(httpserver, "nl-BE", body=empty)
    assert source.poll(None).mentions == []

    # A headline edited after storing: the decoded publisher URL keeps the article's id stable.
    serve(httpserver, "nl-BE")
    assert poll_source(engine, source, clock.now).new == 2
    edited = fixture("nl-BE").replace("klanten boos", "klanten woedend").replace("<guid isPermaLink=\"false\">CBMi",
                                                                                  "<guid isPermaLink=\"false\">X")
    serve(httpserver, "nl-BE", body=edited)
    again = poll_source(engine, source, clock.now)
    assert again.fetched == 1 and again.new == 0


def test_an_english_headline_in_the_dutch_edition_is_stored_as_english(httpserver: HTTPServer, engine: Engine,
                                                                       clock: FakeClock) -> None:
    english = fixture("nl-BE").replace("Ombudsman krijgt 300 klachten over Lumora",
                                       "Lumora customers furious as energy advances double overnight")
    serve(httpserver, "nl-BE", english)
    pipeline = build_pipeline(SETTINGS, notifier=ConsoleNotifier(io.StringIO()), clock=clock, engine=engine,
                              model=Model())
    assert pipeline.poll(make(httpserver, clock, "nl-BE")).new == 2
    pipeline.classify_pending()
    with transaction(engine) as conn:
        languages = dict(conn.execute(select(mentions.c.author_handle, mentions.c.language)).all())
    assert languages == {"De Standaard": "nl", "VRT NWS": "en"}
