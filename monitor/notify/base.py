"""The notifier interface and the delivery loop over the outbox.

Like Alertmanager's ``Notifier``, a failure says whether retrying can help. But
nothing is ever given up: a notification is recorded as delivered only when the
receiver accepted it.

* a rate limit or an outage (``recoverable``) leaves it pending and ends the
  pass (later messages wait for it, so order is kept); a ``Retry-After`` is
  honoured, up to ``RETRY_AFTER_CAP``, by *deferring* it in the outbox rather
  than sleeping: the rest of the worker keeps running;
* a refusal (bad token, missing channel, app not invited: ``recoverable=False``)
  *blocks* it: kept with the error for ``monitor outbox`` and ``/healthz``,
  tried again every ``BLOCKED_RETRY`` and at every start, and the incident's
  later messages wait behind it;
* a notification overtaken while it waited is *superseded*, not sent
  (``monitor.notify.catchup``);
* several workers may run this loop on one outbox: each notification is claimed
  (``outbox.claim``) before it is sent, so one of them sends it; one claimed by
  another worker holds its incident's later messages back until it is through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import Engine

from monitor.models import Notification
from monitor.notify import catchup
from monitor.redact import redact
from monitor.store import outbox, transaction

log = logging.getLogger(__name__)
RETRY_AFTER_CAP = timedelta(minutes=15)  # a receiver asking for longer is asked again after this
BLOCKED_RETRY = timedelta(minutes=15)  # a refused notification is tried again this often (and at each start)
SCAN_LIMIT = 1000  # rows looked at per pass: blocked ones waiting for their retry cost nothing


class DeliveryError(Exception):
    """A failed delivery; ``recoverable`` says whether a later pass can help.

    ``retry_after``: seconds the receiver asked us to wait (a 429's ``Retry-After``).
    ``advice``: what a person should do about a refusal, for the log and ``/healthz``.
    The message is redacted here, once for every receiver: it is logged and stored in
    ``outbox.last_error``, and a receiver's error text may echo the request's token.
    """

    def __init__(self, message: str, *, recoverable: bool, retry_after: float | None = None,
                 advice: str | None = None) -> None:
        super().__init__(redact(message, limit=1000))
        self.recoverable = recoverable
        self.retry_after = retry_after
        self.advice = advice


class Notifier(Protocol):
    def send(self, notification: Notification) -> str | None:
        """Deliver; return an external reference (e.g. a Slack ts) or None. Raise DeliveryError."""
        ...


@runtime_checkable
class WithFallback(Protocol):
    """A notifier with a second path (e-mail) for what the first could not deliver in time."""

    def fallback_pass(self, engine: Engine, now: datetime) -> int:
        """Send what is overdue by the second path; returns how many went out."""
        ...


@runtime_checkable
class DeliveryObserver(Protocol):
    """A notifier that wants to hear how each delivery attempt ended (``monitor.notify.status``)."""

    def delivered(self, notification: Notification) -> None: ...

    def failed(self, notification: Notification, error: DeliveryError) -> None: ...


def via_of(notifier: object) -> str:
    """How a notifier delivers, for the outbox and the timeline: ``slack``, ``console``, ``email``."""
    via = getattr(notifier, "via", None)
    return via if isinstance(via, str) else type(notifier).__name__.removesuffix("Notifier").lower()


def deliver_pending(engine: Engine, notifier: Notifier, now: datetime, limit: int = 100,
                    on_sent: Callable[[Notification], None] | None = None, claimant: str | None = None) -> int:
    """Send queued notifications in order; returns how many were sent (by any path).

    Each one is marked sent in its own transaction right after sending, so a
    crash can at worst leave the last one unmarked (the Slack notifier checks
    for an existing message before re-sending; the console has no such risk
    worth the cost). ``on_sent`` hears of each delivered one, after it is marked
    sent (metrics count them there). ``limit``: how many are sent at most.
    ``claimant``: who claims them (the worker's id; default host:pid).
    """
    claimant = claimant or outbox.this_process()
    with transaction(engine) as conn:
        queued = outbox.undelivered(conn, SCAN_LIMIT)
    via = via_of(notifier)
    observer = notifier if isinstance(notifier, DeliveryObserver) else None
    held: set[int] = set()  # incidents whose earlier message is blocked: their later ones wait behind it
    sent = 0
    for q in queued:
        n = q.notification
        if n.incident_id in held or sent >= limit:
            continue
        if q.next_attempt_at is not None and q.next_attempt_at > now:
            if q.status == outbox.BLOCKED:
                held.add(n.incident_id)
                continue
            break  # the receiver asked us to wait (Retry-After): nothing goes before this one
        reason: str | None = None
        with transaction(engine) as conn:
            attempts = outbox.claim(conn, n.id, claimant, now)
            if attempts is not None:
                n = replace(n, attempts=attempts)  # as of now: a worker that died may have tried it since the scan
                reason = catchup.overtaken(conn, n)
                if reason is not None:
                    outbox.mark_superseded(conn, n.id, reason)
                    catchup.log_never_delivered(conn, n, now, f"superseded: {reason}",
                                                emailed=q.email_sent_at is not None)
                else:
                    n = catchup.present(conn, n)
                    outbox.mark_attempt(conn, n.id)
        if attempts is None:  # another worker is sending it (or just has): its incident's later ones wait for it
            held.add(n.incident_id)
            continue
        if reason is not None:
            log.info("notification %d (%s) of incident %d not sent: %s", n.id, n.kind, n.incident_id, reason)
            continue
        try:
            ref = notifier.send(n)
        except DeliveryError as exc:
            if observer is not None:
                observer.failed(n, exc)
            if exc.recoverable:
                until = now + min(timedelta(seconds=exc.retry_after), RETRY_AFTER_CAP) if exc.retry_after else None
                with transaction(engine) as conn:
                    outbox.defer(conn, n.id, str(exc), until)
                log.warning("notification %d (%s) not delivered, will retry%s: %s", n.id, n.kind,
                            f" after {until:%H:%M:%S} UTC (asked to wait)" if until else "", exc)
                break  # keep order: later messages wait for this one
            with transaction(engine) as conn:
                outbox.mark_blocked(conn, n.id, str(exc), now, now + BLOCKED_RETRY)
            held.add(n.incident_id)
            log.error("notification %d (%s) of incident %d BLOCKED, kept and retried every %d min: %s.%s", n.id,
                      n.kind, n.incident_id, BLOCKED_RETRY.seconds // 60, exc,
                      f" To fix: {exc.advice}" if exc.advice else "")
            continue
        with transaction(engine) as conn:
            outbox.mark_sent(conn, n.id, now, ref, via=via)
            catchup.log_delivered(conn, n, now, via)
        if q.status == outbox.BLOCKED:
            log.info("notification %d (%s) was blocked since %s and is now delivered", n.id, n.kind,
                     q.blocked_since)
        if observer is not None:
            observer.delivered(n)
        sent += 1
        if on_sent is not None:
            on_sent(n)
    if isinstance(notifier, WithFallback):
        sent += notifier.fallback_pass(engine, now)
    return sent
