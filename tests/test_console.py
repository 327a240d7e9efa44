"""The console through Starlette's TestClient: sign-in, CSRF, who may do what, and the pages' data."""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from monitor.clock import FakeClock
from monitor.console import ConsoleServer, check_bind_address
from monitor.console.plain import describe_rule
from monitor.console.server import ConsoleRefused, console_server
from monitor.console.tryit import LazyModel, check_rule_file
from monitor.console.users import UserDirectory
from monitor.console.web import ConsoleConfig, create_app
from monitor.detect import load_rules
from monitor.escalation import EscalationEngine
from monitor.escalation.schema import load_escalation
from monitor.models import IncidentState, Severity, Signal
from monitor.settings import Settings
from monitor.store import audit, incidents, silences, transaction
from monitor.store.feedback import labels_of
from monitor.store.mentions import store_batch
from monitor.yamlconfig import ConfigInvalid
from tests.conftest import ROOT, make_mention
from tests.console_fixtures import PASSWORD, WordModel, csrf_of, write_users

PAGES = ["/", "/silences", "/rules", "/try", "/plan"]


def open_incident(engine: Engine, clock: FakeClock) -> int:
    """A critical incident for Lumora, opened and sent to level 1 by the real escalation engine."""
    now = clock.now()
    escalation = EscalationEngine(load_escalation(ROOT / "escalation.yaml"))
    with transaction(engine) as conn:
        store_batch(conn, "x", [make_mention(1, text="Lumora is a scam", reach=50_000)], None, now)
        [ids] = conn.exec_driver_sql("SELECT id FROM mentions").all()
        signal = Signal("negative-high-reach", Severity.CRITICAL, "Lumora", "Lumora", "angry post by @user1", now,
                        (int(ids[0]),))
        [incident_id] = escalation.ingest(conn, [signal], now)
        escalation.tick(conn, now)
    return int(incident_id)


