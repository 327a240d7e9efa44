"""Slack: one Block Kit message per incident, DMs to whoever is called, buttons over Socket Mode."""

from monitor.notify.slack.actions import (
    BlockActionHandler,
    ClickOutcome,
    SlackActionListener,
    handle_block_action,
)
from monitor.notify.slack.client import RetryPolicy, make_client
from monitor.notify.slack.directory import SlackDirectory
from monitor.notify.slack.notifier import EVENT_TYPE, SlackNotifier, SlackRef

__all__ = [
    "EVENT_TYPE",
    "BlockActionHandler",
    "ClickOutcome",
    "RetryPolicy",
    "SlackActionListener",
    "SlackDirectory",
    "SlackNotifier",
    "SlackRef",
    "handle_block_action",
    "make_client",
]
