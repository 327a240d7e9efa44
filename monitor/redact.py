"""Remove credentials from text before it is logged or stored.

API clients put the request in their error messages and debug logs (tweepy
logs the ``Authorization`` header at DEBUG; an exception may repr a request).
Everything a source logs or writes to ``source_health.last_error`` goes
through ``redact`` first, and the loggers of those clients get
``RedactingFilter``, so a token never reaches a log file or the database.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

MASK = "***"

_PATTERNS = [
    # Authorization: Bearer xyz / 'Authorization': 'Basic xyz' / authorization=...
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:(?:bearer|basic)\s+)?[^\s'\",}]+"),
    re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9%._~+/=-]{8,}"),
    re.compile(r"(?i)\b(basic\s+)[A-Za-z0-9+/=]{8,}"),
    # token=..., access_token": "...", client_secret=..., password=...
    re.compile(r"(?i)(\b(?:access_token|refresh_token|bearer_token|client_secret|password|api_key|token)"
               r"['\"]?\s*[:=]\s*['\"]?)[^\s'\"&,}]+"),
    # Tokens that say what they are wherever they stand (an echoed body, a pasted config): Slack's
    # xoxb-/xoxp-/xapp- tokens and X's app-only bearer tokens (a run of 'A's, then the key).
    re.compile(r"()\b(?:xox[abposr]|xapp)-[A-Za-z0-9-]{6,}"),
    re.compile(r"()\bA{16,}[A-Za-z0-9%._~+/=-]{16,}"),
]

# Environment variables whose values are secrets wherever they appear: Slack's here, each platform's
# declared by its module (``Platform.env``, ``library_secrets``) and listed by ``secret_env()``.
SECRET_ENV = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")


def secret_env() -> list[str]:
    """Every variable whose value ``redact`` masks: Slack's and each registered platform's."""
    from monitor.sources import registry  # the registry imports no client library; no cycle at import time

    return [*SECRET_ENV, *registry.secret_env_names()]


# Secret values loaded from elsewhere than the environment (a ``.env`` file is read by pydantic-settings
# without being exported): ``Settings`` registers its ``SecretStr`` values here when it is built.
_REGISTERED: set[str] = set()


def remember_secret(value: str | None) -> None:
    """Mask ``value`` wherever ``redact`` runs from now on, even where no pattern recognises it.

    Needed because an API may echo a token without the ``Bearer``/``token=`` words the
    patterns look for, and a token read from ``.env`` is not in ``os.environ``.
    """
    if value and len(value) >= 6:
        _REGISTERED.add(value)


def _known_secrets(extra: Iterable[str]) -> list[str]:
    values = [os.environ.get(name, "") for name in secret_env()]
    values.extend(_REGISTERED)
    values.extend(extra)
    return sorted({v for v in values if v and len(v) >= 6}, key=len, reverse=True)


def redact(text: str, *, secrets: Iterable[str] = (), limit: int | None = None, keep_lines: bool = False) -> str:
    """``text`` with tokens masked, on one line, cut to ``limit`` characters.

    ``keep_lines`` keeps the line breaks (a traceback in a text log stays readable).
    """
    out = text
    for secret in _known_secrets(secrets):
        out = out.replace(secret, MASK)
    for pattern in _PATTERNS:
        out = pattern.sub(lambda m: m.group(1) + MASK, out)
    if not keep_lines:
        out = " ".join(out.split())
    if limit is not None and len(out) > limit:
        out = out[: max(0, limit - 1)] + "…"
    return out


def describe(exc: BaseException, *, limit: int = 300) -> str:
    """``Type: message`` of an exception, redacted, for one log line or a status column."""
    message = str(exc) or repr(exc)
    return redact(f"{type(exc).__name__}: {message}", limit=limit)


class RedactingFilter(logging.Filter):
    """Rewrites records of a third-party logger so they carry no credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the library's problem, not a reason to leak
            return True
        cleaned = redact(message)
        if cleaned != " ".join(message.split()):
            record.msg, record.args = cleaned, None
        return True


def protect_logger(name: str) -> None:
    """Attach ``RedactingFilter`` once to the named logger."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
