"""The Slack Web API client: retries for what retrying can fix, and what a failure means.

Retries live in the SDK's retry handlers (one place, one policy) with three
twists, each for a reason:

* a 429 waits exactly as long as ``Retry-After`` says (the SDK adds up to a
  second of jitter and cannot be told to wait less in tests) only when that is
  at most ``max_rate_limit_wait`` (2 s): longer, and the call gives up at once and
  the outbox defers the notification until then. The alerting thread (escalation
  ticks, the configuration reload) never sleeps through a ``Retry-After: 25``;
* a 5xx or a dropped connection is retried here only for calls that are safe to
  repeat. ``chat.postMessage`` is not: Slack may have posted before the error, so
  the notifier retries it itself, looking for the message first;
* every failure that escapes becomes a ``DeliveryError`` whose ``recoverable``
  flag tells the outbox whether another pass can help.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException, RemoteDisconnected
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry import (
    BackoffRetryIntervalCalculator,
    ConnectionErrorRetryHandler,
    HttpRequest,
    HttpResponse,
    Jitter,
    RateLimitErrorRetryHandler,
    RetryHandler,
    RetryState,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

from monitor.notify.base import DeliveryError
from monitor.redact import protect_logger

protect_logger("slack_sdk.web.base_client")  # logs response bodies at DEBUG, which may echo the token

SLACK_API_URL = "https://slack.com/api/"
# Methods that create something each time they are called: never repeated blindly.
NOT_IDEMPOTENT = ("chat.postMessage",)
# Slack's answers that say "try again later" rather than "this will never work".
TRANSIENT_ERRORS = frozenset({
    "ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
    "team_not_ready", "timeout",
})
APP = "the monitor's Slack app"
# What a person must do about each refusal that only a person can fix: logged, shown on /healthz and by
# `monitor outbox` / `monitor check --slack`.
ADVICE: dict[str, str] = {
    "not_authed": "set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-...) and restart",
    "invalid_auth": "SLACK_BOT_TOKEN is not accepted by this workspace: copy the Bot User OAuth Token (xoxb-...) "
                    "from the app's 'OAuth & Permissions' page and restart",
    "token_revoked": "the bot token was revoked (app removed?): reinstall the app and set its new xoxb- token",
    "token_expired": "the bot token expired: reinstall the app (or turn off token rotation) and set the new token",
    "account_inactive": "the app's bot user was deactivated: reinstall the app and set its new xoxb- token",
    "not_allowed_token_type": "SLACK_BOT_TOKEN must be a bot token (xoxb-...), not a user (xoxp-) or app (xapp-) "
                              "token",
    "missing_scope": "add the missing scope to the Slack app (see slack-app-manifest.yaml) and reinstall it",
    "channel_not_found": "check the channel in escalation.yaml (or MONITOR_SLACK_CHANNEL); for a private "
                         f"channel, invite {APP} there first (/invite)",
    "not_in_channel": f"invite {APP} to the channel: type /invite @<app name> in it",
    "is_archived": "the channel is archived: unarchive it, or name another channel in escalation.yaml",
    "restricted_action": "a workspace admin restricts posting in that channel: allow the app, or pick another",
    "team_access_not_granted": "the token's workspace is not this one: use the token of this workspace's app",
    "user_not_found": "a responder's 'slack:' id in escalation.yaml is not a user of this workspace",
}


def _is_idempotent(request: HttpRequest) -> bool:
    path = request.url.split("?", 1)[0].rstrip("/")
    return not path.endswith(NOT_IDEMPOTENT)


class ProportionalJitter(Jitter):
    """Spread retries by up to +50 %; the SDK's default adds a whole second, too much for small waits."""

    def recalculate(self, duration: float) -> float:
        return duration * (1.0 + random.random() / 2)


class RetryAfterHandler(RateLimitErrorRetryHandler):
    """A 429: wait what ``Retry-After`` asks (capped), then repeat the same request.

    A request answered 429 was not processed, so repeating it is safe for every method.
    """

    def __init__(self, max_retry_count: int, *, max_wait: float, sleep: Callable[[float], None]) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait
        self.sleep = sleep

    @staticmethod
    def retry_after(response: HttpResponse | None) -> float:
        if response is None:
            return 1.0
        for name, values in response.headers.items():
            if name.lower() == "retry-after" and values:
                try:
                    return max(0.0, float(values[0]))
                except ValueError:
                    return 1.0
        return 1.0

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        return (super()._can_retry(state=state, request=request, response=response, error=error)
                and self.retry_after(response) <= self.max_wait)

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None, error: Exception | None = None) -> None:
        state.next_attempt_requested = True
        self.sleep(self.retry_after(response))
        state.increment_current_attempt()


class ServerErrorHandler(ServerErrorRetryHandler):
    """Any 5xx (the SDK's handler knows only 500 and 503), for idempotent calls only."""

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        return (response is not None and response.status_code >= 500 and _is_idempotent(request))


