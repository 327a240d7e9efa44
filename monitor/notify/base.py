"""The notifier interface and the delivery loop over the outbox.

Like Alertmanager's ``Notifier``, a failure says whether retrying can help. But
nothing is ever given up: a notification is recorded as delivered only when the
receiver accepted it.

* a rate limit or an outage (``recoverable``) leaves it pending and ends the
  pass (later messages wait for it, so order is kept), backing off (``outage_backoff``:
  5 s doubling up to a minute) so that a long outage costs a few calls a minute; a ``Retry-After`` is
  honoured, up to ``RETRY_AFTER_CAP``, by *deferring* it in the outbox rather
  than sleeping: the rest of the worker keeps running;
* a refusal (bad token, missing channel, app not invited: ``recoverable=False``)
  *blocks* it: kept with the error for ``monitor outbox`` and ``/healthz``,
  tried again every ``BLOCKED_RETRY``, at every start and when escalation.yaml
  is reloaded, and the incident's later messages wait behind it, except its
  later level calls: the next level is still called;
* a notification overtaken while it waited is *superseded*, not sent
  (``monitor.notify.catchup``);
* several workers may run this loop on one outbox: each notification is claimed
  (``outbox.claim``) before it is sent, so one of them sends it; one claimed by
  another worker holds its incident's later messages back until it is through.
  Claims are fenced (``Fence``): renewed right before each post, and checked by
  token in the statement that records the outcome.
"""

from __future__ import annotations

import logging
import time
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
OUTAGE_BACKOFF = timedelta(seconds=5)  # after the first failed try of a notification; doubles per try...
OUTAGE_BACKOFF_CAP = timedelta(seconds=60)  # ...up to this: a long outage costs a few calls a minute, and a
# Slack that is back is used within a minute


def outage_backoff(tries: int) -> timedelta:
    """How long the outbox waits after the ``tries``-th failed try of a notification (Slack down or failing)."""
    return min(OUTAGE_BACKOFF * float(2 ** max(0, tries - 1)), OUTAGE_BACKOFF_CAP)


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


class ClaimLost(Exception):
    """This worker's claim on a notification was taken over (it was frozen, or cut off, past its claim):
    it must neither post nor record anything more about it; the worker that has it now delivers it."""


