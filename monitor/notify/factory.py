"""Which notifier this process uses: Slack when a bot token is configured, else the console.

The composition root (``monitor.app``) calls ``build_notifier`` (and
``build_action_listener`` for the buttons) so that ``monitor run`` needs no code
change to go from a terminal to Slack. ``slack_client`` is the one place a Slack
Web API client is made from the settings: the worker's alerts, its weekly digest
and ``monitor digest --post`` all get the same token handling, base URL
(``MONITOR_SLACK_API_URL``) and retry policy.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from slack_sdk import WebClient
from sqlalchemy import Engine

from monitor.clock import Clock
from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.notify.base import Notifier
from monitor.notify.console import ConsoleNotifier
from monitor.notify.slack import (
    BlockActionHandler,
    RetryPolicy,
    SlackActionListener,
    SlackNotifier,
    make_client,
)
from monitor.settings import Settings

if TYPE_CHECKING:
    from monitor.notify.email import EmailFallback

log = logging.getLogger(__name__)
CHANNEL_ENV = "MONITOR_SLACK_CHANNEL"


def slack_client(settings: Settings, *, base_url: str | None = None,
                 retry: RetryPolicy | None = None) -> WebClient | None:
    """The configured Slack Web API client, or None when ``SLACK_BOT_TOKEN`` is not set.

    ``base_url`` overrides ``MONITOR_SLACK_API_URL`` (tests point it at a local emulator).
    """
    token = settings.slack_bot_token.get_secret_value().strip() if settings.slack_bot_token else ""
    if not token:
        return None
    return make_client(token, base_url=base_url or settings.slack_api_url, retry=retry)


def build_notifier(settings: Settings, engine: Engine, escalation_config: EscalationConfig, *,
                   clock: Clock | None = None, default_channel: str | None = None, base_url: str | None = None,
                   retry: RetryPolicy | None = None, client: WebClient | None = None,
                   claimant: str | None = None) -> Notifier:
    """``SlackNotifier`` when ``SLACK_BOT_TOKEN`` is set, otherwise ``ConsoleNotifier(sys.stdout)``.

    ``client``: one already made by ``slack_client`` (so the worker's digest posts
    through the same one); by default one is made here. The default channel (for
    levels of ``escalation.yaml`` that name people but no channel) is
    ``default_channel``, else ``MONITOR_SLACK_CHANNEL``. ``claimant``: the worker's id, which
    holds the e-mail fallback's outbox claims (default host:pid).
    """
    client = client or slack_client(settings, base_url=base_url, retry=retry)
    if client is None:
        log.info("SLACK_BOT_TOKEN not set: alerts go to the console")
        return ConsoleNotifier(sys.stdout)
    channel = default_channel or getattr(settings, "slack_channel", None) or os.environ.get(CHANNEL_ENV) or None
    log.info("alerts go to Slack%s", f" (default channel {channel})" if channel else "")
    notifier = SlackNotifier(client, engine, escalation_config, default_channel=channel, clock=clock, retry=retry)
    notifier.fallback = email_fallback(settings, escalation_config, claimant=claimant)
    return notifier


def email_fallback(settings: Settings, config: EscalationConfig, *,
                   claimant: str | None = None) -> EmailFallback | None:
    """The e-mail path when ``MONITOR_SMTP_HOST`` is set and some policy has ``email_fallback_after``."""
    from monitor.notify.email import EmailFallback, EmailSender, SmtpSettings

    wanted = any(p.email_fallback_after for p in config.policies)
    if not settings.smtp_host:
        if wanted:
            log.warning("escalation.yaml asks for an e-mail fallback but MONITOR_SMTP_HOST is not set: none")
        return None
    if not wanted:
        return None
    smtp = SmtpSettings(host=settings.smtp_host, port=settings.smtp_port, starttls=settings.smtp_starttls,
                        user=settings.smtp_user, password=_secret(settings.smtp_password), sender=settings.smtp_from)
    return EmailFallback(EmailSender(smtp), config, claimant=claimant)


def build_action_listener(settings: Settings, notifier: Notifier, escalation: EscalationEngine, *,
                          clock: Clock | None = None,
                          on_applied: Callable[[], None] | None = None,
                          lock: AbstractContextManager[Any] | None = None) -> SlackActionListener | None:
    """The Socket Mode listener for the buttons, or None when Slack or ``SLACK_APP_TOKEN`` is missing.

    Call ``start()`` on it after the worker starts and ``stop()`` before it stops.
    ``on_applied`` runs after a click changed an incident (e.g. schedule the worker's
    pass now, so the Slack message updates at once); it must not call
    ``deliver_pending`` beside a running pass. ``lock``: see ``handle_block_action``.
    """
    if not isinstance(notifier, SlackNotifier):
        return None
    app_token = settings.slack_app_token.get_secret_value().strip() if settings.slack_app_token else ""
    if not app_token:
        log.warning("SLACK_APP_TOKEN not set: the buttons in Slack alerts will not work")
        notifier.status.buttons("buttons offline: SLACK_APP_TOKEN is not set (the app-level token, xapp-); "
                                "alerts still arrive")
        return None
    if not app_token.startswith("xapp-"):
        from monitor.notify.slack.checks import APP_TOKEN_KIND

        # A configuration error, said once and plainly; alerts flow, so /healthz stays 200 (buttons offline).
        log.error("configuration error: %s", APP_TOKEN_KIND)
        notifier.status.buttons(f"buttons offline: {APP_TOKEN_KIND}")
        return None
    handler = BlockActionHandler(engine=notifier.engine, escalation=escalation, client=notifier.client,
                                 directory=notifier.directory, clock=clock or notifier.clock, on_applied=on_applied,
                                 lock=lock)
    return SlackActionListener(app_token, notifier.client, handler, on_status=notifier.status.buttons)


def check_delivery(settings: Settings, notifier: Notifier, config: EscalationConfig) -> list[str]:
    """The Slack checks for a running worker: logged loudly, fed to ``/healthz``; returns the problems.

    Nothing here raises: Slack being unreachable or refusing the token is reported and
    retried (this runs at start and every few minutes), never a reason to exit.
    """
    from monitor.notify.slack.checks import check_slack

    if not isinstance(notifier, SlackNotifier):
        return []
    default = getattr(settings, "slack_channel", None) or os.environ.get(CHANNEL_ENV) or None
    result = check_slack(notifier.client, config, default_channel=default,
                         bot_token=_secret(settings.slack_bot_token), app_token=_secret(settings.slack_app_token))
    for line in result.warnings:
        log.warning("Slack check: %s", line)
    for line in result.problems:
        log.error("Slack check failed: %s (alerts are kept in the outbox and retried; `monitor outbox` lists "
                  "them)", line)
    if not result.problems:
        log.info("Slack check passed: %s", "; ".join(result.ok))
    notifier.status.checked(result.problems, unreachable=result.unreachable)
    return result.problems


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
