"""Reviews of the business: recorded answers (written from each API's documentation) replayed on a local server.

Each platform's answers are in ``tests/fixtures/reviews/<platform>/``: a first poll over two pages,
an edited review (4 stars -> 1) with the business's reply on another, a deleted review, a 429 with
Retry-After and a permission error. The sources run through ``poll_source`` into a real store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, select
from werkzeug import Request, Response

from monitor.clock import FakeClock
from monitor.sources.facebook_reviews import FacebookReviewsClient
from monitor.sources.google_business import GoogleBusinessClient, refresh_token_grant
from monitor.sources.graph import GraphClient
from monitor.sources.polling import poll_source
from monitor.sources.resilience import RetryPolicy
from monitor.sources.reviews import JsonApi, ReviewSource
from monitor.sources.trustpilot import TrustpilotClient
from monitor.store import health as health_repo
from monitor.store import transaction
from monitor.store.mentions import get_cursor
from monitor.store.tables import mentions

FIXTURES = Path(__file__).parent / "fixtures" / "reviews"
TOKEN = "ya29.a0AfB_byTESTACCESSTOKEN"
GBP_PATH = "/v4/accounts/1234/locations/5678/reviews"
TP_PATH = "/v1/business-units/5d2f6b1a9c8e7d0012345678/reviews"
TP_KEY = "tpkey-0123456789abcdef"
FB_PATH = "/v21.0/123456789/ratings"
FB_TOKEN = "EAAGfbPageTokenForTests0123"


def answer(platform: str, name: str) -> Any:
    return json.loads((FIXTURES / platform / f"{name}.json").read_text(encoding="utf-8"))


@dataclass
class Case:
    """One platform: how to build its source on the local server and how its pages are asked for."""

    platform: str
    path: str
    build: Callable[[HTTPServer, FakeClock], ReviewSource]
    first: dict[str, str]  # query args of the first page
    second: dict[str, str]  # query args of the second page
    edited_rating: int  # the rating the edited review now has
    replied_author: str | None  # whose review the business answered (None: the listing has no replies)
    fix: str  # what a refused token's message tells to do


def policy() -> RetryPolicy:
    return RetryPolicy(attempts=2, initial=0.01, maximum=0.02, jitter=0.0, sleep=lambda s: None)


def google(httpserver: HTTPServer, clock: FakeClock) -> ReviewSource:
    grant = refresh_token_grant(token_uri=httpserver.url_for("/token"), client_id="cid", client_secret="csecret",
                                refresh_token="1//refresh")
    api = JsonApi(root=httpserver.url_for("/"), what="Google Business Profile reviews", fix="renew the token",
                  timeout=5, policy=policy(), clock=clock, authorize=grant)
    httpserver.expect_request("/token", method="POST").respond_with_json(answer("google_business", "token"))
    client = GoogleBusinessClient(api, account_id="1234", location_id="5678")
    return ReviewSource(name="google_business:Lumora", brand="Lumora", source="google_business", client=client,
                        reach=5000, languages=["nl", "fr"])


def trustpilot(httpserver: HTTPServer, clock: FakeClock) -> ReviewSource:
    api = JsonApi(root=httpserver.url_for("/"), what="Trustpilot reviews", fix="renew TRUSTPILOT_API_KEY",
                  timeout=5, policy=policy(), clock=clock, headers={"apikey": TP_KEY})
    client = TrustpilotClient(api, business_unit_id="5d2f6b1a9c8e7d0012345678")
    return ReviewSource(name="trustpilot:Lumora", brand="Lumora", source="trustpilot", client=client, reach=2000,
                        languages=["nl", "fr"])


def facebook(httpserver: HTTPServer, clock: FakeClock) -> ReviewSource:
    graph = GraphClient(token=FB_TOKEN, root=httpserver.url_for("/").rstrip("/"), timeout=5, policy=policy(),
                        clock=clock)
    client = FacebookReviewsClient(graph, page_id="123456789")
    return ReviewSource(name="facebook_reviews:Lumora", brand="Lumora", source="facebook_reviews", client=client,
                        reach=1000, languages=["nl", "fr"])


CASES = [
    Case("google_business", GBP_PATH, google, {"pageSize": "50", "orderBy": "updateTime desc"},
         {"pageToken": "CiAKGjBpNDd2Nmp2Zml2"}, 1, "Sofie Peeters", "renew"),
    Case("trustpilot", TP_PATH, trustpilot, {"page": "1"}, {"page": "2"}, 1, "Sofie P.", "renew"),
    Case("facebook_reviews", FB_PATH, facebook, {"limit": "50"}, {"after": "QVFIUlRtNm"}, 1, None,
         "grant it to the token in FACEBOOK_PAGE_TOKEN"),
]


@pytest.fixture(params=CASES, ids=[c.platform for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


QUEUES: dict[int, list[Response]] = {}


def serve(httpserver: HTTPServer, case: Case, args: dict[str, str], body: Any, status: int = 200,
          headers: dict[str, str] | None = None) -> None:
    """Queue the next answer on the listing's path; the pages asked for are checked from the log."""
    queue = QUEUES.setdefault(id(httpserver), [])
    if not queue:
        httpserver.clear_handler_errors()

        def next_answer(request: Request) -> Response:
            return queue.pop(0) if queue else Response("no answer queued", status=599)

        httpserver.expect_request(case.path).respond_with_handler(next_answer)
    queue.append(Response(json.dumps(body), status=status, headers=headers, content_type="application/json"))


