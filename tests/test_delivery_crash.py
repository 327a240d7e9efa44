"""Kill -9 during a Slack outage and again during the catch-up (issue 13): 0 lost, 0 duplicated, 0 superseded sent.

The story and the exact kill points are in ``tests/delivery_crash.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.delivery_crash import KARIM, SOFIE, run

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.mark.slow
def test_kill_9_during_the_outage_and_during_the_catch_up_loses_doubles_and_replays_nothing(tmp_path: Path) -> None:
    """README "When Slack fails": "nothing is lost, nothing goes twice to Slack, and nothing overtaken meanwhile is
    sent".
    """
    outcome = run(tmp_path / "kill", kill_at_post=3)
    why = outcome.report() + "\n" + "\n".join(f"--- {name}\n{text}" for name, text in outcome.logs.items())
    a, b, c, d = outcome.incidents  # A, B: Lumora; C, D: Rivo
    brand = {a: "Lumora", b: "Lumora", c: "Rivo", d: "Rivo"}
    assert outcome.lost == 0 and outcome.duplicated == 0 and outcome.superseded_sent == 0, why
    assert outcome.sigterm_exit == 0, why

    # The second kill really hit the catch-up between Slack accepting a post and the outbox recording it,
    # and the restarted worker looked for that post instead of posting it again.
    assert outcome.posts_before_kill == 3 < sum(outcome.post_keys.values()), why
    assert outcome.lookups_after_kill >= 1, why

    # A (acknowledged) and B (false positive) while Slack was down: their level calls were overtaken.
    superseded = {i for i, (_, status, _) in outcome.statuses.items() if status == "superseded"}
    assert {outcome.statuses[i][2] for i in superseded} == {a, b}
    assert {outcome.statuses[i][0] for i in superseded} == {"alert"}
    assert outcome.ids("escalation") and {outcome.statuses[i][2] for i in outcome.ids("escalation")} == {c, d}

    # E-mail: every level call overdue in Slack went once to that level's people, with its fixed Message-ID.
    expected = {f"<monitor-notification-{i}@monitor>": ["sofie@lumora.example"] for i in outcome.ids("alert")}
    expected |= {f"<monitor-notification-{i}@monitor>": ["karim@lumora.example"] for i in outcome.ids("escalation")}
    assert outcome.email_to == expected and set(outcome.emails.values()) == {1}, why

    # Slack, once back: one card per incident, in its present state; DMs only to people who must act.
    assert set(outcome.cards) == {a, b, c, d}
    assert "*Acknowledged*" in outcome.cards[a]
    assert "FALSE POSITIVE" in outcome.cards[b]
    assert all("Level 2" in outcome.cards[i] for i in (c, d))
    sofie, karim = outcome.dm_text[SOFIE], outcome.dm_text[KARIM]
    assert sorted(t.split("\n")[0] for t in sofie) == sorted(
        [f"[NEW INCIDENT] #{c} CRITICAL · Rivo · rule alert-word",
         f"[NEW INCIDENT] #{d} CRITICAL · Rivo · rule alert-word",
         f"[FALSE POSITIVE] #{b} CRITICAL · Lumora · rule alert-word"]), sofie  # B: she had it by e-mail
    assert sorted(t.split("\n")[0] for t in karim) == sorted(
        f"[ESCALATED] #{i} CRITICAL · Rivo · rule alert-word" for i in (c, d)), karim
    assert all(f"· {brand[i]} ·" in outcome.cards[i] for i in brand)

    # Honest timelines: how and when each level call went out, and no "never delivered" for an e-mailed one.
    for i in (c, d):
        delivered = [n.split(" (")[0] for n in outcome.timelines[i] if n.startswith("delivered")]
        assert delivered == ["delivered: level 1 call via e-mail", "delivered: level 2 call via e-mail",
                             "delivered: level 1 call via slack", "delivered: level 2 call via slack"], delivered
    for i in (a, b):
        notes = outcome.timelines[i]
        assert any(n.startswith("delivered: level 1 call via e-mail") for n in notes), notes
        assert any(n.startswith("not sent by Slack (went by e-mail): level 1 call") for n in notes), notes
        assert not any(n.startswith("never delivered") for n in notes), notes
