"""Start-up and live checks of Slack, ``monitor check --slack``, Socket Mode that is never fatal, /healthz."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.clock import FakeClock
from monitor.escalation import EscalationConfig
from monitor.notify.slack import RetryPolicy, SlackActionListener, make_client
from monitor.notify.slack.checks import check_slack, token_kind_problems
from monitor.notify.status import DeliveryStatus
from monitor.ops import HealthCheck, Metrics
from monitor.yamlconfig import parse
from tests.slack_emulator import APP_TOKEN, BOT_TOKEN, SlackEmulator, wait_until
from tests.test_slack import CONFIG, T0, manifest_scopes

CONFIG_FILE = CONFIG.replace(
    "      - {notify: [lotte], ack_within: 1h}", "      - {notify: [lotte], channel: legal-team, ack_within: 1h}")


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "escalation.yaml"
    path.write_text(CONFIG_FILE, encoding="utf-8")
    return path


@pytest.fixture
def config(config_path: Path) -> EscalationConfig:
    return parse(EscalationConfig, config_path)


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(scopes=manifest_scopes())
    emulator.add_channel("reputation-alerts", "C0ALERTS01")
    emulator.add_channel("legal-team", "C0LEGAL001", private=True, member=False)
    emulator.add_user("U0KARIM01", email="karim@lumora.example")
    with emulator:
        yield emulator


def test_tokens_of_the_wrong_kind_are_named_without_printing_them() -> None:
    assert token_kind_problems(BOT_TOKEN, APP_TOKEN) == []
    [swapped] = token_kind_problems(APP_TOKEN, BOT_TOKEN)
    assert "swapped" in swapped
    [user] = token_kind_problems("xoxp-1-2-3-user", APP_TOKEN)
    assert "user token (xoxp-)" in user and "xoxp-1-2-3" not in user
    [app] = token_kind_problems(BOT_TOKEN, "xoxb-not-an-app-token")
    assert "SLACK_APP_TOKEN must be an app-level token (xapp-" in app


def test_every_channel_is_checked_with_or_without_hash(slack: SlackEmulator, config: EscalationConfig) -> None:
    """README "Setting up Slack": "private channels must be joined this way before the app can read them"."""
    client = make_client(BOT_TOKEN, base_url=slack.base_url)
    result = check_slack(client, config, default_channel="reputation-alerts", bot_token=BOT_TOKEN)
    # The private legal channel is invisible until the app is invited: named as such.
    assert result.problems == ["Slack channel legal-team not found: check the channel in escalation.yaml (or "
                               "MONITOR_SLACK_CHANNEL); for a private channel, invite the monitor's Slack app there "
                               "first (/invite)"]
    assert "Slack channel #reputation-alerts: found, the app is a member" in result.ok
    assert "Slack channel reputation-alerts: found, the app is a member" in result.ok

    slack.channels["C0LEGAL001"].member = True
    slack.channels["C0ALERTS01"].member = False
    slack.users.pop("U0KARIM01")
    result = check_slack(client, config, bot_token=BOT_TOKEN)
    assert result.problems == ["Slack channel #reputation-alerts: the app is not a member: invite the monitor's "
                               "Slack app to the channel: type /invite @<app name> in it"]
    assert result.warnings == ["responder karim: no Slack user has this e-mail address; they are not messaged in "
                               "Slack (give their 'slack:' user id in escalation.yaml)"]
    slack.archive("C0ALERTS01")
    assert "is archived" in check_slack(client, config).problems[0]


def test_a_refused_or_unreachable_slack_is_a_problem_not_a_crash(slack: SlackEmulator,
                                                                config: EscalationConfig) -> None:
    wrong = make_client("xoxb-wrong", base_url=slack.base_url)
    [problem] = check_slack(wrong, config).problems
    assert "invalid_auth" in problem and "copy the Bot User OAuth Token" in problem and "xoxb-wrong" not in problem
    slack.outage()
    client = make_client(BOT_TOKEN, base_url=slack.base_url)
    [problem] = check_slack(client, config).problems
    assert problem.startswith("Slack cannot be reached") and "alerts wait in the outbox" in problem


def test_monitor_check_slack(slack: SlackEmulator, config_path: Path, monkeypatch: pytest.MonkeyPatch,
                             tmp_path: Path) -> None:
    """README "Setting up Slack": "`monitor check --slack` runs the checks the worker runs at start"."""
    from monitor.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONITOR_SLACK_API_URL", slack.base_url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    root = Path(__file__).parent.parent
    args = ["check", "--escalation", str(config_path), "--rules", str(root / "rules"),
            "--config", str(root / "monitor.yaml"), "--slack"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "error: slack: Slack channel legal-team not found" in result.output
    assert "ok: Slack: bot U0MONITOR1 in workspace Lumora" in result.output
    assert "SLACK_APP_TOKEN is not set" in result.output
    slack.channels["C0LEGAL001"].member = True
    monkeypatch.setenv("SLACK_APP_TOKEN", BOT_TOKEN)  # swapped kinds
    monkeypatch.setenv("SLACK_BOT_TOKEN", APP_TOKEN)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "are swapped" in result.output
    assert APP_TOKEN not in result.output and BOT_TOKEN not in result.output
    assert isinstance(result.exception, SystemExit)  # a plain exit 1, no exception escaped
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("fault", ["503", "wrong token"])
def test_socket_mode_that_cannot_connect_is_retried_and_never_fatal(
        slack: SlackEmulator, fault: str, caplog: pytest.LogCaptureFixture) -> None:
    """README "When Slack fails": "the worker keeps reconnecting with growing waits"."""
    statuses: list[str | None] = []
    token = APP_TOKEN
    if fault == "503":
        slack.fail("apps.connections.open", status=503, times=3)
    else:
        token = "xapp-1-wrong-app-token"
    web = make_client(BOT_TOKEN, base_url=slack.base_url)
    listener = SlackActionListener(token, web, lambda payload: None, backoff=0.05, max_backoff=0.1,
                                   on_status=statuses.append)
    with caplog.at_level(logging.ERROR):
        listener.start()  # returns at once, whatever Slack does
        try:
            if fault == "503":
                assert wait_until(lambda: listener.connected, timeout=20)
                assert statuses[-1] is None and len(statuses) >= 2
                assert statuses[0] is not None and statuses[0].startswith("buttons offline")
            else:
                assert wait_until(lambda: len(statuses) >= 2, timeout=10)
                assert not listener.connected
                assert listener.problem is not None and "SLACK_APP_TOKEN must be the app-level token" in \
                    listener.problem
        finally:
            listener.stop()
    assert "xapp-1-wrong-app-token" not in caplog.text and APP_TOKEN not in caplog.text


def test_healthz_is_not_ok_while_delivery_is_broken() -> None:
    """README "When Slack fails": "`/healthz` is not OK and says why, `monitor_delivery_ok` is 0"."""
    clock = FakeClock(T0)
    metrics = Metrics(clock=clock.now, process_metrics=False)
    metrics.pass_finished()
    status = DeliveryStatus(clock.now)
    health = HealthCheck(metrics, delivery=status.report)
    assert health.check().status == 200
    status.buttons("buttons offline: Socket Mode cannot connect")
    report = health.check()
    assert report.status == 200 and report.body["delivery"]["buttons"] == [
        "buttons offline: Socket Mode cannot connect"]  # the buttons alone hold back no alert
    status.checked(["Slack channel #x not found: ..."])
    status.register(metrics.registry)
    report = health.check()
    assert report.status == 503 and "delivery: Slack channel #x not found: ..." in report.body["problems"]
    assert b"monitor_delivery_ok 0.0" in metrics.exposition()
    assert b"monitor_buttons_online 0.0" in metrics.exposition()


# --- issue 28: health that tells the truth ------------------------------------------------------------------
def test_slack_unreachable_clears_as_soon_as_a_delivery_succeeds(slack: SlackEmulator,
                                                                 config: EscalationConfig) -> None:
    """README "When Slack fails": "is OK again as soon as Slack answers and everything waiting is delivered".

    README "When Slack fails": "`/healthz` says 'Slack cannot be reached' while it cannot, and is OK again as
    soon as Slack answers and everything waiting is delivered" (not at the next check, minutes later)."""
    from monitor.models import AlertPayload, Notification, Severity

    clock = FakeClock(T0)
    metrics = Metrics(clock=clock.now, process_metrics=False)
    metrics.pass_finished()
    status = DeliveryStatus(clock.now)
    health = HealthCheck(metrics, delivery=status.report)
    slack.outage()
    result = check_slack(make_client(BOT_TOKEN, base_url=slack.base_url,
                                     retry=RetryPolicy(backoff=0.001, sleep=lambda s: None)), config)
    assert result.unreachable is not None and result.unreachable in result.problems
    status.checked(result.problems, unreachable=result.unreachable)
    report = health.check()
    assert report.status == 503 and any("Slack cannot be reached" in p for p in report.body["problems"])
    assert status.unreachable
    slack.restore()
    status.delivered(Notification(id=1, incident_id=1, kind="alert", recipients=(), channel=None,
                                  payload=AlertPayload(incident_id=1, brand="Lumora", severity=Severity.CRITICAL,
                                                       rule="r", reason="x"), created_at=T0))
    assert health.check().status == 200 and not status.unreachable