def first_poll(httpserver: HTTPServer, engine: Engine, clock: FakeClock, case: Case) -> ReviewSource:
    source = case.build(httpserver, clock)
    serve(httpserver, case, case.first, answer(case.platform, "page1"))
    serve(httpserver, case, case.second, answer(case.platform, "page2"))
    result = poll_source(engine, source, clock.now)
    assert result.problem is None, result.problem
    assert result.new == 3
    return source


def rows(engine: Engine) -> list[Any]:
    with transaction(engine) as conn:
        return list(conn.execute(select(mentions).order_by(mentions.c.created_at, mentions.c.id)).mappings())


def test_first_poll_reads_every_page_and_keeps_the_rating(httpserver: HTTPServer, engine: Engine,
                                                          clock: FakeClock, case: Case) -> None:
    source = first_poll(httpserver, engine, clock, case)
    stored = rows(engine)
    assert [r["review_rating"] for r in stored] == [5, 4, 1]
    assert stored[0]["review_reply"] == ("Bedankt voor uw vertrouwen!" if case.replied_author else None)
    assert {r["author_reach"] for r in stored} == {source.reach}
    assert stored[2]["text"].count("Drie weken gewacht") == 1
    assert all(r["review_answer_url"] for r in stored)
    asked = [dict(req.args) for req, _ in httpserver.log if req.path == case.path]
    assert len(asked) == 2
    assert case.first.items() <= asked[0].items() and case.second.items() <= asked[1].items()
    # Only the handle the API gives: no photo URL, no reviewer id anywhere in the row.
    assert "googleusercontent" not in json.dumps([dict(r) for r in stored], default=str)
    with transaction(engine) as conn:
        assert get_cursor(conn, source_name(case)) is not None
    if case.platform == "google_business":  # the refresh token was exchanged once, the secret sent in a header
        token_calls = [req for req, _ in httpserver.log if req.path == "/token"]
        assert len(token_calls) == 1 and "refresh_token=1%2F%2Frefresh" in token_calls[0].get_data(as_text=True)
        assert all(req.headers.get("Authorization") == f"Bearer {TOKEN}" for req, _ in httpserver.log
                   if req.path == case.path)
    elif case.platform == "trustpilot":
        assert all(req.headers.get("apikey") == TP_KEY and "apikey" not in req.args for req, _ in httpserver.log)
    else:
        assert all(req.headers.get("Authorization") == f"Bearer {FB_TOKEN}" and "access_token" not in req.args
                   for req, _ in httpserver.log)


def source_name(case: Case) -> str:
    return f"{case.platform}:Lumora"


