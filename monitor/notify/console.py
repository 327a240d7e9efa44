"""Alerts on the terminal: the notifier when Slack is not configured (and for the demo)."""

from __future__ import annotations

from typing import TextIO

from monitor.models import Notification
from monitor.notify.render import lines, reader


class ConsoleNotifier:
    """``locale``: print every alert in this language (``monitor demo --locale nl_BE``), else the team's."""

    def __init__(self, stream: TextIO, locale: str | None = None) -> None:
        self.stream = stream
        self.locale = locale
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> str | None:
        body = lines(notification.kind, notification.payload, self.locale)
        posts = notification.payload.new_mentions or notification.payload.top_mentions
        if posts:  # the console's way to give feedback on a post: the command that records it
            ids = ", ".join(f"#{m.id}" for m in posts[:3])
            t = reader(notification.payload, self.locale)
            body.append(t._("Wrong about a post ({ids})? {command}", ids=ids, command="monitor label --by YOU "
                            "--id N --as not_negative|wrong_language|not_about_us|negative"))
        print("\n".join([body[0], *("  " + line for line in body[1:])]), file=self.stream, flush=True)
        print(file=self.stream, flush=True)
        self.sent.append(notification)
        return None