def test_no_app_token_shows_the_buttons_offline_and_an_xoxb_app_token_is_a_config_error_not_a_503(
        slack: SlackEmulator, config: EscalationConfig, engine_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """README "Setting up Slack": "Without it alerts still arrive, but the buttons do nothing, and `/healthz` says so".
    README "Setting up Slack": "A bot token (`xoxb-…`) in `SLACK_APP_TOKEN` is named as a configuration error at
    start".

    README "Setting up Slack": "without `SLACK_APP_TOKEN` alerts arrive but `/healthz` shows the buttons
    offline", and "a bot token (xoxb-) in `SLACK_APP_TOKEN` is named as a configuration error at start;
    alerts keep flowing (`/healthz` stays 200, buttons offline)"."""
    from monitor.escalation import EscalationEngine
    from monitor.notify.factory import build_action_listener, build_notifier, check_delivery
    from monitor.notify.slack import SlackNotifier
    from monitor.settings import Settings
    from monitor.store import create_store_engine, migrate

    monkeypatch.chdir(engine_path)
    engine = create_store_engine(f"sqlite:///{engine_path / 'store.db'}")
    migrate(engine)
    for name in ("SLACK_APP_TOKEN", "MONITOR_SLACK_CHANNEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    notifier = build_notifier(Settings(), engine, config, base_url=slack.base_url)
    assert isinstance(notifier, SlackNotifier)
    esc = EscalationEngine(config)
    assert build_action_listener(Settings(), notifier, esc) is None
    assert notifier.status.report()["buttons"] != "online"
    assert "SLACK_APP_TOKEN is not set" in str(notifier.status.report()["buttons"])

    monkeypatch.setenv("SLACK_APP_TOKEN", BOT_TOKEN)  # the bot token pasted into the app token's place
    notifier = build_notifier(Settings(), engine, config, base_url=slack.base_url)
    assert isinstance(notifier, SlackNotifier)
    with caplog.at_level(logging.ERROR):
        assert build_action_listener(Settings(), notifier, esc) is None
    assert "configuration error: SLACK_APP_TOKEN must be an app-level token" in caplog.text
    assert BOT_TOKEN not in caplog.text
    slack.channels["C0LEGAL001"].member = True
    monkeypatch.setenv("MONITOR_SLACK_API_URL", slack.base_url)
    problems = check_delivery(Settings(), notifier, config)
    assert problems == []  # not a delivery problem
    metrics = Metrics(clock=FakeClock(T0).now, process_metrics=False)
    metrics.pass_finished()
    report = HealthCheck(metrics, delivery=notifier.status.report).check()
    assert report.status == 200 and report.body["delivery"]["ok"]
    assert "SLACK_APP_TOKEN must be an app-level token" in str(report.body["delivery"]["buttons"])
    engine.dispose()


@pytest.fixture
def engine_path(tmp_path: Path) -> Path:
    return tmp_path


def test_healthz_names_the_outage_start_in_the_teams_zone() -> None:
    """An operator reads when Slack went away in the team's zone, named, not in UTC."""
    from monitor.models import AlertPayload, Notification, Severity
    from monitor.notify.base import DeliveryError

    clock = FakeClock(T0)
    status = DeliveryStatus(clock.now, zone=lambda: "Europe/Brussels")
    notification = Notification(id=1, incident_id=1, kind="alert", recipients=(), channel=None, created_at=T0,
                                payload=AlertPayload(incident_id=1, brand="Lumora", severity=Severity.CRITICAL,
                                                     rule="r", reason="x"))
    status.failed(notification, DeliveryError("connection refused", recoverable=True))
    [problem] = status.problems()
    assert problem.startswith("Slack unreachable since Wed 18 Nov 10:00 (Brussels time) (connection refused)")
    assert "UTC" not in problem
