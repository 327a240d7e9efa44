"""``monitor forget`` reaches the Slack messages already posted: redrawn with ``chat.update``, or reported gone.

The incident is opened by the real engine and delivered by the real Slack
notifier to the local Slack emulator (the channel card, and a thread reply when
a second post joins); then the person is erased and the messages are redrawn
from the rewritten store. No message may still show their handle or words.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from monitor.clock import FakeClock
from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.models import Severity, Signal
from monitor.notify.base import deliver_pending
from monitor.notify.slack.client import RetryPolicy, make_client
from monitor.notify.slack.notifier import SlackNotifier
from monitor.notify.slack.redraw import Redrawn, redraw_incident
from monitor.privacy import forget
from monitor.store import transaction
from monitor.yamlconfig import parse
from tests.slack_emulator import BOT_TOKEN, Message, SlackEmulator
from tests.test_privacy import post

T0 = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
CONFIG = """
timezone: Europe/Brussels
business_hours: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
grouping: {window: 1h}
responders:
  sofie: {name: Sofie, slack: U0SOFIE01}
policies:
  - name: normal
    after_hours: page
    levels:
      - {notify: [sofie], channel: "#alerts", ack_within: 15m}
"""
WORDS = "Lumora took my deposit twice"


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(clock=lambda: T0)
    emulator.add_channel("alerts", "C0ALERTS01")
    emulator.add_user("U0SOFIE01", name="Sofie")
    with emulator:
        yield emulator


@pytest.fixture
def setup(tmp_path: Path, engine: Engine, slack: SlackEmulator) -> tuple[SlackNotifier, int]:
    """An incident about @anna_b's post, its card in #alerts and a thread reply for her second post."""
    path = tmp_path / "escalation.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    config = parse(EscalationConfig, path)
    esc = EscalationEngine(config)
    retry = RetryPolicy(backoff=0.001, sleep=lambda s: None, timeout=5)
    notifier = SlackNotifier(make_client(BOT_TOKEN, base_url=slack.base_url, retry=retry), engine, config,
                             clock=FakeClock(T0), retry=retry)
    first = post(engine, "9001", T0, "anna_b", f"{WORDS}, says @anna_b")
    second = post(engine, "9002", T0 + timedelta(minutes=5), "anna_b", "Still no answer about my deposit")
    signal = Signal(rule="negative", severity=Severity.WARNING, brand="Lumora", group_key="Lumora", kind="mention",
                    reason="Post by @anna_b on X: negative", fired_at=T0, mention_ids=(first,))
    with transaction(engine) as conn:
        [iid] = esc.ingest(conn, [signal], T0)
    assert deliver_pending(engine, notifier, T0) == 1
    later = T0 + timedelta(minutes=5)
    with transaction(engine) as conn:
        esc.ingest(conn, [Signal(rule="negative", severity=Severity.WARNING, brand="Lumora", group_key="Lumora",
                                 reason="Post by @anna_b on X: negative", fired_at=later,
                                 mention_ids=(second,))], later)
    assert deliver_pending(engine, notifier, later) == 1
    return notifier, iid


def posted(slack: SlackEmulator) -> list[Message]:
    """Every message in #alerts, thread replies included."""
    [card] = slack.messages("C0ALERTS01")
    return [card, *slack.replies("C0ALERTS01", card.ts)]


def shown(slack: SlackEmulator) -> str:
    """Everything a reader sees in #alerts."""
    return "\n".join(m.block_text() for m in posted(slack))


def test_forget_redraws_the_card_and_its_thread(engine: Engine, slack: SlackEmulator,
                                                 setup: tuple[SlackNotifier, int]) -> None:
    notifier, iid = setup
    before = shown(slack)
    assert "anna_b" in before and WORDS in before and len(posted(slack)) == 2
    report = forget(engine, "@anna_b")
    assert report.incidents == {iid}
    result = Redrawn()
    redraw_incident(notifier, iid, result)
    after = shown(slack)
    assert "anna_b" not in after and WORDS not in after and "deposit" not in after
    assert (result.updated, result.gone, result.failed) == (2, 0, [])  # the card and the thread reply
    assert all(m.updates >= 1 for m in posted(slack))


def test_a_message_deleted_in_slack_is_reported_gone(engine: Engine, slack: SlackEmulator,
                                                     setup: tuple[SlackNotifier, int]) -> None:
    notifier, iid = setup
    forget(engine, "@anna_b")
    channel = slack._channel("C0ALERTS01")
    channel.messages = [m for m in channel.messages if m.thread_ts is None]  # someone deleted the reply
    result = Redrawn()
    redraw_incident(notifier, iid, result)
    assert (result.updated, result.gone, result.failed) == (1, 0, [])  # a deleted reply is simply not found
    channel.messages = []  # and now the card too
    result = Redrawn()
    redraw_incident(notifier, iid, result)
    assert (result.updated, result.gone, result.failed) == (0, 1, [])
    assert "already deleted in Slack" in "\n".join(result.lines())


def test_the_forget_command_reports_the_slack_updates(engine: Engine, db_url: str, slack: SlackEmulator,
                                                      setup: tuple[SlackNotifier, int], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.cli import app

    (tmp_path / "escalation.yaml").write_text(CONFIG, encoding="utf-8")
    for key, value in {"MONITOR_DB_URL": db_url, "SLACK_BOT_TOKEN": BOT_TOKEN,
                       "MONITOR_SLACK_API_URL": slack.base_url,
                       "MONITOR_ESCALATION_FILE": str(tmp_path / "escalation.yaml")}.items():
        monkeypatch.setenv(key, value)
    done = CliRunner().invoke(app, ["forget", "--author", "@anna_b"])
    assert done.exit_code == 0, done.output
    assert "2  Slack messages already posted updated (chat.update)" in done.output
    assert "0  Slack messages already deleted in Slack" in done.output
    assert "anna_b" not in shown(slack)