class ConnectionErrorHandler(ConnectionErrorRetryHandler):
    """Dropped or timed-out connections, for idempotent calls only."""

    def __init__(self, max_retry_count: int, interval: BackoffRetryIntervalCalculator) -> None:
        super().__init__(max_retry_count=max_retry_count, interval_calculator=interval,
                         error_types=[URLError, ConnectionError, RemoteDisconnected, TimeoutError])

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        return _is_idempotent(request) and super()._can_retry(state=state, request=request, response=response,
                                                              error=error)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try within one delivery pass; the outbox retries across passes.

    Tests shrink ``backoff`` and pass a recording ``sleep`` so no test waits.
    """

    rate_limit_retries: int = 3
    # Longer waits are the outbox's (``defer``): the thread that sends also ticks escalations and reloads.
    max_rate_limit_wait: float = 2.0
    server_error_retries: int = 2
    connection_retries: int = 2
    backoff: float = 0.5  # seconds before the first retry; doubles each time
    timeout: int = 15
    sleep: Callable[[float], None] = time.sleep

    def handlers(self) -> list[RetryHandler]:
        interval = BackoffRetryIntervalCalculator(backoff_factor=self.backoff, jitter=ProportionalJitter())
        return [
            RetryAfterHandler(self.rate_limit_retries, max_wait=self.max_rate_limit_wait, sleep=self.sleep),
            ServerErrorHandler(max_retry_count=self.server_error_retries, interval_calculator=interval),
            ConnectionErrorHandler(self.connection_retries, interval),
        ]

    def backoff_for(self, attempt: int) -> float:
        """Wait before our own retry number ``attempt`` (0-based) of a non-idempotent call."""
        return float(self.backoff * 2**attempt)


def make_client(token: str, *, base_url: str | None = None, retry: RetryPolicy | None = None) -> WebClient:
    """A ``WebClient`` with our retry policy; ``base_url`` points tests at a local emulator.

    The token goes into the client and nowhere else: it is never logged (the SDK
    redacts the Authorization header in its own debug logs).
    """
    policy = retry or RetryPolicy()
    return WebClient(token=token, base_url=base_url or SLACK_API_URL, timeout=policy.timeout,
                     retry_handlers=policy.handlers())


def error_code(exc: BaseException) -> str | None:
    """Slack's error string (``channel_not_found``, ``ratelimited``...) if the API answered."""
    if isinstance(exc, SlackApiError):
        data: Any = exc.response.data if exc.response is not None else None
        if isinstance(data, dict):
            code = data.get("error")
            return str(code) if code else None
    return None


def is_ambiguous(exc: BaseException) -> bool:
    """Slack may have carried out the call although we got no answer (5xx, dropped connection)."""
    if isinstance(exc, SlackApiError):
        return exc.response is not None and exc.response.status_code >= 500
    return isinstance(exc, (OSError, HTTPException))


def delivery_error(exc: BaseException, what: str) -> DeliveryError:
    """Translate a client failure into the outbox's terms: retry later, or give up.

    Transport trouble (rate limits left over after our retries, 5xx, timeouts,
    refused connections) is recoverable. An answer from Slack that refuses the
    call (``invalid_auth``, ``channel_not_found``, ``invalid_blocks``...) will be
    refused again, so retrying it would only hold up the alerts queued behind it.
    """
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code if exc.response is not None else 0
        code = error_code(exc)
        if (code is None and 200 <= status < 300) or (code or "").startswith("Received a response in a non-JSON"):
            # An answer that is not Slack's JSON (a proxy's page, a truncated body): Slack did not refuse
            # anything, something in between failed. Try again later.
            return DeliveryError(f"{what}: Slack's answer was not JSON (HTTP {status})", recoverable=True)
        code = code or f"HTTP {status}"
        recoverable = status == 429 or status >= 500 or code in TRANSIENT_ERRORS
        wait = RetryAfterHandler.retry_after(_http_response(exc)) if status == 429 else None
        return DeliveryError(f"{what}: Slack answered {code}", recoverable=recoverable, retry_after=wait,
                             advice=ADVICE.get(code))
    if isinstance(exc, (OSError, HTTPException)):
        return DeliveryError(f"{what}: {type(exc).__name__}: {exc}", recoverable=True)
    if isinstance(exc, SlackRequestError):
        return DeliveryError(f"{what}: {exc}", recoverable=False)
    return DeliveryError(f"{what}: {type(exc).__name__}: {exc}", recoverable=False)


def _http_response(exc: SlackApiError) -> HttpResponse | None:
    """The SDK's response as the retry handlers see it (for its ``Retry-After``)."""
    response = exc.response
    if response is None:
        return None
    headers: dict[str, str | list[str]] = {
        str(name): [str(v) for v in value] if isinstance(value, list) else [str(value)]
        for name, value in response.headers.items()}
    return HttpResponse(status_code=response.status_code, headers=headers, data=None, body={})


CLIENT_ERRORS: tuple[type[BaseException], ...] = (SlackApiError, SlackRequestError, OSError, HTTPException)
