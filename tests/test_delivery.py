"""No alert is lost in silence (issue 13): blocked, deferred and superseded notifications, honest timelines.

Against the local Slack (``tests/slack_emulator.py``) with the real SDK client and the real outbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from monitor.clock import FakeClock
from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.models import Severity, Signal
from monitor.notify import deliver_pending
from monitor.notify.base import BLOCKED_RETRY, RETRY_AFTER_CAP
from monitor.notify.slack import RetryPolicy, SlackNotifier, make_client
from monitor.store import outbox, transaction
from monitor.store.tables import incident_events
from monitor.store.tables import outbox as outbox_table
from monitor.yamlconfig import parse
from tests.slack_emulator import BOT_TOKEN, SlackEmulator
from tests.test_slack import CONFIG, T0, ZONE, Waits, manifest_scopes, outbox_rows, seed


@pytest.fixture
def config(tmp_path: Path) -> EscalationConfig:
    path = tmp_path / "escalation.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return parse(EscalationConfig, path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(clock=clock.now, scopes=manifest_scopes())
    emulator.add_channel("reputation-alerts", "C0ALERTS01")
    for uid, email in (("U0SOFIE01", None), ("U0KARIM01", "karim@lumora.example"), ("U0ONCALL1", None),
                       ("U0LOTTE01", None)):
        emulator.add_user(uid, email=email)
    with emulator:
        yield emulator


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def notifier(slack: SlackEmulator, engine: Engine, config: EscalationConfig, clock: FakeClock,
             waits: Waits) -> SlackNotifier:
    retry = RetryPolicy(backoff=0.001, sleep=waits, timeout=5)
    return SlackNotifier(make_client(BOT_TOKEN, base_url=slack.base_url, retry=retry), engine, config, clock=clock,
                         retry=retry)


@pytest.fixture
def esc(config: EscalationConfig) -> EscalationEngine:
    return EscalationEngine(config)


def fire(engine: Engine, esc: EscalationEngine, i: int, clock: FakeClock, *, brand: str = "Lumora") -> int:
    """One signal that opens a new incident (a brand of its own keeps it out of the others)."""
    mid = seed(engine, i, clock.now(), text=f"post {i} about {brand}")
    signal = Signal(rule="negative-reach", severity=Severity.CRITICAL, brand=brand, group_key=brand,
                    reason="a post with many followers", fired_at=clock.now(), mention_ids=(mid,))
    with transaction(engine) as conn:
        [iid] = esc.ingest(conn, [signal], clock.now())
    return iid


def deliver(engine: Engine, notifier: Any, clock: FakeClock) -> int:
    return deliver_pending(engine, notifier, clock.now())


def tick(engine: Engine, esc: EscalationEngine, clock: FakeClock) -> None:
    with transaction(engine) as conn:
        esc.tick(conn, clock.now())


def restart(engine: Engine) -> None:
    """What a start does for blocked notifications: every one is due again."""
    with transaction(engine) as conn:
        outbox.release_blocked(conn)


def timeline(engine: Engine, incident_id: int) -> list[str]:
    with transaction(engine) as conn:
        return [str(n) for n in conn.execute(select(incident_events.c.note).where(
            incident_events.c.incident_id == incident_id).order_by(incident_events.c.id)).scalars()]


# --- 1. permanent refusals block, never "sent" -------------------------------------------------------
def test_a_wrong_token_blocks_every_alert_until_fixed_then_each_goes_once(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier,
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """README "When Slack fails": "Each refused alert is kept as *blocked*"."""
    slack.bot_token = "xoxb-the-right-one"  # ours is now revoked/wrong
    ids = [fire(engine, esc, i, clock, brand=f"Brand{i}") for i in range(1, 6)]
    assert deliver(engine, notifier, clock) == 0
    rows = outbox_rows(engine)
    assert [r["status"] for r in rows] == ["blocked"] * 5
    assert all(r["sent_at"] is None and "invalid_auth" in r["last_error"] for r in rows)
    assert "BLOCKED" in caplog.text and "To fix: SLACK_BOT_TOKEN is not accepted" in caplog.text
    assert BOT_TOKEN not in caplog.text

    # Slow schedule: not tried again on every pass...
    calls = len(slack.calls())
    clock.advance(timedelta(minutes=1))
    deliver(engine, notifier, clock)
    assert len(slack.calls()) == calls
    # ...and the token fixed, the worker restarted: every blocked alert goes out, once.
    slack.bot_token = BOT_TOKEN
    restart(engine)
    assert deliver(engine, notifier, clock) == 5
    assert len(slack.messages("C0ALERTS01")) == 5
    assert {r["status"] for r in outbox_rows(engine)} == {"sent"}
    clock.advance(BLOCKED_RETRY)
    restart(engine)
    assert deliver(engine, notifier, clock) == 0
    assert len(slack.messages("C0ALERTS01")) == 5
    assert all(any(n.startswith("delivered: level 1 call via slack") for n in timeline(engine, i)) for i in ids)


@pytest.mark.parametrize("problem", ["not_in_channel", "is_archived", "channel_not_found"])
def test_a_channel_problem_blocks_the_alert_and_the_slow_retry_delivers_it_once_fixed(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier,
        clock: FakeClock, problem: str) -> None:
    """README "When Slack fails": "People called by direct message still get theirs when only the channel is the
    problem".
    """
    channel = slack.channels["C0ALERTS01"]
    if problem == "not_in_channel":
        channel.member = False
    elif problem == "is_archived":
        channel.archived = True
    else:
        channel.name = "renamed"
    iid = fire(engine, esc, 1, clock)
    assert deliver(engine, notifier, clock) == 0
    [row] = outbox_rows(engine)
    assert row["status"] == "blocked" and row["sent_at"] is None
    assert (problem if problem != "channel_not_found" else "#reputation-alerts not found") in row["last_error"]
    dm = slack.dm_channel_of("U0SOFIE01")
    assert dm is not None and len(slack.messages(dm.id)) == 1  # the person called has it meanwhile

    # Someone acknowledges in the DM while the channel is broken: that waits behind the blocked alert.
    clock.advance(timedelta(minutes=2))
    with transaction(engine) as conn:
        esc.acknowledge(conn, iid, "sofie", clock.now())
    deliver(engine, notifier, clock)
    assert [r["status"] for r in outbox_rows(engine)] == ["blocked", "pending"]

    channel.member, channel.archived, channel.name = True, False, "reputation-alerts"
    clock.advance(BLOCKED_RETRY)
    deliver(engine, notifier, clock)
    # The alert itself is overtaken (acknowledged meanwhile): one card, in its current state.
    [card] = slack.messages("C0ALERTS01")
    assert "*Acknowledged*" in card.block_text()
    assert [r["status"] for r in outbox_rows(engine)] == ["superseded", "sent"]
    assert len(slack.messages(dm.id)) == 1  # the DM was not repeated


# --- 5. Retry-After -------------------------------------------------------------------------------------
def test_a_long_retry_after_defers_the_outbox_instead_of_sleeping(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier, clock: FakeClock,
        waits: Waits) -> None:
    """README "When Slack fails": "we wait that long (at most 15 minutes) without holding up the rest of the worker"."""
    fire(engine, esc, 1, clock)
    fire(engine, esc, 2, clock, brand="Other")
    slack.fail("chat.postMessage", status=429, retry_after=60)
    assert deliver(engine, notifier, clock) == 0
    assert all(w < 10 for w in waits)  # no long sleep in the worker's thread
    rows = outbox_rows(engine)
    assert rows[0]["next_attempt_at"] == clock.now() + timedelta(seconds=60)
    assert rows[1]["attempts"] == 0  # the second one waits too: Slack asked us to
    clock.advance(timedelta(seconds=30))
    calls = len(slack.calls())
    assert deliver(engine, notifier, clock) == 0 and len(slack.calls()) == calls
    clock.advance(timedelta(seconds=30))
    assert deliver(engine, notifier, clock) == 2

    slack.fail("chat.postMessage", status=429, retry_after=86_400)  # a day: capped
    fire(engine, esc, 3, clock, brand="Third")
    deliver(engine, notifier, clock)
    assert outbox_rows(engine)[-1]["next_attempt_at"] == clock.now() + RETRY_AFTER_CAP


@pytest.mark.parametrize("fault", ["garble", "reset", "503"])
def test_a_non_json_answer_or_a_reset_connection_loses_nothing(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier, clock: FakeClock,
        fault: str) -> None:
    fire(engine, esc, 1, clock)
    if fault == "garble":
        slack.garble("chat.postMessage", times=3)
    elif fault == "reset":
        slack.reset("chat.postMessage", times=3)
    else:
        slack.fail("chat.postMessage", status=503, times=3)
    deliver(engine, notifier, clock)
    [row] = outbox_rows(engine)
    assert row["status"] == "pending" and row["sent_at"] is None and row["last_error"]
    for _ in range(3):
        clock.advance(timedelta(minutes=1))
        deliver(engine, notifier, clock)
    assert outbox_rows(engine)[0]["status"] == "sent"
    assert len(slack.messages("C0ALERTS01")) == 1


# --- 3. catch-up delivers the present ------------------------------------------------------------------
def test_catch_up_after_an_outage_does_not_replay_history(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier,
        clock: FakeClock) -> None:
    """README "When Slack fails": "A message overtaken while it waited is not sent but recorded as *superseded*"."""
    slack.outage()
    iid = fire(engine, esc, 1, clock)
    deliver(engine, notifier, clock)
    clock.advance(timedelta(minutes=15))  # level 1's window passes while Slack is down: level 2 is due
    tick(engine, esc, clock)
    deliver(engine, notifier, clock)
    clock.advance(timedelta(minutes=5))
    with transaction(engine) as conn:
        esc.resolve(conn, iid, "sofie", clock.now(), false_positive=True)
    deliver(engine, notifier, clock)
    assert slack.ok_calls("chat.postMessage") == []

    slack.restore()
    clock.advance(timedelta(minutes=1))
    deliver(engine, notifier, clock)
    # One card, in its final state; no "you are called at level N" to anyone, no closing DM to people never called.
    [card] = slack.messages("C0ALERTS01")
    assert "False positive" in card.block_text() or "false positive" in card.block_text().lower()
    assert slack.channels.keys() == {"C0ALERTS01"}  # no DM conversation was even opened
    assert [r["status"] for r in outbox_rows(engine)] == ["superseded", "superseded", "sent"]
    notes = timeline(engine, iid)
    assert any(n.startswith("never delivered: level 1 call due") for n in notes)
    assert any(n.startswith("never delivered: level 2 call due") for n in notes)
    assert not any(n.startswith("delivered") for n in notes)


def test_after_an_outage_a_missed_level_1_is_called_together_with_level_2(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier,
        clock: FakeClock) -> None:
    """README "When Slack fails": "If level 1's window has already passed, both levels are called together"."""
    slack.outage()
    iid = fire(engine, esc, 1, clock)
    deliver(engine, notifier, clock)
    clock.advance(timedelta(minutes=15))
    tick(engine, esc, clock)
    deliver(engine, notifier, clock)
    slack.restore()
    clock.advance(timedelta(minutes=3))
    assert deliver(engine, notifier, clock) == 2
    sofie, karim = slack.dm_channel_of("U0SOFIE01"), slack.dm_channel_of("U0KARIM01")
    assert sofie is not None and karim is not None
    assert "level 1" in slack.messages(sofie.id)[0].block_text()
    assert "level 2" in slack.messages(karim.id)[0].block_text()
    [card] = slack.messages("C0ALERTS01")
    assert "Level 2" in card.block_text() and card.updates == 1
    notes = [n for n in timeline(engine, iid) if n.startswith("delivered")]
    assert notes == ["delivered: level 1 call via slack (due 2026-11-18 10:00 CET, 18 min after it was due)",
                     "delivered: level 2 call via slack (due 2026-11-18 10:15 CET, 3 min after it was due)"]


def test_a_missed_level_1_within_its_window_is_called_alone(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier,
        clock: FakeClock) -> None:
    """README "When Slack fails": "level 1 is still called first when delivery works again, and level 2 only when level
    1's window ends".
    """
    slack.outage()
    fire(engine, esc, 1, clock)
    deliver(engine, notifier, clock)
    clock.advance(timedelta(minutes=10))
    tick(engine, esc, clock)
    slack.restore()
    assert deliver(engine, notifier, clock) == 1
    assert slack.dm_channel_of("U0SOFIE01") is not None and slack.dm_channel_of("U0KARIM01") is None


def test_the_upgrade_brings_back_alerts_once_recorded_as_failed(engine: Engine, esc: EscalationEngine,
                                                                clock: FakeClock) -> None:
    """Before 0007 a refusal was stored as sent with external_ref "failed: ..."; those come back as blocked."""
    from alembic import command
    from sqlalchemy import text

    from monitor.store import migrate
    from monitor.store.database import alembic_config

    open_id = fire(engine, esc, 1, clock)
    closed_id = fire(engine, esc, 2, clock, brand="Other")
    with transaction(engine) as conn:
        esc.resolve(conn, closed_id, "sofie", clock.now())
    with engine.begin() as conn:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    with engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET sent_at = created_at, external_ref = 'failed: Slack answered "
                          "invalid_auth' WHERE kind = 'alert'"))
        conn.execute(text("UPDATE outbox SET sent_at = created_at, external_ref = 'C0ALERTS01:1.2' "
                          "WHERE kind <> 'alert'"))
    migrate(engine)
    rows = {(r["incident_id"], r["kind"]): r for r in outbox_rows(engine)}
    blocked = rows[(open_id, "alert")]
    assert (blocked["status"], blocked["sent_at"], blocked["external_ref"]) == ("blocked", None, None)
    assert blocked["last_error"] == "Slack answered invalid_auth" and blocked["blocked_since"] is not None
    assert rows[(closed_id, "alert")]["status"] == "superseded"
    assert rows[(closed_id, "resolved")]["status"] == "sent"


def test_monitor_outbox_lists_what_is_blocked_and_what_to_do(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """README "When Slack fails": "`monitor outbox` lists them"."""
    from typer.testing import CliRunner

    from monitor.cli import app

    slack.channels["C0ALERTS01"].member = False
    iid = fire(engine, esc, 1, clock)
    deliver(engine, notifier, clock)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONITOR_DB_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("MONITOR_TIMEZONE", "Europe/Brussels")
    result = CliRunner().invoke(app, ["outbox"])
    assert result.exit_code == 1, result.output
    assert f"BLOCKED    incident #{iid} alert queued Wed 18 Nov 10:00, blocked since Wed 18 Nov 10:00" in result.output
    assert "last error: chat.postMessage: Slack answered not_in_channel" in result.output
    assert "to fix: invite the monitor's Slack app to the channel" in result.output
    assert "outbox: 0 sent, 0 pending, 1 blocked, 0 superseded" in result.output
    assert isinstance(result.exception, SystemExit)  # a plain exit 1, no exception escaped


# --- 5. reminders follow the policy's hours ------------------------------------------------------------
def _reminders(engine: Engine) -> list[tuple[str, tuple[str, ...]]]:
    with transaction(engine) as conn:
        rows = conn.execute(select(outbox_table.c.created_at, outbox_table.c.recipients).where(
            outbox_table.c.kind == "reminder").order_by(outbox_table.c.id)).all()
    return [(f"{r[0].astimezone(ZONE):%a %H:%M}", tuple(r[1])) for r in rows]


@pytest.mark.parametrize("after_hours", ["wait", "page"])
def test_reminders_follow_the_policy_hours(engine: Engine, tmp_path: Path, after_hours: str) -> None:
    """README "When Slack fails": "A `wait` policy sends no reminder outside business hours".

    Acknowledged at 17:44 on a Wednesday, reminders every 2 h, hours 08:00-20:00: the night is quiet for a
    'wait' policy (the next reminder at 08:00, not ten through the night); a 'page' policy reminds only on call."""
    path = tmp_path / "escalation.yaml"
    policy = f"    after_hours: {after_hours}\n    remind_every: 2h\n"
    path.write_text(CONFIG.replace("    after_hours: page\n", policy), encoding="utf-8")
    esc = EscalationEngine(parse(EscalationConfig, path))
    clock = FakeClock(datetime(2026, 11, 18, 17, 44, tzinfo=ZONE).astimezone(UTC))
    iid = fire(engine, esc, 1, clock)
    with transaction(engine) as conn:
        esc.acknowledge(conn, iid, "sofie", clock.now())
    while clock.now() < datetime(2026, 11, 19, 11, 0, tzinfo=ZONE):
        clock.advance(timedelta(minutes=1))
        tick(engine, esc, clock)
    if after_hours == "wait":
        assert _reminders(engine) == [("Wed 19:44", ("sofie",)), ("Thu 08:00", ("sofie",)),
                                      ("Thu 10:00", ("sofie",))]
    else:
        assert _reminders(engine) == [("Wed 19:44", ("sofie",)), ("Wed 21:44", ("oncall",)),
                                      ("Wed 23:44", ("oncall",)), ("Thu 01:44", ("oncall",)),
                                      ("Thu 03:44", ("oncall",)), ("Thu 05:44", ("oncall",)),
                                      ("Thu 07:44", ("oncall",)), ("Thu 09:44", ("sofie",))]


# --- issue 28: a wrong channel holds nothing but its own card ---------------------------------------------
def test_a_wrong_level_1_channel_still_lets_level_2_be_called_and_a_reload_delivers_the_card_once(
        engine: Engine, slack: SlackEmulator, clock: FakeClock, waits: Waits, tmp_path: Path) -> None:
    """README "When Slack fails": "A refused level call does not hold the incident's next level: level 2 is still
    called".
    README "When Slack fails": "correct the file and run `monitor reload` (no restart): the blocked card goes out
    once, to the channel the file names now".

    README "When Slack fails": "a refused level call does not hold the incident's next level: level 2 is
    still called" and "correct escalation.yaml and run `monitor reload` (no restart): the blocked card goes
    out once, to the channel the file names now"."""
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(CONFIG.replace('"#reputation-alerts"', '"#reputation-alrets"'), encoding="utf-8")
    config = parse(EscalationConfig, wrong)
    esc = EscalationEngine(config)
    retry = RetryPolicy(backoff=0.001, sleep=waits, timeout=5)
    notifier = SlackNotifier(make_client(BOT_TOKEN, base_url=slack.base_url, retry=retry), engine, config,
                             clock=clock, retry=retry)
    iid = fire(engine, esc, 1, clock)
    deliver(engine, notifier, clock)
    [alert] = outbox_rows(engine)
    assert alert["status"] == "blocked" and "#reputation-alrets not found" in alert["last_error"]

    clock.advance(timedelta(minutes=16))  # level 1's window passes: level 2 is due
    tick(engine, esc, clock)
    deliver(engine, notifier, clock)
    karim = slack.dm_channel_of("U0KARIM01")
    assert karim is not None and len(slack.messages(karim.id)) == 1  # level 2 called despite the blocked card
    assert [r["status"] for r in outbox_rows(engine)] == ["blocked", "sent"]

    # The file corrected and reloaded (``LiveConfig`` hands the new procedure to ``use_config``), no restart.
    config_fixed = parse(EscalationConfig, _write(tmp_path / "fixed.yaml", CONFIG))
    notifier.use_config(config_fixed)
    clock.advance(timedelta(seconds=5))
    deliver(engine, notifier, clock)
    cards = [m for m in slack.messages("C0ALERTS01") if m.thread_ts in (None, m.ts)]
    assert len(cards) == 1  # once, in the channel the file names now
    assert {r["status"] for r in outbox_rows(engine)} == {"sent"}
    sofie = slack.dm_channel_of("U0SOFIE01")
    assert sofie is not None and len(slack.messages(sofie.id)) == 1 and len(slack.messages(karim.id)) == 1
    clock.advance(BLOCKED_RETRY)
    restart(engine)
    deliver(engine, notifier, clock)
    assert len([m for m in slack.messages("C0ALERTS01") if m.thread_ts in (None, m.ts)]) == 1
    assert any(n.startswith("delivered: level 1 call via slack") for n in timeline(engine, iid))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_retry_after_25_s_three_times_never_stalls_the_alerting_thread(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier, clock: FakeClock,
        waits: Waits) -> None:
    """README "Setting up Slack": "A 429 asking for up to 2 s is waited out; a longer `Retry-After` defers the
    notification in the outbox rather than stalling the worker".
    README "When Slack fails": "we wait that long (at most 15 minutes) without holding up the rest of the worker".

    README "When Slack fails": "when Slack asks us to wait (`Retry-After`), we wait that long (at most 15
    minutes) without holding up the rest of the worker" (issue 28: three 429s with `Retry-After: 25` stopped
    alerting for 75 s and an escalation due at 40 s was queued at 75.8 s)."""
    other = fire(engine, esc, 1, clock, brand="Other")
    deliver(engine, notifier, clock)  # the other incident's alert is out; its level 2 is due in 15 min
    first = fire(engine, esc, 2, clock)
    slack.fail("chat.postMessage", status=429, retry_after=25, times=3)
    for _ in range(3):
        deliver(engine, notifier, clock)  # each pass gives up at once: deferred, not slept through
        assert sum(waits) < 5, waits
        [row] = [r for r in outbox_rows(engine) if r["incident_id"] == first]
        if row["sent_at"] is not None:
            break
        assert row["next_attempt_at"] == clock.now() + timedelta(seconds=25)
        clock.advance(timedelta(seconds=25))
    assert row["sent_at"] is not None
    assert [c.status for c in slack.calls("chat.postMessage")].count(429) == 3
    # The other incident's escalation is queued at its deadline, on this same thread, and goes out.
    clock.advance(timedelta(minutes=15))
    tick(engine, esc, clock)
    escalations = [r for r in outbox_rows(engine) if r["incident_id"] == other and r["kind"] == "escalation"]
    assert len(escalations) == 1 and escalations[0]["created_at"] == clock.now()
    deliver(engine, notifier, clock)
    assert all(r["sent_at"] is not None for r in outbox_rows(engine))
    assert sum(waits) < 5, waits


def test_during_an_outage_the_outbox_backs_off_and_uses_slack_within_a_minute_of_its_return(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier, clock: FakeClock,
        waits: Waits) -> None:
    """README "When Slack fails": "while Slack is down the worker backs off (5 s, doubling up to a minute)".

    README "When Slack fails": "while Slack is down the worker backs off (5 s, doubling up to a minute): a
    long outage costs a few calls a minute, and Slack is used again within a minute of its return"."""
    fire(engine, esc, 1, clock)
    slack.outage()
    per_minute: list[int] = []
    for _minute in range(10):
        before = len(slack.calls())
        for _ in range(12):  # the alerting job every 5 s
            deliver(engine, notifier, clock)
            clock.advance(timedelta(seconds=5))
        per_minute.append(len(slack.calls()) - before)
    assert max(per_minute[3:]) <= 10, per_minute  # was ~73 a minute for the whole outage
    slack.restore()
    for _ in range(12):
        if deliver(engine, notifier, clock):
            break
        clock.advance(timedelta(seconds=5))
    assert outbox_rows(engine)[0]["status"] == "sent"
