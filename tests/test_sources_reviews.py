"""Reviews of the business: recorded answers (written from each API's documentation) replayed on a local server.

Each platform's answers are in ``tests/fixtures/reviews/<platform>/``: a first poll over two pages,
an edited review (4 stars -> 1) with the business's reply on another, a deleted review, a 429 with
Retry-After and a permission error. The sources run through ``poll_source`` into a real store.
Google Play runs the real google-api-python-client and google-auth (a service-account key made
here, its signed token request checked); App Store Connect's ES256 token is checked as Apple would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, select
from werkzeug import Request, Response

from monitor.clock import FakeClock
from monitor.sources.app_store import RENEW_AFTER, AppStoreClient, jwt_grant, private_key
from monitor.sources.facebook_reviews import FacebookReviewsClient
from monitor.sources.google_business import GoogleBusinessClient, refresh_token_grant
from monitor.sources.google_play import GooglePlayClient, service_account_credentials
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
PLAY_PATH = "/androidpublisher/v3/applications/be.lumora.app/reviews"
PLAY_TOKEN = "ya29.c.b0AXv0zTPLAYSERVICEACCOUNTTOKEN"
PLAY_EMAIL = "monitor@lumora-play.iam.gserviceaccount.com"
ASC_PATH = "/v1/apps/1234567890/customerReviews"
ASC_ISSUER = "57246542-96fe-1a63-e053-0824d011072a"
ASC_KID = "2X9R4HXF34"


@dataclass
class Keys:
    """A service-account key (RSA) and an App Store Connect key (EC P-256), made for these tests only."""

    folder: Path
    rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey

    def pem(self, key: Any) -> str:
        return str(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode())

    def play_file(self, token_uri: str) -> Path:
        """The JSON key Google Cloud gives for a service account, its token endpoint on the local server."""
        path = self.folder / "play-service-account.json"
        path.write_text(json.dumps({
            "type": "service_account", "project_id": "lumora-play", "private_key_id": "7f3c2a1b0e9d8c7b6a5f4e3d",
            "private_key": self.pem(self.rsa), "client_email": PLAY_EMAIL, "client_id": "108234567890123456789",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri}), encoding="utf-8")
        return path

    def p8_file(self) -> Path:
        path = self.folder / f"AuthKey_{ASC_KID}.p8"
        path.write_text(self.pem(self.ec), encoding="utf-8")
        return path


KEYS: list[Keys] = []


@pytest.fixture(scope="module", autouse=True)
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    made = Keys(tmp_path_factory.mktemp("keys"), rsa.generate_private_key(public_exponent=65537, key_size=2048),
                ec.generate_private_key(ec.SECP256R1()))
    KEYS[:] = [made]
    return made


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
    edit_time: bool = True  # the platform says when a review was edited


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


def google_play(httpserver: HTTPServer, clock: FakeClock) -> ReviewSource:
    httpserver.expect_request("/play-token", method="POST").respond_with_json(answer("google_play", "token"))
    path = KEYS[0].play_file(httpserver.url_for("/play-token"))
    client = GooglePlayClient(
        package_name="be.lumora.app", fix="give the service account the app with \"Reply to reviews\"",
        credentials=lambda: service_account_credentials(str(path), variable="GOOGLE_PLAY_SERVICE_ACCOUNT_FILE"),
        api_root=httpserver.url_for("/"), developer_id="5112233445566778899", console_app_id="4973112233445566778",
        timeout=5, policy=policy(), clock=clock)
    return ReviewSource(name="google_play:Lumora", brand="Lumora", source="google_play", client=client, reach=3000,
                        languages=["nl", "fr"])


def app_store(httpserver: HTTPServer, clock: FakeClock) -> ReviewSource:
    path = KEYS[0].p8_file()
    grant = jwt_grant(issuer_id=ASC_ISSUER, key_id=ASC_KID,
                      key=lambda: private_key(str(path), variable="APP_STORE_CONNECT_KEY_FILE"))
    api = JsonApi(root=httpserver.url_for("/"), what="App Store Connect reviews", fix="check APP_STORE_CONNECT_KEY_ID",
                  timeout=5, policy=policy(), clock=clock, authorize=grant, token_lifetime=RENEW_AFTER)
    return ReviewSource(name="app_store:Lumora", brand="Lumora", source="app_store",
                        client=AppStoreClient(api, app_id="1234567890"), reach=3000, languages=["nl", "fr"])


def apple_claims(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of the request's bearer token, verified as Apple does (ES256, our public key)."""
    token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
    claims = jwt.decode(token, KEYS[0].ec.public_key(), algorithms=["ES256"], audience="appstoreconnect-v1",
                        issuer=ASC_ISSUER, options={"verify_exp": False, "verify_iat": False,
                                                    "require": ["iss", "iat", "exp", "aud"]})
    return jwt.get_unverified_header(token), claims


