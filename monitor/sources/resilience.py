"""What every live source shares: bounded retries, rate-limit deferral, HTTP timeouts.

A source runs in its own scheduler job, but a job that sleeps for minutes
still holds its thread and delays its own next run, so waits are bounded:
transient failures (5xx, timeouts, dropped connections) are retried a few
times with short exponential backoff and jitter (tenacity); a rate limit is
waited out only when its reset is near, otherwise the poll ends and the source
reports "deferred until <reset>" so the poller skips it without a request
until then. ``sleep`` and the clock are injected, so tests never wait.

Every request is bounded in time and size, not only per read: ``requests``'
``timeout`` limits each wait for a packet, so a server dripping one byte every
few seconds held a poll thread for minutes. ``TimeoutSession`` reads the body
itself, one socket read at a time, and gives up when the whole answer has
taken longer than the timeout (``DeadlineExceeded``) or grown past
``http.max_body`` (``BodyTooLarge``); neither is retried, since an immediate
retry of a server that slow or that large only doubles the wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
import requests
import urllib3
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random

from monitor.redact import describe
from monitor.sources.schema import HttpConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

Sleep = Callable[[float], None]
DEFAULT_MAX_BODY = 5_000_000  # bytes; http.max_body in monitor.yaml
_READ = 64 * 1024


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries for transient failures; ``sleep`` is injectable so tests run instantly."""

    attempts: int = 3
    initial: float = 2.0  # seconds before the second try; doubles, plus jitter
    maximum: float = 30.0
    jitter: float = 1.0
    rate_limit_max_wait: float = 60.0  # wait out a rate limit resetting at most this many seconds ahead
    sleep: Sleep = field(default=time.sleep, compare=False)
    max_body: int = DEFAULT_MAX_BODY  # largest answer read, in bytes: the sessions sources build take it from here

    @classmethod
    def from_config(cls, http: HttpConfig, *, sleep: Sleep = time.sleep) -> RetryPolicy:
        backoff = http.backoff.total_seconds()
        return cls(attempts=http.attempts, initial=backoff, maximum=max(backoff, 30.0), jitter=min(1.0, backoff),
                   rate_limit_max_wait=http.rate_limit_max_wait.total_seconds(), sleep=sleep,
                   max_body=http.max_body)

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
    """The API said 429 (or that no requests are left); ``reset_at`` is when it will accept requests again."""

    def __init__(self, what: str, reset_at: datetime | None, why: str = "HTTP 429") -> None:
        self.reset_at = reset_at
        when = f" until {reset_at:%Y-%m-%d %H:%M:%S} UTC" if reset_at else ""
        super().__init__(f"{what}: rate limited ({why}){when}")


class DeadlineExceeded(requests.exceptions.Timeout):
    """The whole answer took longer than the timeout (a slow or dripping server); not retried."""


class BodyTooLarge(requests.exceptions.RequestException):
    """The answer is larger than ``http.max_body``; not retried (it will be as large next time)."""


def size_text(size: int) -> str:
    """5000000 -> '5 MB', 1500 -> '1.5 kB', 900 -> '900 bytes' (decimal units, as ``http.max_body`` is written)."""
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} bytes"


def read_bounded(response: requests.Response, *, started: float, timeout: float, max_body: int,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
    """Read a streamed ``response``'s body into ``response.content`` within the deadline and the size cap.

    ``read1`` returns after one socket read (each bounded by the read timeout),
    so the deadline is checked between reads however slowly the bytes come:
    the whole request ends within about ``timeout`` plus one read's wait.
    """
    url = response.url
    try:
        body = gather_bounded(lambda: response.raw.read1(_READ, decode_content=True), url=url,
                              declared=response.headers.get("content-length", ""), started=started, timeout=timeout,
                              max_body=max_body, monotonic=monotonic, response=response)
    except requests.exceptions.RequestException:  # ours (an OSError too, so before the OSError below)
        response.close()  # drop the connection: the rest of that answer must not be read by the next request
        raise
    except urllib3.exceptions.ReadTimeoutError as exc:
        response.close()
        raise requests.exceptions.ReadTimeout(f"{url}: {exc}", response=response) from None
    except urllib3.exceptions.DecodeError as exc:
        response.close()
        raise requests.exceptions.ContentDecodingError(f"{url}: {exc}", response=response) from None
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.SSLError, OSError) as exc:
        response.close()
        raise requests.exceptions.ChunkedEncodingError(f"{url}: {exc}", response=response) from None
    response._content = body
    response._content_consumed = True
    response.raw.release_conn()