class Fence:
    """The sender's claim on one notification, checked right before each post.

    ``before_post`` renews the claim in the store if its token is still the current
    one, else raises ``ClaimLost``; it returns True when the claim had lapsed since
    the last check (the worker was frozen or slow): the caller then looks in Slack
    before posting, whoever may have posted meanwhile. Time is checked two ways:
    the injectable clock (what the store compares) and the monotonic clock (a
    frozen process's pause is seen even when a fake clock stands still).
    """

    def __init__(self, engine: Engine, notification_id: int, held: outbox.Claimed, ttl: timedelta,
                 now: Callable[[], datetime], *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.notification_id = notification_id
        self.held = held
        self.ttl = ttl
        self.now = now
        self.monotonic = monotonic
        self._until = now() + ttl
        self._renewed = monotonic()
        self.lapsed = False  # ever, during this try

    def _expired(self) -> bool:
        return self.now() >= self._until or self.monotonic() - self._renewed >= self.ttl.total_seconds()

    def before_post(self) -> bool:
        """Renew the claim; True when it had lapsed since the last check (look before posting)."""
        lapsed = self._expired()
        while True:
            started, now = self.monotonic(), self.now()
            with transaction(self.engine) as conn:
                if not outbox.renew(conn, self.notification_id, self.held, now, self.ttl):
                    raise ClaimLost(f"notification {self.notification_id}: claim taken over by another worker")
            self._until, self._renewed = now + self.ttl, started
            # Frozen between the renewal and here: renew again, so that the post follows a fresh claim.
            if self.monotonic() - started < self.ttl.total_seconds() / 2:
                break
            lapsed = True
        self.lapsed = self.lapsed or lapsed
        return lapsed


@runtime_checkable
class Fenced(Protocol):
    """A notifier that checks the sender's claim (``Fence``) right before each post it makes."""

    def send_fenced(self, notification: Notification, fence: Fence) -> str | None: ...


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
                    on_sent: Callable[[Notification], None] | None = None, claimant: str | None = None,
                    claim_ttl: timedelta = outbox.CLAIM_TTL, clock: Callable[[], datetime] | None = None) -> int:
    """Send queued notifications in order; returns how many were sent (by any path).

    Each one is marked sent in its own transaction right after sending, so a
    crash can at worst leave the last one unmarked (the Slack notifier checks
    for an existing message before re-sending; the console has no such risk
    worth the cost). ``on_sent`` hears of each delivered one, after it is marked
    sent (metrics count them there). ``limit``: how many are sent at most.
    ``claimant``: who claims them (the worker's id; default host:pid).
    ``claim_ttl``: how long a claim lasts unrenewed (the worker's lease: a worker
    frozen that long loses it to another); ``clock``: the current time for each claim
    (default ``now``, the pass's time).

    Every write after the claim is fenced by the claim's token: a worker that lost
    its claim while frozen records nothing, and the worker that took it over
    delivers it (looking in Slack first).
    """
    claimant = claimant or outbox.this_process()
    current = clock or (lambda: now)
    with transaction(engine) as conn:
        queued = outbox.undelivered(conn, SCAN_LIMIT)
    via = via_of(notifier)
    observer = notifier if isinstance(notifier, DeliveryObserver) else None
    # Incidents whose earlier message is being sent by another worker (everything of theirs waits for it), or
    # is blocked (their later messages wait too, except level calls: a wrong channel for level 1 must not
    # keep level 2 from being called).
    held: set[int] = set()
    blocked: set[int] = set()
    sent = 0
    for q in queued:
        n = q.notification
        if n.incident_id in held or sent >= limit:
            continue
        if n.incident_id in blocked and n.kind not in catchup.LEVEL_CALLS:
            continue
        if q.next_attempt_at is not None and q.next_attempt_at > now:
            if q.status == outbox.BLOCKED:
                blocked.add(n.incident_id)
                continue
            break  # the receiver asked us to wait (Retry-After): nothing goes before this one
        reason: str | None = None
        claimed_at = current()
        with transaction(engine) as conn:
            claim = outbox.claim(conn, n.id, claimant, claimed_at, ttl=claim_ttl)
            if claim is not None:
                n = replace(n, attempts=claim.attempts)  # as of now: a worker that died may have tried it since
                reason = catchup.overtaken(conn, n)
                if reason is not None:
                    outbox.mark_superseded(conn, n.id, reason, held=claim)
                    catchup.log_never_delivered(conn, n, now, f"superseded: {reason}",
                                                emailed=q.email_sent_at is not None)
                else:
                    n = catchup.present(conn, n)
                    outbox.mark_attempt(conn, n.id, held=claim)
        if claim is None:  # another worker is sending it (or just has): its incident's later ones wait for it
            held.add(n.incident_id)
            continue
        if reason is not None:
            log.info("notification %d (%s) of incident %d not sent: %s", n.id, n.kind, n.incident_id, reason)
            continue
        try:
            if isinstance(notifier, Fenced):
                ref = notifier.send_fenced(n, Fence(engine, n.id, claim, claim_ttl, current))
            else:
                ref = notifier.send(n)
        except ClaimLost as exc:
            held.add(n.incident_id)
            log.warning("%s while this worker was frozen or slow; it is left to that worker", exc)
            continue
        except DeliveryError as exc:
            if observer is not None:
                observer.failed(n, exc)
            if exc.recoverable:
                until = now + (min(timedelta(seconds=exc.retry_after), RETRY_AFTER_CAP) if exc.retry_after
                               else outage_backoff(claim.attempts + 1))
                with transaction(engine) as conn:
                    outbox.defer(conn, n.id, str(exc), until, held=claim)
                log.warning("notification %d (%s) not delivered, will retry%s: %s", n.id, n.kind,
                            f" after {until:%H:%M:%S} UTC (asked to wait)" if until else "", exc)
                break  # keep order: later messages wait for this one
            with transaction(engine) as conn:
                outbox.mark_blocked(conn, n.id, str(exc), now, now + BLOCKED_RETRY, held=claim)
            blocked.add(n.incident_id)
            log.error("notification %d (%s) of incident %d BLOCKED, kept and retried every %d min: %s.%s", n.id,
                      n.kind, n.incident_id, BLOCKED_RETRY.seconds // 60, exc,
                      f" To fix: {exc.advice}" if exc.advice else "")
            continue
        with transaction(engine) as conn:
            recorded = outbox.mark_sent(conn, n.id, now, ref, via=via, held=claim)
            if recorded:
                catchup.log_delivered(conn, n, now, via)
        if not recorded:
            # Frozen past the claim after posting: the worker that took it over finds this post by its
            # metadata and records it; nothing is recorded twice.
            held.add(n.incident_id)
            log.warning("notification %d (%s): delivered, but the claim was taken over meanwhile; the worker "
                        "that has it now records it", n.id, n.kind)
            continue
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
