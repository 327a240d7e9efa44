"""What every live source shares: bounded retries, rate-limit deferral, HTTP timeouts.

A source runs in its own scheduler job, but a job that sleeps for minutes
still holds its thread and delays its own next run, so waits are bounded:
transient failures (5xx, timeouts, dropped connections) are retried a few
times with short exponential backoff and jitter (tenacity); a rate limit is
waited out only when its reset is near, otherwise the poll ends and the source
reports "deferred until <reset>" so the poller skips it without a request
until then. ``sleep`` and the clock are injected, so tests never wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random

from monitor.redact import describe
from monitor.sources.schema import HttpConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries for transient failures; ``sleep`` is injectable so tests run instantly."""

    attempts: int = 3
    initial: float = 2.0  # seconds before the second try; doubles, plus jitter
    maximum: float = 30.0
    jitter: float = 1.0
    rate_limit_max_wait: float = 60.0  # wait out a rate limit resetting at most this many seconds ahead
    sleep: Sleep = field(default=time.sleep, compare=False)

    @classmethod
    def from_config(cls, http: HttpConfig, *, sleep: Sleep = time.sleep) -> RetryPolicy:
        backoff = http.backoff.total_seconds()
        return cls(attempts=http.attempts, initial=backoff, maximum=max(backoff, 30.0), jitter=min(1.0, backoff),
                   rate_limit_max_wait=http.rate_limit_max_wait.total_seconds(), sleep=sleep)

    def call(self, fn: Callable[[], T], *, transient: Callable[[BaseException], bool], what: str) -> T:
        """Run ``fn``, retrying exceptions ``transient`` accepts; the last one is re-raised."""

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning("%s: attempt %d of %d failed (%s); retrying in %.1f s", what, state.attempt_number,
                        self.attempts, describe(exc) if exc else "?", wait)

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            # initial, 2 x initial, 4 x initial ... capped, plus up to `jitter` s so workers do not retry in step.
            wait=wait_exponential(multiplier=self.initial, max=self.maximum) + wait_random(0, self.jitter),
            retry=retry_if_exception(transient),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(fn)


class RateLimited(Exception):
    """The API said 429; ``reset_at`` is when it will accept requests again, if it said."""

    def __init__(self, what: str, reset_at: datetime | None) -> None:
        self.reset_at = reset_at
        when = f" until {reset_at:%Y-%m-%d %H:%M:%S} UTC" if reset_at else ""
        super().__init__(f"{what}: rate limited (HTTP 429){when}")


def reset_from_epoch(value: Any) -> datetime | None:
    """``x-rate-limit-reset`` (Unix seconds) as aware UTC, or None when absent or garbled."""
    try:
        return datetime.fromtimestamp(int(float(value)), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def reset_from_retry_after(value: Any, now: datetime) -> datetime | None:
    """``Retry-After`` (seconds, or an HTTP date) as aware UTC."""
    if value in (None, ""):
        return None
    try:
        return now + timedelta(seconds=max(0.0, float(value)))
    except (TypeError, ValueError):
        pass
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def wait_or_defer(policy: RetryPolicy, reset_at: datetime | None, now: datetime, *,
                  default: timedelta = timedelta(minutes=15)) -> tuple[float | None, datetime]:
    """Decide a 429: (seconds to sleep, None-if-too-long) and when the API is expected back.

    Without a reset time we assume X's and Reddit's usual 15-minute window rather than guess short.
    """
    until = reset_at or now + default
    wait = max(0.0, (until - now).total_seconds()) + 1.0  # the reset second itself may still be limited
    if reset_at is not None and wait <= policy.rate_limit_max_wait:
        return wait, until
    return None, until


def transient_http(exc: BaseException) -> bool:
    """A failure worth another try: a timeout, a dropped connection, a 5xx."""
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ConnectionError
                  | requests.exceptions.ChunkedEncodingError):
        return True
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return isinstance(status, int) and status >= 500


class TimeoutSession(requests.Session):
    """A requests session that never waits forever: tweepy passes no timeout of its own."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)
