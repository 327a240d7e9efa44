"""The e-mail fallback against a local SMTP server (aiosmtpd), with the local Slack."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from monitor.clock import FakeClock
from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.notify.base import OUTAGE_BACKOFF_CAP
from monitor.notify.email import EmailFallback, EmailSender, SmtpSettings
from monitor.notify.slack import RetryPolicy, SlackNotifier, make_client
from monitor.store import transaction
from monitor.yamlconfig import parse
from tests.slack_emulator import BOT_TOKEN, SlackEmulator
from tests.smtp_server import LocalSmtp
from tests.test_delivery import deliver, fire, tick, timeline
from tests.test_slack import CONFIG, T0, Waits, manifest_scopes, outbox_rows

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

EMAIL_CONFIG = (CONFIG.replace("sofie: {name: Sofie Peeters, slack: U0SOFIE01}",
                               "sofie: {name: Sofie Peeters, slack: U0SOFIE01, email: sofie@lumora.example}")
                .replace("    on_call: [oncall]\n", "    on_call: [oncall]\n    email_fallback_after: 10m\n"))


@pytest.fixture
def config(tmp_path: Path) -> EscalationConfig:
    path = tmp_path / "escalation.yaml"
    path.write_text(EMAIL_CONFIG, encoding="utf-8")
    return parse(EscalationConfig, path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(clock=clock.now, scopes=manifest_scopes())
    emulator.add_channel("reputation-alerts", "C0ALERTS01")
    emulator.add_user("U0SOFIE01", email="sofie@lumora.example")
    emulator.add_user("U0KARIM01", email="karim@lumora.example")
    with emulator:
        yield emulator


@pytest.fixture
def smtp() -> Iterator[LocalSmtp]:
    server = LocalSmtp(user="monitor", password="smtp-secret").start()
    yield server
    server.stop()


def notifier_with_email(slack: SlackEmulator, engine: Engine, config: EscalationConfig, clock: FakeClock,
                        smtp: LocalSmtp, password: str = "smtp-secret") -> SlackNotifier:
    retry = RetryPolicy(backoff=0.001, sleep=Waits(), timeout=5)
    notifier = SlackNotifier(make_client(BOT_TOKEN, base_url=slack.base_url, retry=retry), engine, config,
                             clock=clock, retry=retry)
    sender = EmailSender(SmtpSettings(host="127.0.0.1", port=smtp.port, starttls=False, user="monitor",
                                      password=password, timeout=5))
    notifier.fallback = EmailFallback(sender, config)
    return notifier


def test_slack_down_30_minutes_while_an_incident_escalates_then_acknowledged_in_slack(
        engine: Engine, config: EscalationConfig, slack: SlackEmulator, smtp: LocalSmtp, clock: FakeClock) -> None:
    """README "When Slack fails": "send the same alert by e-mail to the level's people (their `email:`) when Slack has
    not delivered it for that long".
    """
    esc = EscalationEngine(config)
    notifier = notifier_with_email(slack, engine, config, clock, smtp)
    slack.outage()
    iid = fire(engine, esc, 1, clock)
    for _ in range(30):  # one pass a minute for 30 minutes
        deliver(engine, notifier, clock)
        tick(engine, esc, clock)
        clock.advance(timedelta(minutes=1))
    # Level 1 (Sofie) by e-mail after 10 min; level 2 (Karim) was due at 15 min, e-mailed at 25 min.
    assert [r.to for r in smtp.received] == [["sofie@lumora.example"], ["karim@lumora.example"]]
    first = smtp.received[0].message
    assert first["Subject"].startswith(f"[NEW INCIDENT] #{iid} CRITICAL")
    assert first["Message-ID"] == "<monitor-notification-1@monitor>"
    plain, page = (part.get_content() for part in first.iter_parts())
    assert "You are called at level 1" in plain and "post 1 about Lumora" in plain
    assert "We are looking into it" in plain and "<li>" in page
    assert [r["status"] for r in outbox_rows(engine)] == ["pending", "pending"]  # Slack still owes them

    slack.restore()
    deliver(engine, notifier, clock)
    [card] = slack.messages("C0ALERTS01")
    assert "Level 2" in card.block_text()
    with transaction(engine) as conn:
        esc.acknowledge(conn, iid, "karim", clock.now())
    deliver(engine, notifier, clock)
    assert "*Acknowledged*" in card.block_text()
    assert len(smtp.received) == 2  # each e-mail once
    notes = [n for n in timeline(engine, iid) if n.startswith("delivered")]
    assert [n.split(" (")[0] for n in notes] == ["delivered: level 1 call via e-mail",
                                                 "delivered: level 2 call via e-mail",
                                                 "delivered: level 1 call via slack",
                                                 "delivered: level 2 call via slack"]


@pytest.mark.parametrize("fault", ["login refused", "down"])
def test_an_smtp_server_refusing_login_or_down_loses_nothing(
        engine: Engine, config: EscalationConfig, slack: SlackEmulator, smtp: LocalSmtp, clock: FakeClock,
        caplog: pytest.LogCaptureFixture, fault: str) -> None:
    """README "When Slack fails": "If the mail server refuses the login or is down, the log says so in one line and the
    alert stays queued for both paths".
    """
    esc = EscalationEngine(config)
    if fault == "down":
        smtp.stop()
    notifier = notifier_with_email(slack, engine, config, clock, smtp,
                                   password="wrong" if fault == "login refused" else "smtp-secret")
    slack.outage()
    fire(engine, esc, 1, clock)
    deliver(engine, notifier, clock)
    clock.advance(timedelta(minutes=11))
    deliver(engine, notifier, clock)
    expected = "refused the login of 'monitor'" if fault == "login refused" else "cannot be reached"
    assert expected in caplog.text and "check MONITOR_SMTP" in caplog.text
    assert "smtp-secret" not in caplog.text and "Traceback" not in caplog.text
    [row] = outbox_rows(engine)
    assert row["email_sent_at"] is None and row["status"] == "pending"
    slack.restore()
    clock.advance(OUTAGE_BACKOFF_CAP)  # the outbox backs off during an outage: tried again within a minute
    deliver(engine, notifier, clock)
    assert outbox_rows(engine)[0]["status"] == "sent"
