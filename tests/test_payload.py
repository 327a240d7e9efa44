"""The outbox payload is typed, and the JSON stored so far still reads and renders the same."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.models import AlertPayload, IncidentState, PersonRef, Severity, Signal
from monitor.notify.render import lines
from monitor.store import mentions as mention_repo
from monitor.store import outbox, transaction
from monitor.store.tables import outbox as outbox_table
from monitor.yamlconfig import parse
from tests.conftest import make_mention
from tests.test_escalation import CONFIG

T = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
POST = {"source": "x", "engagement": 0, "language": "en", "text": "Lumora is terrible",
        "created_at": "2026-11-18T09:00:00+00:00", "negative": None}
# An alert exactly as the engine wrote it before the payload was typed (the guideline still
# carried its "match"), for incident #1 below.
LEGACY_ALERT: dict[str, Any] = {
    "incident_id": 1, "brand": "Lumora", "rule": "burst", "severity": "critical", "state": "notified",
    "reason": "two posts", "policy": "critical", "opened_at": "2026-11-18T09:00:00+00:00", "mention_count": 2,
    "top_mentions": [
        {"id": 2, "url": "https://x.com/u/status/2", "author": "user2", "reach": 5000, **POST},
        {"id": 1, "url": "https://x.com/u/status/1", "author": "user1", "reach": 100, **POST},
    ],
    "guideline": {"match": {"severity": None, "brands": None, "rules": None},
                  "holding_statement": "We are looking into it.", "who_may_answer": "Sofie", "never_say": []},
    "timezone": "Europe/Brussels", "level": 1, "ack_deadline": "2026-11-18T09:15:00+00:00",
    "recipients": [{"id": "sofie", "name": "Sofie", "slack": "U0SOFIE01", "email": None}],
}
LEGACY_LINES = [
    "[NEW INCIDENT] #1 CRITICAL · Lumora · rule burst",
    "Why: two posts",
    "Level 1 → Sofie",
    "Acknowledge before Wed 18 Nov 10:15 (Brussels time) or the next level is called",
    "Posts (2 in this incident):",
    "  “Lumora is terrible”",
    "  @user2 · 5,000 followers · X · en · not scored · Wed 18 Nov 10:00",
    "  https://x.com/u/status/2",
    "  “Lumora is terrible”",
    "  @user1 · 100 followers · X · en · not scored · Wed 18 Nov 10:00",
    "  https://x.com/u/status/1",
    "Holding statement: We are looking into it.",
    "Who may answer: Sofie",
]


@pytest.fixture
def esc(tmp_path: Path) -> EscalationEngine:
    path = tmp_path / "escalation.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return EscalationEngine(parse(EscalationConfig, path))


def test_a_payload_stored_before_typing_still_renders() -> None:
    payload = AlertPayload.from_json(LEGACY_ALERT)
    assert payload.severity is Severity.CRITICAL and payload.state is IncidentState.NOTIFIED
    assert payload.recipients == (PersonRef("sofie", "Sofie", "U0SOFIE01", None),)
    assert payload.ack_deadline == T + timedelta(minutes=15)
    assert lines("alert", payload) == LEGACY_LINES


def test_the_engine_writes_the_stored_format(engine: Engine, esc: EscalationEngine) -> None:
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", [make_mention(1, at=T), make_mention(2, at=T, reach=5000)], None, T)
        esc.ingest(conn, [Signal("burst", Severity.CRITICAL, "Lumora", "Lumora", "two posts", T, (1, 2), "window")],
                   T)
        esc.snooze(conn, 1, "sofie", T + timedelta(hours=1), T + timedelta(minutes=1))
    with transaction(engine) as conn:
        stored = [r.payload for r in conn.execute(select(outbox_table.c.payload).order_by(outbox_table.c.id))]
        typed = [n.payload for n in outbox.pending(conn)]
    legacy = copy.deepcopy(LEGACY_ALERT)
    del legacy["guideline"]["match"]  # read by nobody; no longer written
    assert stored[0] == legacy
    snoozed = {k: v for k, v in legacy.items() if k != "recipients"}
    snoozed.update(actor="sofie", snoozed_until="2026-11-18T10:00:00+00:00", ack_deadline="2026-11-18T10:00:00+00:00")
    assert stored[1] == snoozed
    assert [AlertPayload.from_json(p) for p in stored] == typed
    assert [p.to_json() for p in typed] == stored


def test_privacy_scrubbed_and_sparse_rows_read() -> None:
    """Erasure blanks a post's text, author and link; the oldest rows lack the later fields."""
    scrubbed = copy.deepcopy(LEGACY_ALERT)
    scrubbed["top_mentions"][0].update(text="", author=None, url=None)
    post = AlertPayload.from_json(scrubbed).top_mentions[0]
    assert (post.text, post.author, post.url) == ("", None, None)
    shown = lines("alert", AlertPayload.from_json(scrubbed))
    assert shown[5:8] == ["  “”", "  unknown author · 5,000 followers · X · en · not scored · Wed 18 Nov 10:00",
                          "  (no link)"]
    sparse = AlertPayload.from_json({"incident_id": 3, "brand": "Lumora", "rule": "reach", "severity": "warning",
                                     "reason": "one post", "future_field": {"ignored": True}})
    assert sparse.timezone == "UTC" and sparse.top_mentions == () and sparse.guideline is None
    assert lines("acknowledged", sparse) == ["[ACKNOWLEDGED] #3 WARNING · Lumora · rule reach", "Why: one post"]


def test_a_payload_without_its_incident_is_refused_by_name() -> None:
    broken = {k: v for k, v in LEGACY_ALERT.items() if k not in ("brand", "reason")}
    with pytest.raises(ValueError, match="notification payload lacks brand, reason"):
        AlertPayload.from_json(broken)