@pytest.fixture
def console(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    config = ConsoleConfig(engine=engine, rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml",
                           users=UserDirectory.load(write_users(tmp_path)), clock=clock,
                           model=LazyModel(WordModel), collect_file=ROOT / "monitor.yaml")
    with TestClient(create_app(config), base_url="https://testserver") as client:
        yield client


def sign_in(client: TestClient, user: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    return client.post("/login", data={"user": user, "password": password, "csrf": csrf_of(page.text)},
                       follow_redirects=False)


def test_no_page_without_sign_in(console: TestClient) -> None:
    for path in PAGES:
        response = console.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/login", path
    for path in ("/silences", "/incidents/1/acknowledge", "/try/post", "/silences/1/expire"):
        assert console.post(path, data={"csrf": "x"}, follow_redirects=False).status_code == 401, path


def test_sign_in_sets_a_strict_session_cookie(console: TestClient) -> None:
    response = sign_in(console, "sofie")
    assert response.status_code == 303
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "monitor_console=" in v)
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    page = console.get("/")
    assert page.status_code == 200 and "Open incidents" in page.text
    assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in page.headers[
        "content-security-policy"]


def test_wrong_password_and_rate_limit(console: TestClient, clock: FakeClock) -> None:
    assert sign_in(console, "sofie", "wrong").status_code == 401
    assert sign_in(console, "nobody-at-all", PASSWORD).status_code == 401
    for _ in range(4):
        sign_in(console, "sofie", "wrong")
    # Five attempts: even the right password must wait (a while, not a quarter of an hour).
    refused = sign_in(console, "sofie")
    assert refused.status_code == 429 and "Wait 1 second and try again" in refused.text
    assert refused.headers["retry-after"] == "1"
    assert console.get("/", follow_redirects=False).status_code == 303
    clock.advance(timedelta(seconds=1))
    assert sign_in(console, "sofie").status_code == 303


def test_post_without_csrf_token_is_refused(console: TestClient, engine: Engine) -> None:
    sign_in(console, "sofie")
    form = {"brand": "Lumora", "until": "2026-11-30 08:00", "reason": "campaign"}
    assert console.post("/silences", data=form).status_code == 403
    assert console.post("/silences", data={**form, "csrf": "forged"}).status_code == 403
    with transaction(engine) as conn:
        assert silences.all_silences(conn) == []
    login = console.get("/login")
    token = csrf_of(login.text)  # the sign-in form's token is no session's token
    assert console.post("/silences", data={**form, "csrf": token}).status_code == 403


def test_editor_adds_and_expires_a_silence_on_the_record(console: TestClient, engine: Engine, clock: FakeClock,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    sign_in(console, "sofie")
    token = csrf_of(console.get("/silences").text)
    with caplog.at_level(logging.INFO, logger="monitor.console.audit"):
        page = console.post("/silences", data={"csrf": token, "brand": "Lumora", "until": "2026-11-30 08:00",
                                               "reason": "planned outage"})
    assert page.status_code == 200 and "Silence #1 added." in page.text
    with transaction(engine) as conn:
        [silence] = silences.active(conn, clock.now())
    assert (silence.brand, silence.created_by, silence.reason) == ("Lumora", "sofie", "planned outage")
    assert any("silence #1 added by sofie" in r.getMessage() for r in caplog.records)
    with caplog.at_level(logging.INFO, logger="monitor.console.audit"):
        page = console.post(f"/silences/{silence.id}/expire", data={"csrf": token})
    assert "Silence #1 expired." in page.text
    with transaction(engine) as conn:
        assert silences.active(conn, clock.now()) == []
    assert any("silence #1 expired by sofie" in r.getMessage() for r in caplog.records)


def test_silence_without_reason_or_in_the_past_is_explained(console: TestClient, engine: Engine) -> None:
    sign_in(console, "sofie")
    token = csrf_of(console.get("/silences").text)
    page = console.post("/silences", data={"csrf": token, "brand": "Lumora", "until": "2026-11-30 08:00"})
    assert page.status_code == 400 and "say why" in page.text
    page = console.post("/silences", data={"csrf": token, "brand": "Lumora", "until": "yesterday", "reason": "x"})
    assert page.status_code == 400 and "not a time" in page.text
    page = console.post("/silences", data={"csrf": token, "until": "2026-11-30 08:00", "reason": "all"})
    assert page.status_code == 400 and "muting everything is not allowed" in page.text


def test_non_editor_cannot_add_or_expire_a_silence(console: TestClient, engine: Engine, clock: FakeClock) -> None:
    with transaction(engine) as conn:
        sid = silences.add(conn, brand="Lumora", rule=None, author=None, starts_at=clock.now(),
                           ends_at=clock.now() + timedelta(hours=2), reason="test", created_by="an")
    sign_in(console, "karim")
    page = console.get("/silences")
    assert "Add silence" not in page.text
    token = csrf_of(page.text)
    refused = console.post("/silences", data={"csrf": token, "brand": "Lumora", "until": "2026-11-30 08:00",
                                              "reason": "me too"})
    assert refused.status_code == 403 and "Only editors" in refused.text
    assert console.post(f"/silences/{sid}/expire", data={"csrf": token}).status_code == 403
    with transaction(engine) as conn:
        assert [s.id for s in silences.active(conn, clock.now())] == [sid]


def test_only_policy_responders_act_on_incidents(console: TestClient, engine: Engine, clock: FakeClock) -> None:
    incident_id = open_incident(engine, clock)
    sign_in(console, "guest")
    page = console.get("/")
    assert f"#{incident_id}</a> · Lumora · negative-high-reach" in page.text and "/acknowledge\"" not in page.text
    assert "</time> X · @user1 · 50,000 followers" in page.text  # the platform as alerts name it, not "x"
    refused = console.post(f"/incidents/{incident_id}/acknowledge", data={"csrf": csrf_of(page.text)})
    assert refused.status_code == 403 and "Nothing was changed" in refused.text
    with transaction(engine) as conn:
        assert incidents.get(conn, incident_id).state is IncidentState.NOTIFIED  # type: ignore[union-attr]
    console.post("/logout", data={"csrf": csrf_of(page.text)})

    sign_in(console, "karim")  # level 2 of the critical policy: may act, like the Slack buttons allow
    page = console.get("/")
    done = console.post(f"/incidents/{incident_id}/acknowledge", data={"csrf": csrf_of(page.text)})
    assert f"Incident #{incident_id} acknowledged." in done.text
    with transaction(engine) as conn:
        row = incidents.get(conn, incident_id)
        assert row is not None and row.state is IncidentState.ACKNOWLEDGED and row.acknowledged_by == "karim"
        assert [e.actor for e in incidents.events(conn, incident_id)][-1] == "karim"
    again = console.post(f"/incidents/{incident_id}/acknowledge", data={"csrf": csrf_of(page.text)})
    assert "Nothing changed" in again.text
    # The incident's record: who tried, who did, through which channel, at any log level.
    with transaction(engine) as conn:
        rows = [(a.actor, a.channel, a.action, a.outcome) for a in audit.for_incident(conn, incident_id)]
    assert rows == [("guest", "console", "acknowledge", "refused"), ("karim", "console", "acknowledge", "done"),
                    ("karim", "console", "acknowledge", "refused")]


def test_a_false_positive_on_a_one_post_incident_labels_the_post_not_negative(
        console: TestClient, engine: Engine, clock: FakeClock) -> None:
    incident_id = open_incident(engine, clock)
    sign_in(console, "karim")
    page = console.get("/")
    done = console.post(f"/incidents/{incident_id}/false_positive", data={"csrf": csrf_of(page.text)})
    assert f"Incident #{incident_id} marked as a false positive." in done.text
    with transaction(engine) as conn:
        [mention_id] = [int(r[0]) for r in conn.exec_driver_sql("SELECT id FROM mentions").all()]
        [label] = labels_of(conn, mention_id)
    assert (label.label, label.by, label.source, label.implied) == ("not_negative", "karim", "console", True)


def test_sign_out_ends_the_session(console: TestClient) -> None:
    sign_in(console, "sofie")
    token = csrf_of(console.get("/").text)
    console.post("/logout", data={"csrf": token})
    assert console.get("/", follow_redirects=False).status_code == 303


def test_trusted_proxy_header_signs_in_listed_users_only(engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    config = ConsoleConfig(engine=engine, rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml",
                           users=UserDirectory.load(write_users(tmp_path)), clock=clock, model=LazyModel(WordModel),
                           trusted_header="X-Forwarded-User", trusted_proxies=("testclient",))
    with TestClient(create_app(config), base_url="https://testserver") as client:
        assert client.get("/", headers={"X-Forwarded-User": "mallory"}, follow_redirects=False).status_code == 303
        assert client.get("/", follow_redirects=False).status_code == 303
        page = client.get("/rules", headers={"X-Forwarded-User": "sofie"})
        assert page.status_code == 200 and "negative-high-reach" in page.text
    with transaction(engine) as conn:
        [entry] = audit.recent(conn)
    assert (entry.actor, entry.action, entry.detail) == ("sofie", "sign-in", "by the proxy's header")
    # The same header from a client that is not a named proxy signs nobody in.
    untrusted = ConsoleConfig(engine=engine, rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml",
                              users=UserDirectory.load(write_users(tmp_path)), clock=clock,
                              model=LazyModel(WordModel), trusted_header="X-Forwarded-User")
    with TestClient(create_app(untrusted), base_url="https://testserver") as client:
        assert client.get("/", headers={"X-Forwarded-User": "sofie"}, follow_redirects=False).status_code == 303


def test_try_a_post_shows_the_rule_that_fires_and_who_is_called(console: TestClient) -> None:
    sign_in(console, "sofie")
    token = csrf_of(console.get("/try").text)
    page = console.post("/try/post", data={"csrf": token, "text": "Lumora is a scam", "language": "en",
                                           "reach": "25000", "engagement": "3", "source": "x", "brand": "Lumora",
                                           "at": "2026-11-18 21:40"})
    assert page.status_code == 200
    assert 'id="outcome-negative-high-reach"' in page.text and "would alert" in page.text
    assert "author has 25,000 followers" in page.text
    assert "oncall" in page.text  # 21:40 is after hours: the critical policy pages the on-call person first


def test_rule_file_with_a_typo_is_reported_with_file_line_column(console: TestClient) -> None:
    broken = (ROOT / "rules" / "reach.yaml").read_text(encoding="utf-8").replace("reach_at_least", "reach_at_leest")
    sign_in(console, "sofie")
    token = csrf_of(console.get("/try").text)
    page = console.post("/try/rules", data={"csrf": token, "days": "30"},
                        files={"file": ("reach.yaml", broken.encode(), "application/yaml")})
    assert page.status_code == 400
    assert "rules/reach.yaml:11:7: rules[0].when: unknown key &#39;reach_at_leest&#39;" in page.text
    assert "reach_at_least" in page.text  # the suggestion


def test_an_uploaded_rule_files_problems_read_in_the_visitors_language(console: TestClient) -> None:
    """Issue 30: the PR team reads a broken file's problems in Dutch or French; the place and their own values
    (file, line, key, what they typed) stay as written."""
    typo = (ROOT / "rules" / "reach.yaml").read_text(encoding="utf-8").replace("reach_at_least", "reach_at_leest")
    lookbehind = "rules:\n  - name: kraai\n    severity: warning\n    when:\n      regex: ['(?<=@)lumora']\n"
    sign_in(console, "sofie")
    dutch = {"Accept-Language": "nl-BE,nl;q=0.9"}
    token = csrf_of(console.get("/try", headers=dutch).text)
    page = console.post("/try/rules", data={"csrf": token, "days": "30"}, headers=dutch,
                        files={"file": ("reach.yaml", typo.encode(), "application/yaml")})
    assert page.status_code == 400 and '<html lang="nl">' in page.text
    assert ("rules/reach.yaml:11:7: rules[0].when: onbekende sleutel &#39;reach_at_leest&#39;; bedoelde u "
            "&#39;reach_at_least&#39;?") in page.text
    assert "unknown key" not in page.text
    switched = console.post("/language", data={"locale": "fr_BE", "next": "/try", "csrf": token},
                            follow_redirects=False)
    assert switched.status_code == 303  # the language switch's cookie: French from now on
    page = console.post("/try/rules", data={"csrf": token, "days": "30"},
                        files={"file": ("kraai.yaml", lookbehind.encode(), "application/yaml")})
    assert page.status_code == 400 and '<html lang="fr">' in page.text
    text = html.unescape(page.text)
    assert ("rules/kraai.yaml:5:14: rules[0].when.regex: l’expression régulière '(?<=@)lumora' ne peut pas être "
            "utilisée : une assertion arrière '(?<=...)' n’est pas prise en charge") in text
    assert "is not supported" not in text


def test_the_rules_page_shows_a_saved_files_problem_in_dutch(engine: Engine, clock: FakeClock,
                                                              tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "kraai.yaml").write_text(
        "rules:\n  - name: kraai\n    severity: urgent\n    when: {negative_above: 0.6}\n", encoding="utf-8")
    config = ConsoleConfig(engine=engine, rules_dir=rules, escalation_file=ROOT / "escalation.yaml",
                           users=UserDirectory.load(write_users(tmp_path)), clock=clock,
                           model=LazyModel(WordModel), collect_file=ROOT / "monitor.yaml")
    with TestClient(create_app(config), base_url="https://testserver") as client:
        sign_in(client, "sofie")
        page = html.unescape(client.get("/rules", headers={"Accept-Language": "nl"}).text)
        assert (f"{rules / 'kraai.yaml'}:3:15: rules[0].severity: verwacht: 'info', 'warning' of 'critical' "
                "(ingevuld: 'urgent')") in page
        english = html.unescape(client.get("/rules", headers={"Accept-Language": "en"}).text)
        assert "expected 'info', 'warning' or 'critical' (got 'urgent')" in english


def test_check_rule_file_refuses_odd_names_and_keeps_the_rules_folder(tmp_path: Path) -> None:
    before = sorted(p.name for p in (ROOT / "rules").iterdir())
    assert "ending in .yaml" in str(check_rule_file(ROOT / "rules", "../../etc/passwd", b"x").errors[0])
    check = check_rule_file(ROOT / "rules", "new.yaml", b"rules:\n  - name: extra\n    severity: info\n"
                            b"    when: {negative_above: 0.5}\n")
    assert check.errors == [] and check.new is not None and len(check.new.rules) == len(check.old.rules) + 1  # type: ignore[union-attr]
    assert sorted(p.name for p in (ROOT / "rules").iterdir()) == before


def test_rules_read_as_sentences() -> None:
    rules = {r.name: r for r in load_rules(ROOT / "rules").rules}
    assert describe_rule(rules["negative-high-reach"]).startswith(
        "Critical alert when a post that the model finds likely to be negative (above the threshold calibrated "
        "for its language) and from an author with at least 10,000 followers comes in.")
    assert "8 or more posts like this arrive within 1 h" in describe_rule(rules["negative-burst"])
    assert describe_rule(rules["negative-spike"]).endswith("(Switched off.)")


def test_escalation_plan_page_marks_after_hours(console: TestClient) -> None:
    sign_in(console, "sofie")
    page = console.get("/plan", params={"severity": "warning", "brand": "Lumora", "at": "2026-12-24 19:30"})
    assert page.status_code == 200 and "policy <strong>business-hours</strong>" in page.text
    assert "Mon 28 Dec 08:" in page.text  # 25 Dec is a holiday, then the weekend: the clock waits till Monday
    bad = console.get("/plan", params={"severity": "critical", "at": "tomorrow"})
    assert bad.status_code == 400 and "not a time" in bad.text


def test_non_loopback_address_is_refused_unless_allowed() -> None:
    for host in ("0.0.0.0", "192.168.1.20", "::", "console.example"):
        with pytest.raises(ConsoleRefused, match="MONITOR_CONSOLE_ALLOW_REMOTE"):
            check_bind_address(host, allow_remote=False)
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_bind_address(host, allow_remote=False)
    check_bind_address("0.0.0.0", allow_remote=True)
    with pytest.raises(ConsoleRefused):
        ConsoleServer(create_app.__call__, "0.0.0.0", 0)


def test_console_from_settings_refuses_a_public_host_and_a_broken_users_file(engine: Engine, clock: FakeClock,
                                                                             tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match=r"MONITOR_CONSOLE_HOST: the console would listen on 0\.0\.0\.0"):
        console_server(Settings(console_host="0.0.0.0"), engine, clock)
    users = tmp_path / "users.yaml"
    users.write_text("users:\n  sofie: {password_hash: hunter2}\n", encoding="utf-8")
    with pytest.raises(ConfigInvalid) as caught:
        console_server(Settings(console_users=users, console_port=0), engine, clock)
    assert str(caught.value.errors[0]).startswith(f"{users}:2:")


def test_server_starts_and_stops_with_its_thread(engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    server = console_server(Settings(console_port=0, console_users=write_users(tmp_path), rules_dir=ROOT / "rules",
                                     escalation_file=ROOT / "escalation.yaml"), engine, clock, model=WordModel())
    server.start()
    try:
        response = httpx.get(f"{server.url}/login", timeout=10)
        assert response.status_code == 200 and "Sign in" in response.text
    finally:
        server.stop()
    assert not server._thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/login", timeout=2)