def gather_bounded(read: Callable[[], bytes], *, url: Any, declared: str, started: float, timeout: float,
                   max_body: int, monotonic: Callable[[], float] = time.monotonic,
                   response: requests.Response | None = None) -> bytes:
    """The whole answer from ``read`` (one chunk per call, b"" at the end) within the deadline and the size cap.

    The one loop behind every client's bound: ``read_bounded`` (requests) and
    ``BoundedTransport`` (httpx) only differ in how a chunk is read.
    """
    too_large = f"{url}: answer larger than {size_text(max_body)}; raise http.max_body or fix the feed"
    if declared.isdigit() and int(declared) > max_body:
        raise BodyTooLarge(too_large, response=response)
    chunks: list[bytes] = []
    size = 0
    while True:
        if monotonic() - started > timeout:
            raise DeadlineExceeded(f"{url}: answer not complete after {timeout:g} s (http.timeout bounds the "
                                   f"whole request); the server is too slow or drips its answer", response=response)
        chunk = read()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_body:
            raise BodyTooLarge(too_large, response=response)
        chunks.append(chunk)


class BoundedTransport(httpx.BaseTransport):
    """httpx's transport with ``TimeoutSession``'s bounds: the whole answer within ``timeout``, at most
    ``max_body`` bytes (as sent, before decompression).

    For clients built on httpx (atproto): httpx's own timeout bounds each read
    only. ``DeadlineExceeded`` and ``BodyTooLarge`` pass through the client
    library unchanged, and are not retried.
    """

    def __init__(self, timeout: float, *, max_body: int = DEFAULT_MAX_BODY,
                 monotonic: Callable[[], float] = time.monotonic, inner: httpx.BaseTransport | None = None) -> None:
        self.timeout = timeout
        self.max_body = max_body
        self.monotonic = monotonic
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = self.monotonic()
        response = self.inner.handle_request(request)
        stream = response.stream
        if not isinstance(stream, httpx.SyncByteStream):
            response.close()
            raise TypeError("BoundedTransport needs a synchronous transport")
        chunks = iter(stream)
        try:
            body = gather_bounded(lambda: next(chunks, b""), url=request.url,
                                  declared=response.headers.get("content-length", ""), started=started,
                                  timeout=self.timeout, max_body=self.max_body, monotonic=self.monotonic)
        finally:
            response.close()
        return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(body),
                              extensions=response.extensions, request=request)

    def close(self) -> None:
        self.inner.close()


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

    Without a reset time we assume X's and Reddit's usual 15-minute window rather than guess short. A reset
    already past (the server's clock is behind, or the header is stale) is worth one short wait, but never a
    deferral into the past: the source is then deferred for ``default``.
    """
    if reset_at is not None and reset_at <= now:
        return (1.0 if policy.rate_limit_max_wait >= 1.0 else None), now + default
    until = reset_at or now + default
    wait = max(0.0, (until - now).total_seconds()) + 1.0  # the reset second itself may still be limited
    if reset_at is not None and wait <= policy.rate_limit_max_wait:
        return wait, until
    return None, until


def transient_http(exc: BaseException) -> bool:
    """A failure worth another try: a timeout, a dropped connection, a 5xx."""
    if isinstance(exc, DeadlineExceeded | BodyTooLarge):
        return False
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ConnectionError
                  | requests.exceptions.ChunkedEncodingError):
        return True
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return isinstance(status, int) and status >= 500


class TimeoutSession(requests.Session):
    """A requests session whose every answer is complete within ``timeout`` and at most ``max_body`` bytes.

    Client libraries (tweepy, Mastodon.py, prawcore) take a session and pass
    no timeout, or only a per-read one; handing them this one bounds them all
    the same way. A caller that asks for ``stream=True`` reads the body itself
    and gets the response as it is.
    """

    def __init__(self, timeout: float, *, max_body: int = DEFAULT_MAX_BODY,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.timeout = timeout
        self.max_body = max_body
        self.monotonic = monotonic

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if kwargs.get("stream"):
            return super().request(method, url, *args, **kwargs)
        kwargs["stream"] = True
        started = self.monotonic()
        response = super().request(method, url, *args, **kwargs)
        read_bounded(response, started=started, timeout=self.timeout, max_body=self.max_body,
                     monotonic=self.monotonic)
        return response
