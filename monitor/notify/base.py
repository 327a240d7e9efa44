"""The notifier interface and the delivery loop over the outbox.

Like Alertmanager's ``Notifier``, a failure says whether retrying can help:
a rate limit or an outage is retried on the next pass, a rejected message
(bad channel, unknown user) is recorded and not retried forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine

from monitor.models import Notification
from monitor.redact import redact
from monitor.store import outbox, transaction

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A failed delivery; ``recoverable`` says whether a later pass can help.

    The message is redacted here, once for every receiver: it is logged and stored in
    ``outbox.last_error``, and a receiver's error text may echo the request's token.
    """

    def __init__(self, message: str, *, recoverable: bool) -> None:
        super().__init__(redact(message, limit=1000))
        self.recoverable = recoverable


class Notifier(Protocol):
    def send(self, notification: Notification) -> str | None:
        """Deliver; return an external reference (e.g. a Slack ts) or None. Raise DeliveryError."""
        ...



def deliver_pending(engine: Engine, notifier: Notifier, now: datetime, limit: int = 100,
                    on_sent: Callable[[Notification], None] | None = None) -> int:
    """Send queued notifications in order; returns how many were sent.

    Each one is marked sent in its own transaction right after sending, so a
    crash can at worst leave the last one unmarked (the Slack notifier checks
    for an existing message before re-sending; the console has no such risk
    worth the cost). ``on_sent`` hears of each delivered one, after it is marked
    sent (metrics count them there).
    """
    with transaction(engine) as conn:
        queued = outbox.pending(conn, limit)
    sent = 0
    for n in queued:
        with transaction(engine) as conn:
            outbox.mark_attempt(conn, n.id)
        try:
            ref = notifier.send(n)
        except DeliveryError as exc:
            with transaction(engine) as conn:
                outbox.mark_failed(conn, n.id, str(exc))
            if exc.recoverable:
                log.warning("notification %d (%s) not delivered, will retry: %s", n.id, n.kind, exc)
                break  # keep order: later messages wait for this one
            log.error("notification %d (%s) rejected, giving up: %s", n.id, n.kind, exc)
            with transaction(engine) as conn:
                outbox.mark_sent(conn, n.id, now, external_ref=f"failed: {exc}"[:250])
            continue
        with transaction(engine) as conn:
            outbox.mark_sent(conn, n.id, now, ref)
        sent += 1
        if on_sent is not None:
            on_sent(n)
    return sent
