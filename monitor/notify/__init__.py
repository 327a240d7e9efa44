"""Delivery: the outbox loop and one module per receiver (console, Slack)."""

from monitor.notify.base import DeliveryError, Notifier, deliver_pending
from monitor.notify.console import ConsoleNotifier

__all__ = ["ConsoleNotifier", "DeliveryError", "Notifier", "deliver_pending"]