def test_an_edited_review_is_stored_again_and_a_reply_is_recorded(httpserver: HTTPServer, engine: Engine,
                                                                   clock: FakeClock, case: Case) -> None:
    source = first_poll(httpserver, engine, clock, case)
    serve(httpserver, case, case.first, answer(case.platform, "edited"))
    clock.advance(timedelta(hours=24))
    result = poll_source(engine, source, clock.now)
    assert result.problem is None, result.problem
    stored = rows(engine)
    jan = [r for r in stored if r["author_handle"] == "Jan"]
    assert [r["review_rating"] for r in jan] == [4, case.edited_rating]  # the edit is a new row the rules will see
    assert jan[0]["conversation_id"] == jan[1]["conversation_id"]
    if case.platform != "facebook_reviews":  # Facebook gives no edit time
        assert jan[1]["review_edited_at"] == datetime(2026, 11, 19, 10, tzinfo=UTC)
    assert jan[1]["detected_at"] is None
    if case.replied_author is None:
        return
    replied = [r for r in stored if r["author_handle"] == case.replied_author]
    assert len(replied) == 1  # the business's reply is no new version of the review
    assert replied[0]["review_reply"] == "Beste Sofie, het spijt ons. We nemen vandaag contact met u op."
    assert replied[0]["review_reply_at"] == datetime(2026, 11, 19, 9, tzinfo=UTC)


def test_a_deleted_review_is_no_failure_and_nothing_is_lost(httpserver: HTTPServer, engine: Engine,
                                                            clock: FakeClock, case: Case) -> None:
    source = first_poll(httpserver, engine, clock, case)
    with transaction(engine) as conn:
        before = get_cursor(conn, source.name)
    serve(httpserver, case, case.first, answer(case.platform, "deleted"))
    result = poll_source(engine, source, clock.now)
    assert result.problem is None and result.new == 0
    assert len(rows(engine)) == 3  # what was stored stays until `monitor forget`
    with transaction(engine) as conn:
        assert get_cursor(conn, source.name) == before


def test_429_defers_until_retry_after_and_keeps_the_cursor(httpserver: HTTPServer, engine: Engine,
                                                           clock: FakeClock, case: Case) -> None:
    source = first_poll(httpserver, engine, clock, case)
    with transaction(engine) as conn:
        before = get_cursor(conn, source.name)
    serve(httpserver, case, case.first, answer(case.platform, "rate_limited"), status=429,
          headers={"Retry-After": "120"})
    result = poll_source(engine, source, clock.now)
    assert result.deferred_until == clock.now() + timedelta(seconds=120)
    assert result.problem is not None and "rate limited" in result.problem
    with transaction(engine) as conn:
        assert get_cursor(conn, source.name) == before
        assert health_repo.get(conn, source.name).deferred_until == clock.now() + timedelta(seconds=120)


def test_a_permission_error_makes_the_source_blind_with_what_to_fix(httpserver: HTTPServer, engine: Engine,
                                                                    clock: FakeClock, case: Case) -> None:
    source = case.build(httpserver, clock)
    status = 401 if case.platform == "trustpilot" else 403
    serve(httpserver, case, case.first, answer(case.platform, "permission"), status=status)
    result = poll_source(engine, source, clock.now)
    assert result.failed and result.blind  # it cannot see: the source-health alert goes out at once
    with transaction(engine) as conn:
        health = health_repo.get(conn, source.name)
    assert health is not None and health.consecutive_failures == 1 and health.blind
    assert ("permission missing" if status == 403 else "credentials refused") in (health.last_error or "")
    assert case.fix in (health.last_error or "")
    assert all(secret not in (health.last_error or "") for secret in (TP_KEY, TOKEN, FB_TOKEN))


def test_a_failed_second_page_keeps_the_cursor_and_the_next_poll_gets_it(httpserver: HTTPServer, engine: Engine,
                                                                         clock: FakeClock, case: Case) -> None:
    source = first_poll(httpserver, engine, clock, case)
    with transaction(engine) as conn:
        before = get_cursor(conn, source.name)
    newer = answer(case.platform, "page1")
    newer = _shifted(case, newer)
    serve(httpserver, case, case.first, newer)
    serve(httpserver, case, case.second, {"error": {"code": 503, "message": "backend"}}, status=503)
    serve(httpserver, case, case.second, {"error": {"code": 503, "message": "backend"}}, status=503)
    result = poll_source(engine, source, clock.now)
    assert result.failed and result.new == 2
    with transaction(engine) as conn:
        assert get_cursor(conn, source.name) == before  # page 2 unseen: the cursor did not pass it


