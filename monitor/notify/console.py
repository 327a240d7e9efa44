"""Alerts on the terminal: the notifier when Slack is not configured (and for the demo)."""

from __future__ import annotations

from typing import TextIO

from monitor.models import Notification
from monitor.notify.render import lines


class ConsoleNotifier:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> str | None:
        body = lines(notification.kind, notification.payload)
        posts = notification.payload.new_mentions or notification.payload.top_mentions
        if posts:  # the console's way to give feedback on a post: the command that records it
            ids = ", ".join(f"#{m.id}" for m in posts[:3])
            body.append(f"Wrong about a post ({ids})? monitor label --by YOU --id N --as "
                        "not_negative|wrong_language|not_about_us|negative")
        print("\n".join([body[0], *("  " + line for line in body[1:])]), file=self.stream, flush=True)
        print(file=self.stream, flush=True)
        self.sent.append(notification)
        return None
