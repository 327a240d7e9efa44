"""Working an incident in the console: incident page, history, notes, snooze length, silences from the
configured brands and rules, the audit table, bad input answered in words, and the wording issue 29 names."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from starlette.testclient import TestClient

from monitor.clock import FakeClock
from monitor.console.plain import plain_error
from monitor.console.tryit import LazyModel
from monitor.console.users import UserDirectory
from monitor.console.web import ConsoleConfig, create_app
from monitor.escalation.snooze import SNOOZES
from monitor.models import IncidentState
from monitor.store import audit, incidents, silences, tables, transaction
from monitor.yamlconfig import ConfigError
from tests.conftest import ROOT
from tests.console_fixtures import PASSWORD, WordModel, csrf_of, write_users
from tests.test_console import open_incident

PYTHON_WORDS = ("invalid literal", "Traceback", "ValueError", "is not a valid", "DataError", "psycopg",
                "StringDataRightTruncation", "sqlalchemy")


@pytest.fixture
def console(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    config = ConsoleConfig(engine=engine, rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml",
                           users=UserDirectory.load(write_users(tmp_path)), clock=clock, model=LazyModel(WordModel),
                           collect_file=ROOT / "monitor.yaml")
    with TestClient(create_app(config), base_url="https://testserver") as client:
        yield client


def sign_in(client: TestClient, user: str = "sofie") -> str:
    page = client.get("/login")
    client.post("/login", data={"user": user, "password": PASSWORD, "csrf": csrf_of(page.text)})
    return csrf_of(client.get("/").text)


def _plain(text: str) -> bool:
    return not any(w in text for w in PYTHON_WORDS) and "/tmp" not in text


# --- input errors: 4xx in words, never a 500 ----------------------------------------------------------------

@pytest.mark.parametrize(("field", "value", "words"), [
    ("brand", "B" * 300, "choose the brand from the list"),
    ("rule", "r" * 300, "choose the rule from the list"),
    ("author", "a" * 300, "at most 100 characters"),
    ("reason", "why " * 200, "under 500 characters"),
    ("until", "next tuesday", "write it as 2026-11-18 21:40"),
])
def test_a_bad_silence_field_is_a_400_in_words(console: TestClient, engine: Engine, field: str, value: str,
                                                words: str) -> None:
    token = sign_in(console)
    form = {"csrf": token, "brand": "Lumora", "until": "2030-01-01 08:00", "reason": "campaign", field: value}
    response = console.post("/silences", data=form)
    assert response.status_code == 400 and words in response.text and _plain(response.text)
    with transaction(engine) as conn:
        assert silences.all_silences(conn) == []


@pytest.mark.parametrize(("path", "form", "words"), [
    ("/try/rules", {"days": "abc", "text": "rules: []\n", "name": "reach.yaml"}, "days: write a whole number"),
    ("/try/post", {"text": "Lumora is a scam", "reach": "lots"}, "followers: write a whole number"),
    ("/try/post", {"text": "Lumora is a scam", "engagement": "²"}, "interactions: write a whole number"),
    ("/try/post", {"text": "Lumora is a scam", "at": "yesterday"}, "not a time"),
])
def test_bad_numbers_and_times_in_try_it_are_a_400_in_words(console: TestClient, path: str,
                                                             form: dict[str, str], words: str) -> None:
    token = sign_in(console)
    response = console.post(path, data={"csrf": token, **form})
    assert response.status_code == 400 and words in response.text and _plain(response.text)


@pytest.mark.parametrize(("query", "words"), [
    ("severity=bogus", "choose critical, warning or info"), ("at=soon", "not a time")])
def test_bad_plan_questions_are_a_400_in_words(console: TestClient, query: str, words: str) -> None:
    sign_in(console)
    response = console.get(f"/plan?{query}")
    assert response.status_code == 400 and words in response.text and _plain(response.text)


def test_bad_history_filters_are_a_400_in_words(console: TestClient) -> None:
    sign_in(console)
    for query, words in (("from=abc", "write a date as 2026-11-18"), ("state=gone", "choose one of the states")):
        response = console.get(f"/incidents?{query}")
        assert response.status_code == 400 and words in response.text and _plain(response.text)


def test_a_yaml_syntax_error_reads_as_what_to_look_for() -> None:
    raw = ConfigError("rules/reach.yaml", 3, 5, "", "YAML syntax error: while parsing a block mapping expected "
                                                    "<block end>, but found '<block sequence start>'")
    shown = plain_error(raw)
    assert shown.startswith("rules/reach.yaml:3:5:") and "indentation" in shown and "<block end>" not in shown


# --- silences from the configured brands and rules ----------------------------------------------------------

def test_silence_brand_and_rule_are_chosen_from_the_configuration(console: TestClient, engine: Engine,
                                                                  clock: FakeClock) -> None:
    token = sign_in(console)
    page = console.get("/silences").text
    assert '<select name="brand" id="silence-brand">' in page and ">Lumora</option>" in page
    assert ">negative-high-reach</option>" in page
    typo = console.post("/silences", data={"csrf": token, "brand": "Lumoro", "until": "2030-01-01 08:00",
                                           "reason": "campaign"})
    assert typo.status_code == 400 and "would mute nothing" in typo.text
    done = console.post("/silences", data={"csrf": token, "brand": "Lumora", "rule": "negative-high-reach",
                                           "until": "2030-01-01 08:00", "reason": "campaign"})
    assert done.status_code == 200 and "added" in done.text
    with transaction(engine) as conn:
        [silence] = silences.all_silences(conn)
    clock.advance(timedelta(minutes=5))
    console.post(f"/silences/{silence.id}/expire", data={"csrf": token})
    row = console.get("/silences").text.split(f'id="silence-{silence.id}"')[1].split("</tr>")[0]
    assert "ended" in row and 'class="ended-by">sofie at' in row  # who ended it, and when


def test_try_it_honours_an_active_silence(console: TestClient, engine: Engine, clock: FakeClock) -> None:
    token = sign_in(console)
    post = {"csrf": token, "text": "Lumora is a scam", "language": "en", "reach": "50000", "brand": "Lumora"}
    assert "would alert" in console.post("/try/post", data=post).text
    with transaction(engine) as conn:
        silences.add(conn, brand="Lumora", rule="negative-high-reach", author=None, starts_at=clock.now(),
                     ends_at=clock.now() + timedelta(hours=2), reason="campaign week", created_by="sofie")
    page = console.post("/try/post", data=post).text
    outcome = page.split('id="outcome-negative-high-reach"')[1].split("</li>")[0]
    assert "would be silenced" in outcome and "campaign week" in outcome and "would alert" not in outcome


# --- the audit table ------------------------------------------------------------------------------------------

def test_silences_are_audited_even_when_logging_is_off(console: TestClient, engine: Engine,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    logging.getLogger("monitor").setLevel(logging.ERROR)
    try:
        token = sign_in(console)
        console.post("/silences", data={"csrf": token, "brand": "Lumora", "until": "2030-01-01 08:00",
                                        "reason": "campaign"})
        with transaction(engine) as conn:
            [silence] = silences.all_silences(conn)
        console.post(f"/silences/{silence.id}/expire", data={"csrf": token})
        console.post("/logout", data={"csrf": token})
        guest = sign_in(console, "guest")
        assert console.post("/silences", data={"csrf": guest, "brand": "Lumora", "until": "2030-01-01 08:00",
                                               "reason": "me too"}).status_code == 403
    finally:
        logging.getLogger("monitor").setLevel(logging.NOTSET)
    with transaction(engine) as conn:
        rows = [(a.actor, a.action, a.outcome) for a in reversed(audit.recent(conn))]
    assert rows == [("sofie", "sign-in", "done"), ("sofie", "silence-add", "done"),
                    ("sofie", "silence-expire", "done"), ("sofie", "sign-out", "done"),
                    ("guest", "sign-in", "done"), ("guest", "silence-add", "refused")]
    page = console.get("/audit")
    assert page.status_code == 200 and "end a silence" in page.text and "refused" in page.text  # in words


# --- an incident's page, notes, snooze, history ---------------------------------------------------------------

def test_a_closed_incident_keeps_its_page_with_notes_and_who_did_what(console: TestClient, engine: Engine,
                                                                      clock: FakeClock) -> None:
    incident_id = open_incident(engine, clock)
    token = sign_in(console, "karim")
    console.post(f"/incidents/{incident_id}/acknowledge", data={"csrf": token, "back": "incident"})
    noted = console.post(f"/incidents/{incident_id}/note",
                         data={"csrf": token, "text": "Called the customer; Sofie takes over tomorrow 8:00."})
    assert noted.status_code == 200 and "Note added" in noted.text
    with transaction(engine) as conn:
        audit.record(conn, at=clock.now(), actor="an", channel="slack", action="resolve", incident_id=incident_id)
    resolved = console.post(f"/incidents/{incident_id}/resolve", data={"csrf": token, "back": "incident"})
    assert resolved.url.path == f"/incidents/{incident_id}"
    assert f"#{incident_id}" not in console.get("/").text.split("Open incidents")[1].split("Sources")[0]
    page = console.get(f"/incidents/{incident_id}").text
    assert "Sofie takes over tomorrow" in page and "Lumora is a scam" in page
    who = page.split('id="incident-audit"')[1].split("</table>")[0]
    assert "karim" in who and "Slack" in who and "console" in who and "note" in who
    assert console.get("/incidents/99999").status_code == 404
    with transaction(engine) as conn:
        assert incidents.get(conn, incident_id).state is IncidentState.RESOLVED  # type: ignore[union-attr]


def test_guest_may_read_but_not_write_notes(console: TestClient, engine: Engine, clock: FakeClock) -> None:
    incident_id = open_incident(engine, clock)
    token = sign_in(console, "guest")
    assert console.get(f"/incidents/{incident_id}").status_code == 200
    refused = console.post(f"/incidents/{incident_id}/note", data={"csrf": token, "text": "hello"})
    assert refused.status_code == 403
    with transaction(engine) as conn:
        assert audit.notes(conn, incident_id) == []
        assert audit.for_incident(conn, incident_id)[-1].outcome == "refused"


def test_snooze_for_the_chosen_length(console: TestClient, engine: Engine, clock: FakeClock) -> None:
    """README "Setting up Slack": "The card's *Snooze for…* menu offers the same lengths as the console (30 minutes,
    1, 2, 4, 8 or 24 hours); the incident is snoozed for the length chosen and the audit log says which".

    The console's side: its form offers the lengths of ``escalation.snooze`` (the list Slack's menu reads) and
    accepts no other."""
    incident_id = open_incident(engine, clock)
    token = sign_in(console, "karim")
    page = console.get(f"/incidents/{incident_id}").text
    form = page.split('name="minutes">', 1)[1].split("</select>", 1)[0]
    assert re.findall(r'<option value="(\d+)"', form) == [str(m) for m in SNOOZES]
    assert "1 hour" in form and "24 hours" in form
    odd = console.post(f"/incidents/{incident_id}/snooze", data={"csrf": token, "minutes": "7"})
    assert odd.status_code == 400 and "snooze lengths offered" in odd.text
    done = console.post(f"/incidents/{incident_id}/snooze", data={"csrf": token, "minutes": "240"})
    assert f"Incident #{incident_id} snoozed for 4 hours." in done.text
    with transaction(engine) as conn:
        row = incidents.get(conn, incident_id)
    assert row is not None and row.next_action_at == clock.now() + timedelta(hours=4)
    with transaction(engine) as conn:
        entry = audit.for_incident(conn, incident_id)[-1]
    assert (entry.action, entry.outcome) == ("snooze", "done") and "for 4 hours" in (entry.detail or "")


def test_history_finds_incidents_by_brand_rule_author_date_and_state(console: TestClient, engine: Engine,
                                                                     clock: FakeClock) -> None:
    first = open_incident(engine, clock)
    with transaction(engine) as conn:
        conn.execute(update(tables.incidents).where(tables.incidents.c.id == first).values(
            state="resolved", closed_at=clock.now()))
    sign_in(console)

    def ids(query: str) -> list[str]:
        page = console.get(f"/incidents?{query}")
        assert page.status_code == 200, page.text
        return [part.split('"')[0] for part in page.text.split('<tr id="history-')[1:]]
    assert ids("") == [str(first)]
    assert ids("brand=Lumora&rule=negative-high-reach&state=resolved") == [str(first)]
    assert ids("state=open") == []
    assert ids("author=%40User1") == [str(first)]  # handle of the post, any case, with or without @
    assert ids("author=someone-else") == []
    day = clock.now().date()
    assert ids(f"from={day}&to={day}") == [str(first)]
    assert ids(f"from={day + timedelta(days=1)}") == []
    assert ids("words=ANGRY") == [str(first)]


# --- wording ----------------------------------------------------------------------------------------------------

def test_now_refreshes_itself_and_says_times_with_their_zone(console: TestClient, engine: Engine,
                                                             clock: FakeClock) -> None:
    open_incident(engine, clock)
    sign_in(console)
    page = console.get("/").text
    assert '<meta http-equiv="refresh" content="60">' in page
    # escalation.yaml's zone is Europe/Brussels, named as the reader says it (issue 30: "Brussel" in Dutch)
    assert "(Brussels time)" in page
    assert "Level 0" not in page


def test_an_incident_waiting_for_business_hours_says_so(console: TestClient, engine: Engine,
                                                        clock: FakeClock) -> None:
    incident_id = open_incident(engine, clock)
    with transaction(engine) as conn:
        conn.execute(update(tables.incidents).where(tables.incidents.c.id == incident_id).values(
            level=0, state="open", next_action_at=clock.now() + timedelta(hours=9)))
    sign_in(console)
    page = console.get(f"/incidents/{incident_id}").text
    assert "nobody called yet: first call at" in page and "level 0" not in page.lower()