def test_at_the_page_limit_the_next_poll_goes_on_from_the_next_page(httpserver: HTTPServer, engine: Engine,
                                                                   clock: FakeClock, case: Case) -> None:
    """More new pages than ``max_pages``: no failure, no review passed; the time moves once the rest is read."""
    source = first_poll(httpserver, engine, clock, case)
    with transaction(engine) as conn:
        before = json.loads(get_cursor(conn, source.name) or "{}")
    source.max_pages = 1
    serve(httpserver, case, case.first, _shifted(case, answer(case.platform, "page1")))
    result = poll_source(engine, source, clock.now)
    assert result.problem is None and result.new == 2
    with transaction(engine) as conn:
        held = json.loads(get_cursor(conn, source.name) or "{}")
    assert held["since"] == before["since"] and held["next"]  # the old time kept, with where to go on
    serve(httpserver, case, case.second, answer(case.platform, "page2"))
    result = poll_source(engine, source, clock.now)
    assert result.problem is None
    asked = httpserver.log[-1][0].args
    assert all(asked.get(k) == v for k, v in case.second.items())  # page 2 asked, not page 1 again
    with transaction(engine) as conn:
        after = json.loads(get_cursor(conn, source.name) or "{}")
    assert "next" not in after and after["since"] > before["since"]  # backlog read: the time moved on
    assert after["since"] == held["newest"]


def _shifted(case: Case, body: dict[str, Any]) -> dict[str, Any]:
    """Page 1 a day later: two new reviews (new ids and times), page 2 still to come."""
    out = json.loads(json.dumps(body))
    for i, item in enumerate(out.get("reviews") or out.get("data") or []):
        if case.platform == "google_business":
            item["reviewId"] = item["name"] = f"New{i}"
            item["createTime"] = item["updateTime"] = f"2026-11-20T0{i}:00:00Z"
        elif case.platform == "facebook_reviews":
            item["open_graph_story"] = {"id": f"2015800000000000{i}"}
            item["created_time"] = f"2026-11-20T0{i}:00:00+0000"
        else:
            item["id"] = f"6745a1b2c3d4e5f60123456{i}"[:24]
            item["createdAt"] = f"2026-11-20T0{i}:00:00Z"
    return out


