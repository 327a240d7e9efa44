"""A post's URL from outside becomes a link only when it is http(s): console, Slack, e-mail and digest alike."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from starlette.testclient import TestClient

from monitor.clock import FakeClock
from monitor.console.tryit import LazyModel
from monitor.console.users import UserDirectory
from monitor.console.web import ConsoleConfig, create_app
from monitor.digest.timeline import quote_post
from monitor.i18n import translator
from monitor.links import web_link
from monitor.models import AlertPayload, PostSummary, Severity
from monitor.notify.render import lines, post_view
from monitor.notify.slack.blocks import post_blocks
from monitor.store import tables, transaction
from tests.conftest import ROOT
from tests.console_fixtures import PASSWORD, WordModel, csrf_of, write_users
from tests.test_console import open_incident

HOSTILE = ["javascript:alert(document.cookie)", "JavaScript:alert(1)", " javascript:alert(1)",
           "java\tscript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)",
           "//evil.example/x", "http:///nohost", "file:///etc/passwd", "https://[::1/", "x" * 3000]
GOOD = ["https://x.com/someone/status/1", "http://news.example/a?b=1#c", "HTTPS://Example.org/"]


@pytest.mark.parametrize("url", HOSTILE)
def test_anything_but_http_is_no_link(url: str) -> None:
    assert web_link(url) is None


@pytest.mark.parametrize("url", GOOD)
def test_web_addresses_stay_as_they_are(url: str) -> None:
    assert web_link(url) == url


def _post(url: str) -> PostSummary:
    return PostSummary(id=1, source="rss", text="Lumora is a scam", created_at=dt.datetime(2026, 11, 18, tzinfo=dt.UTC),
                       url=url, author="someone", reach=10)


def test_slack_and_email_show_no_link_for_a_script_url() -> None:
    t = translator("en", "Europe/Brussels")
    view = post_view(_post("javascript:alert(1)"), t)
    assert view.url is None
    assert "javascript" not in str(post_blocks(view, t))
    payload = AlertPayload(incident_id=1, severity=Severity.CRITICAL, brand="Lumora", rule="r", reason="why",
                           timezone="Europe/Brussels", top_mentions=(_post("javascript:alert(1)"),))
    text = "\n".join(lines("escalation", payload))
    assert "javascript" not in text and "(no link)" in text
    assert post_view(_post(GOOD[0]), translator("en", "UTC")).url == GOOD[0]


def test_the_digest_shows_no_link_for_a_script_url() -> None:
    raw = {"source": "rss", "created_at": dt.datetime(2026, 11, 18, tzinfo=dt.UTC), "text": "Lumora is a scam",
           "brand": "Lumora", "author_handle": "big", "author_reach": 100_000, "language": "en",
           "url": "javascript:alert(1)"}
    post = quote_post(raw, threshold=1000)
    assert post is not None and post.url is None
    assert quote_post({**raw, "url": GOOD[0]}, threshold=1000).url == GOOD[0]  # type: ignore[union-attr]


def test_the_console_shows_no_link_for_a_script_url(engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    incident_id = open_incident(engine, clock)
    with transaction(engine) as conn:
        conn.execute(update(tables.mentions).values(url="javascript:alert(document.cookie)"))
    config = ConsoleConfig(engine=engine, rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml",
                           users=UserDirectory.load(write_users(tmp_path)), clock=clock, model=LazyModel(WordModel))
    with TestClient(create_app(config), base_url="https://testserver") as client:
        page = client.get("/login")
        client.post("/login", data={"user": "sofie", "password": PASSWORD, "csrf": csrf_of(page.text)})
        for path in ("/", f"/incidents/{incident_id}"):
            html = client.get(path).text
            assert "Lumora is a scam" in html, path
            assert "javascript:" not in html, path
