"""Secrets: a token read from the environment or ``.env`` never reaches a log, an error we surface, or the store.

Each API is made to misbehave in the worst way for secrets: the server echoes the
request's ``Authorization`` header, or the bare token, in its error body. The real
clients run (tweepy against ``responses``, slack_sdk against the local Slack
emulator), every logger records at DEBUG, and afterwards the token is looked for
in the captured logs, in the messages our code surfaced, and in every column of
every table of the store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from sqlalchemy import Engine

from monitor.clock import FakeClock
from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.models import Mention, Severity, Signal
from monitor.notify import DeliveryError, deliver_pending
from monitor.notify.factory import build_notifier
from monitor.notify.slack import RetryPolicy as SlackRetry
from monitor.settings import Settings
from monitor.sources.polling import poll_source
from monitor.sources.resilience import RetryPolicy
from monitor.sources.x import XSource
from monitor.store import mentions as mention_repo
from monitor.store import outbox, transaction
from monitor.yamlconfig import parse
from tests.conftest import ALWAYS_OPEN_ESCALATION
from tests.slack_emulator import SlackEmulator
from tests.store_dump import dump_text

X_TOKEN = "AAAA-secret-token-123"
SLACK_TOKEN = "xoxb-secret-4242-monitor-bot"
APP_TOKEN = "xapp-1-secret-app-token-77"
SEARCH = "https://api.twitter.com/2/tweets/search/recent"
T0 = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
CONFIG = ALWAYS_OPEN_ESCALATION


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Tokens from a ``.env`` file only, as an operator would deploy them (not exported to the environment)."""
    for name in ("X_BEARER_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(f"X_BEARER_TOKEN={X_TOKEN}\nSLACK_BOT_TOKEN={SLACK_TOKEN}\n"
                                   f"SLACK_APP_TOKEN={APP_TOKEN}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    loaded = Settings()
    assert loaded.env("X_BEARER_TOKEN") == X_TOKEN  # the X platform's variable, read from .env
    return loaded


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)  # every logger, including tweepy's and slack_sdk's request logs
    yield caplog


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for token in (X_TOKEN, SLACK_TOKEN, APP_TOKEN):
            assert token not in text, f"{token} leaked into: {text[:300]}"


def test_settings_never_show_their_secrets(settings: Settings) -> None:
    shown = [repr(settings), str(settings), str(settings.model_dump()), settings.model_dump_json(),
             repr(settings.slack_bot_token)]
    assert_no_secret(*shown)
    assert "**********" in settings.model_dump_json()


# --- X: tweepy against a server that echoes the request -------------------------------------------


def echo(status: int) -> Any:
    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        header = request.headers.get("Authorization", "")
        body = {"title": "Unauthorized" if status == 401 else "Internal Error", "type": "about:blank",
                "detail": f"rejected {header}; token {header.removeprefix('Bearer ')} is not valid",
                "errors": [{"message": f"you sent Authorization: {header}"}]}
        return status, {"content-type": "application/json"}, json.dumps(body)
    return answer


@pytest.mark.parametrize("status", [401, 500])
def test_an_x_error_that_echoes_the_token_is_redacted_everywhere(
        status: int, settings: Settings, engine: Engine, clock: FakeClock,
        debug_logs: pytest.LogCaptureFixture) -> None:
    token = settings.env("X_BEARER_TOKEN")
    assert token is not None
    source = XSource.with_token(token, brand="Lumora", query="Lumora",
                                languages=["en"], clock=clock, timeout=5,
                                policy=RetryPolicy(attempts=2, initial=0.0, maximum=0.0, jitter=0.0,
                                                   sleep=lambda _: None))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.GET, SEARCH, callback=echo(status))
        outcome = poll_source(engine, source, clock.now)
        assert rsps.calls and X_TOKEN in rsps.calls[0].request.headers["Authorization"]  # it was really sent
    assert outcome.problem is not None and str(status) in outcome.problem
    assert_no_secret(outcome.problem, debug_logs.text, dump_text(engine))
    assert any(r.name == "tweepy.client" for r in debug_logs.records)  # its DEBUG request log was captured


# --- Slack: slack_sdk against an emulator that echoes the token -------------------------------------


class EchoingSlack(SlackEmulator):
    """Answers ``chat.postMessage`` with the caller's token in the body, in one of three ways."""

    def __init__(self, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = mode
        self.echoed = 0

    def handle(self, method: str, params: dict[str, Any], headers: dict[str, str]) -> tuple[
            int, dict[str, str], bytes] | None:
        if method != "chat.postMessage":
            return super().handle(method, params, headers)
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = auth.removeprefix("Bearer ")
        self.echoed += token == SLACK_TOKEN
        if self.mode == "html":  # a proxy's error page quoting the request
            return 502, {"Content-Type": "text/html"}, f"<pre>Authorization: {auth}\n{token}</pre>".encode()
        if self.mode == "code":  # the token inside the error code itself
            body = {"ok": False, "error": f"token_revoked:{token}"}
        else:
            body = {"ok": False, "error": "invalid_auth", "detail": f"bad header {auth}", "you_sent": token}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


@pytest.mark.parametrize("mode", ["json", "code", "html"])
def test_a_slack_error_that_echoes_the_token_is_redacted_everywhere(
        mode: str, settings: Settings, engine: Engine, tmp_path: Path,
        debug_logs: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "escalation.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    config = parse(EscalationConfig, path)
    slack = EchoingSlack(mode, bot_token=SLACK_TOKEN, app_token=APP_TOKEN)
    with slack:
        slack.add_channel("alerts", "C0ALERTS01")
        slack.add_user("U0SOFIE01", name="Sofie")
        notifier = build_notifier(settings, engine, config, base_url=slack.base_url,
                                  retry=SlackRetry(backoff=0.0, sleep=lambda _: None, timeout=5))
        with transaction(engine) as conn:
            mention_repo.store_batch(conn, "x", [Mention(source="x", source_id="1", brand="Lumora",
                                                         text="Lumora is terrible", created_at=T0)], None, T0)
            EscalationEngine(config).ingest(conn, [Signal(rule="r", severity=Severity.CRITICAL, brand="Lumora",
                                                          group_key="Lumora", reason="a negative post", fired_at=T0,
                                                          mention_ids=(1,))], T0)
            [queued] = outbox.pending(conn)
        with pytest.raises(DeliveryError) as direct:
            notifier.send(queued)
        deliver_pending(engine, notifier, T0)
        assert slack.echoed  # Slack really answered with the token
    assert_no_secret(str(direct.value), debug_logs.text, dump_text(engine))