def test_a_dutch_one_star_review_fires_the_example_rule_and_its_alert_shows_what_to_answer(
        httpserver: HTTPServer, engine: Engine, clock: FakeClock) -> None:
    """The bundled rules and escalation file on reviews polled from the local server into the store."""
    from monitor.detect.loader import load_rules
    from monitor.detect.matching import match_mention
    from monitor.escalation.engine import _review
    from monitor.escalation.schema import load_escalation
    from monitor.models import AlertPayload, GuidelineText, PostSummary, Severity
    from monitor.notify.render import lines
    from monitor.store.mentions import get_mentions
    from tests.conftest import ROOT

    case = CASES[1]
    source = trustpilot(httpserver, clock)
    serve(httpserver, case, case.first, answer("trustpilot", "page1"))
    serve(httpserver, case, case.second, answer("trustpilot", "page2"))
    assert poll_source(engine, source, clock.now).new == 3
    with transaction(engine) as conn:
        stored = get_mentions(conn, [r["id"] for r in rows(engine)])
    rule = next(r for r in load_rules(ROOT / "rules").enabled if r.name == "low-rating-review")
    fired = [sm for sm in stored if match_mention(rule, sm) is not None]
    assert [sm.mention.review.rating for sm in fired if sm.mention.review] == [1]  # not the 4 and 5 stars
    review = fired[0].mention
    assert review.language == "nl" and review.text.startswith("Nooit meer")
    match = match_mention(rule, fired[0])
    assert match is not None and "1-star review" in match.facts
    guideline = load_escalation(ROOT / "escalation.yaml").guideline_for(rule.severity, "Lumora", rule.name)
    assert guideline is not None
    post = PostSummary(id=fired[0].id, source=review.source, text=review.text, created_at=review.created_at,
                       url=review.url, author=review.author_handle, reach=review.author_reach,
                       language=review.language, **_review(review.review))
    payload = AlertPayload(incident_id=1, brand="Lumora", rule=rule.name, severity=Severity(rule.severity),
                           reason="; ".join(match.facts), top_mentions=(post,), mention_count=1,
                           timezone="Europe/Brussels",
                           guideline=GuidelineText(guideline.first_statement, guideline.who_may_answer,
                                                   tuple(guideline.never_say), guideline.statements))
    alert = "\n".join(lines("alert", AlertPayload.from_json(payload.to_json())))  # as the outbox carries it
    assert "Drie weken gewacht op mijn bestelling" in alert
    assert "★☆☆☆☆ 1/5 · @Sofie P. · review on Trustpilot · nl" in alert
    assert "Not answered yet" in alert
    assert "Answer it on Trustpilot: https://businessapp.b2b.trustpilot.com/reviews" in alert
    # The guideline's statements: the review's language (Dutch) first, then the reader's, then the rest.
    statements = [line for line in alert.splitlines() if line.startswith("Holding statement")]
    assert [s.split(":")[0] for s in statements] == ["Holding statement (Dutch)", "Holding statement (English)",
                                                     "Holding statement (French)"]
    assert statements[0].startswith("Holding statement (Dutch): Bedankt voor uw eerlijke beoordeling")
    dutch = "\n".join(lines("alert", payload, "nl_BE"))  # a Dutch reader: the review's lines in Dutch too
    assert "★☆☆☆☆ 1/5 · @Sofie P. · recensie op Trustpilot · nl" in dutch
    assert "Nog niet beantwoord" in dutch and "Beantwoord de recensie op Trustpilot: https://" in dutch
    assert "Voorlopige reactie (Nederlands): Bedankt voor uw eerlijke beoordeling" in dutch
    french = "\n".join(lines("alert", payload, "fr_BE"))
    assert "avis sur Trustpilot" in french and "Pas encore de réponse" in french
    assert "Répondre à l’avis sur Trustpilot : https://" in french


def test_the_digest_counts_the_weeks_reviews_their_average_and_the_time_to_first_reply(
        httpserver: HTTPServer, engine: Engine, clock: FakeClock) -> None:
    from monitor.digest.figures import build_digest
    from monitor.digest.html import render_html
    from monitor.digest.week import IsoWeek

    case = CASES[0]
    source = first_poll(httpserver, engine, clock, case)  # 5, 4 and 1 stars; the 5 answered at once
    serve(httpserver, case, case.first, answer(case.platform, "edited"))  # 4 -> 1; the 1-star answered next day
    assert poll_source(engine, source, clock.now).problem is None
    week = IsoWeek.containing(datetime(2026, 11, 18, 12, tzinfo=UTC), "Europe/Brussels")
    with transaction(engine) as conn:
        digest = build_digest(conn, week, None, brands=["Lumora"])
    reviews = digest.brands[0].reviews
    assert reviews is not None
    assert reviews.count == 3  # the edited review once, with its latest rating
    assert reviews.average == pytest.approx((5 + 1 + 1) / 3)
    # 5 stars: created 17 Nov 15:00, answered 18 Nov 08:00 (17 h); 1 star: 18 Nov 09:40 -> 19 Nov 09:00.
    assert reviews.median_first_reply == (timedelta(hours=17) + timedelta(hours=23, minutes=20)) / 2
    assert reviews.unanswered == 1  # the edited one
    html = render_html(digest)
    assert "Reviews" in html and "3 · 2.3★" in html and "1 not answered" in html
    dutch = render_html(digest, "nl_BE")  # the figure in the digest's language
    assert "Recensies" in dutch and "3 · 2,3★" in dutch and "1 niet beantwoord" in dutch
    assert "eerste openbare antwoord na" in dutch