CASES = [
    Case("google_business", GBP_PATH, google, {"pageSize": "50", "orderBy": "updateTime desc"},
         {"pageToken": "CiAKGjBpNDd2Nmp2Zml2"}, 1, "Sofie Peeters", "renew"),
    Case("trustpilot", TP_PATH, trustpilot, {"page": "1"}, {"page": "2"}, 1, "Sofie P.", "renew"),
    Case("facebook_reviews", FB_PATH, facebook, {"limit": "50"}, {"after": "QVFIUlRtNm"}, 1, None,
         "grant it to the token in FACEBOOK_PAGE_TOKEN", edit_time=False),
    Case("google_play", PLAY_PATH, google_play, {"maxResults": "100"}, {"token": "Cg0IARIJCgdnc3Rva2Vu"}, 1,
         "Sofie P.", "Reply to reviews", edit_time=False),
    Case("app_store", ASC_PATH, app_store, {"sort": "-createdDate", "limit": "100", "include": "response"},
         {"cursor": "Mg.AO9aKbw"}, 1, "Sofie P.", "check APP_STORE_CONNECT_KEY_ID", edit_time=False),
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
    elif case.platform == "google_play":  # google-auth's signed JWT-bearer grant, once; its token on each page
        (grant,) = [req for req, _ in httpserver.log if req.path == "/play-token"]
        form = dict(grant.form)
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        claims = jwt.decode(form["assertion"], KEYS[0].rsa.public_key(), algorithms=["RS256"],
                            audience="https://oauth2.googleapis.com/token")  # what Google checks
        assert claims["iss"] == PLAY_EMAIL and claims["scope"] == "https://www.googleapis.com/auth/androidpublisher"
        assert all(req.headers.get("Authorization") == f"Bearer {PLAY_TOKEN}" for req, _ in httpserver.log
                   if req.path == case.path)
    elif case.platform == "app_store":  # one ES256 token, signed at the clock's time, living 20 minutes at most
        tokens = {req.headers.get("Authorization") for req, _ in httpserver.log}
        assert len(tokens) == 1
        header, claims = apple_claims(httpserver.log[0][0])
        assert header == {"alg": "ES256", "kid": ASC_KID, "typ": "JWT"}
        assert claims["iat"] == int(clock.now().timestamp()) and 0 < claims["exp"] - claims["iat"] <= 20 * 60
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
    if case.edit_time:  # Facebook, Google Play and the App Store give no edit time
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
    assert all(secret not in (health.last_error or "") for secret in (TP_KEY, TOKEN, FB_TOKEN, PLAY_TOKEN))


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
        elif case.platform == "google_play":
            item["reviewId"] = f"gp:New{i}"
            when = datetime(2026, 11, 20, i, tzinfo=UTC)
            item["comments"][0]["userComment"]["lastModified"] = {"seconds": str(int(when.timestamp()))}
        elif case.platform == "app_store":
            item["id"] = f"00000052-7c1e-4a3a-b5f0-00000000010{i}"
            item["attributes"]["createdDate"] = f"2026-11-20T0{i}:00:00Z"
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


# --- Google Play and App Store Connect: their own credentials ----------------------------------------------


def test_app_store_signs_a_new_token_before_apple_would_refuse_it_and_counts_only_published_replies(
        httpserver: HTTPServer, engine: Engine, clock: FakeClock) -> None:
    from monitor.redact import redact

    case = CASES[4]
    source = first_poll(httpserver, engine, clock, case)
    first_token = httpserver.log[0][0].headers["Authorization"]
    clock.advance(RENEW_AFTER)  # Apple refuses a token older than 20 minutes: a new one before that
    serve(httpserver, case, case.first, answer("app_store", "edited"))
    assert poll_source(engine, source, clock.now).problem is None
    last = httpserver.log[-1][0]
    assert last.headers["Authorization"] != first_token
    assert apple_claims(last)[1]["iat"] == int(clock.now().timestamp())
    by_author = {r["author_handle"]: r for r in rows(engine)}
    assert by_author["Pieter"]["review_reply"] is None  # its reply waits for Apple's review (PENDING_PUBLISH)
    assert by_author["Pieter"]["review_answer_url"] == \
        "https://appstoreconnect.apple.com/apps/1234567890/distribution/activity/ios/ratingsResponses"
    assert by_author["Marie"]["text"] == "Top\nHeel tevreden."
    assert by_author["Marie"]["created_at"] == datetime(2026, 11, 17, 15, tzinfo=UTC)  # -08:00 read as UTC
    # The .p8 key read is masked wherever the monitor writes text.
    pem = KEYS[0].pem(KEYS[0].ec)
    assert all(line not in redact(pem, keep_lines=True) for line in pem.splitlines() if "PRIVATE" not in line)


def test_app_store_renews_a_refused_token_once_then_says_what_to_fix(httpserver: HTTPServer, engine: Engine,
                                                                    clock: FakeClock) -> None:
    case = CASES[4]
    source = first_poll(httpserver, engine, clock, case)
    refused = {"errors": [{"status": "401", "code": "NOT_AUTHORIZED", "title": "Authentication credentials are "
                           "missing or invalid.", "detail": "Provide a properly configured and signed bearer token"}]}
    before = len(httpserver.log)
    serve(httpserver, case, case.first, refused, status=401)  # the token of the last poll refused (revoked, clock)
    serve(httpserver, case, case.first, answer("app_store", "deleted"))
    assert poll_source(engine, source, clock.now).problem is None  # a new token signed, the page asked again
    (old, new) = [req.headers["Authorization"] for req, _ in httpserver.log[before:]]
    assert old != new and apple_claims(httpserver.log[-1][0])[1]["iss"] == ASC_ISSUER

    fresh = case.build(httpserver, clock)  # a token just signed and refused: the key is wrong, no second try
    serve(httpserver, case, case.first, refused, status=401)
    before = len(httpserver.log)
    result = poll_source(engine, fresh, clock.now)
    assert result.failed and result.blind
    assert len(httpserver.log) == before + 1
    assert "credentials refused (HTTP 401: Provide a properly configured" in (result.problem or "")
    assert "check APP_STORE_CONNECT_KEY_ID" in (result.problem or "")


@pytest.mark.parametrize("platform", ["google_play", "app_store"])
def test_an_unreadable_key_file_makes_the_source_blind_naming_the_variable(
        platform: str, httpserver: HTTPServer, engine: Engine, clock: FakeClock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.platform == platform)
    source = case.build(httpserver, clock)
    broken = tmp_path / "key"
    broken.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", encoding="utf-8")
    if platform == "google_play":  # the path exists no more; the next poll reads it again
        client = source.client
        assert isinstance(client, GooglePlayClient)
        monkeypatch.setattr(client, "credentials", lambda: service_account_credentials(
            str(tmp_path / "missing.json"), variable="GOOGLE_PLAY_SERVICE_ACCOUNT_FILE"))
        expected = f"cannot read the service-account key GOOGLE_PLAY_SERVICE_ACCOUNT_FILE={tmp_path / 'missing.json'}"
    else:
        client = source.client
        assert isinstance(client, AppStoreClient)
        monkeypatch.setattr(client.api, "authorize", jwt_grant(issuer_id=ASC_ISSUER, key_id=ASC_KID, key=lambda: (
            private_key(str(broken), variable="APP_STORE_CONNECT_KEY_FILE"))))
        expected = f"APP_STORE_CONNECT_KEY_FILE={broken} is no PEM private key"
    result = poll_source(engine, source, clock.now)
    assert result.failed and result.blind
    assert expected in (result.problem or ""), result.problem
    assert "Traceback" not in (result.problem or "")
    assert not [req for req, _ in httpserver.log if req.path == case.path]  # nothing sent without credentials


def test_google_play_says_so_when_google_refuses_the_service_account(httpserver: HTTPServer, engine: Engine,
                                                                     clock: FakeClock) -> None:
    case = CASES[3]
    source = case.build(httpserver, clock)
    httpserver.expect_oneshot_request("/play-token", method="POST").respond_with_json(
        {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, status=400)
    result = poll_source(engine, source, clock.now)
    assert result.failed and result.blind
    assert "Google refused the service account's key" in (result.problem or "")
    assert "invalid_grant" in (result.problem or "") and "Reply to reviews" in (result.problem or "")


def test_google_play_text_language_and_links(httpserver: HTTPServer, engine: Engine, clock: FakeClock) -> None:
    first_poll(httpserver, engine, clock, CASES[3])
    by_author = {r["author_handle"]: r for r in rows(engine)}
    sofie = by_author["Sofie P."]
    assert sofie["text"] == "Nooit meer\nDrie weken gewacht op mijn bestelling en niemand neemt de telefoon op."
    assert sofie["language"] == "nl"  # the device's nl_BE, a language the brand expects
    assert sofie["created_at"] == datetime(2026, 11, 18, 9, 40, tzinfo=UTC)
    assert sofie["url"] == "https://play.google.com/store/apps/details?id=be.lumora.app&reviewId=gp:AOqpTOH3sofie"
    assert sofie["review_answer_url"] == ("https://play.google.com/console/developers/5112233445566778899/app/"
                                          "4973112233445566778/user-feedback/review-details?reviewId=gp:AOqpTOH3sofie")
    assert by_author["Marie"]["review_reply_at"] == datetime(2026, 11, 18, 8, tzinfo=UTC)


def test_monitor_sources_and_poll_once_run_both_app_stores(httpserver: HTTPServer, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    root = httpserver.url_for("/").rstrip("/")
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
brands:
  Lumora:
    keywords: [Lumora]
    google_play: {{package_name: be.lumora.app, api_root: "{root}"}}
    app_store: {{app_id: "1234567890", api_root: "{root}"}}
""", encoding="utf-8")
    httpserver.expect_request("/play-token", method="POST").respond_with_json(answer("google_play", "token"))
    httpserver.expect_request(PLAY_PATH).respond_with_json(answer("google_play", "page2"))
    httpserver.expect_request(ASC_PATH).respond_with_json(answer("app_store", "page2"))
    env = {"MONITOR_DB_URL": f"sqlite:///{tmp_path / 'store.db'}", "GOOGLE_PLAY_SERVICE_ACCOUNT_FILE": "",
           "APP_STORE_CONNECT_ISSUER_ID": "", "APP_STORE_CONNECT_KEY_ID": "", "APP_STORE_CONNECT_KEY_FILE": ""}
    runner = CliRunner()
    missing = runner.invoke(app, ["sources", "--config", str(config)], env=env)
    assert missing.exit_code == 0, missing.output
    assert "google_play:Lumora  [never polled]\n  platform:     Google Play (google_play in monitor.yaml)" \
        in missing.stdout
    assert "collects:     reviews of app be.lumora.app  (every 30 min)" in missing.stdout
    assert "credentials:  MISSING: set GOOGLE_PLAY_SERVICE_ACCOUNT_FILE" in missing.stdout
    assert "credentials:  MISSING: set APP_STORE_CONNECT_ISSUER_ID and APP_STORE_CONNECT_KEY_ID and " \
           "APP_STORE_CONNECT_KEY_FILE" in missing.stdout
    env["GOOGLE_PLAY_SERVICE_ACCOUNT_FILE"] = str(tmp_path / "nowhere.json")
    absent = runner.invoke(app, ["sources", "--config", str(config)], env=env)
    assert f"credentials:  UNREADABLE: GOOGLE_PLAY_SERVICE_ACCOUNT_FILE={tmp_path / 'nowhere.json'} is not a " \
           "readable file" in absent.stdout
    env.update({"GOOGLE_PLAY_SERVICE_ACCOUNT_FILE": str(KEYS[0].play_file(httpserver.url_for("/play-token"))),
                "APP_STORE_CONNECT_ISSUER_ID": ASC_ISSUER, "APP_STORE_CONNECT_KEY_ID": ASC_KID,
                "APP_STORE_CONNECT_KEY_FILE": str(KEYS[0].p8_file())})
    present = runner.invoke(app, ["sources", "--config", str(config)], env=env)
    assert "credentials:  ok (GOOGLE_PLAY_SERVICE_ACCOUNT_FILE)" in present.stdout
    assert "credentials:  ok (APP_STORE_CONNECT_ISSUER_ID, APP_STORE_CONNECT_KEY_ID, APP_STORE_CONNECT_KEY_FILE)" \
        in present.stdout
    assert "app_store:Lumora  [never polled]\n  platform:     App Store (app_store in monitor.yaml)" in present.stdout
    for name in ("google_play:Lumora", "app_store:Lumora"):
        polled = runner.invoke(app, ["poll", name, "--once", "--config", str(config)], env=env)
        assert polled.exit_code == 0, polled.output
        assert f"{name}: 1 fetched, 1 new, 0 already stored, 0 skipped, 1 request(s)" in polled.output
    header, claims = apple_claims(next(req for req, _ in httpserver.log if req.path == ASC_PATH))
    assert header["kid"] == ASC_KID and claims["exp"] - claims["iat"] <= 20 * 60  # signed at the real time
