"""Small pieces the social sources (Mastodon, Bluesky, YouTube, Graph API) share.

Each of them turns a platform's JSON into ``Mention`` values and keeps a JSON
cursor; these helpers keep that normalisation identical across platforms
(plain text from HTML, ids that fit the store's column, counts that are never
negative, a language tag kept only when the brand expects it).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import requests

from monitor.sources.resilience import DEFAULT_MAX_BODY, TimeoutSession

log = logging.getLogger(__name__)

MAX_ID = 128  # mentions.source_id is String(128)
_TAGS = re.compile(r"<[^>]+>")
_BREAKS = re.compile(r"(?i)<br\s*/?>|</p>\s*<p[^>]*>")


def plain_text(value: Any) -> str:
    """HTML (Mastodon's ``content``, YouTube's ``textDisplay``) as plain text; paragraphs stay apart."""
    text = _BREAKS.sub("\n", str(value or ""))
    text = html.unescape(_TAGS.sub("", text))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def fit_id(raw: str) -> str:
    """An id that fits ``mentions.source_id``: itself when short enough, else a stable hash of it."""
    raw = raw.strip()
    return raw if len(raw) <= MAX_ID else "sha1:" + hashlib.sha1(raw.encode("utf-8")).hexdigest()


def count(value: Any) -> int:
    """A non-negative integer from an API count field; anything else (missing, null, text) is 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, str) and value.isdigit():  # YouTube and the Graph API send some counts as strings
        return int(value)
    return 0


def expected_language(code: Any, languages: Collection[str]) -> str | None:
    """The platform's language tag ('nl-BE' -> 'nl') when the brand expects it; else None (our detector decides)."""
    if not isinstance(code, str) or not code:
        return None
    short = code.replace("_", "-").split("-")[0].lower()
    return short if short in languages else None


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time ('2026-11-18T09:12:00.000Z', '+0000' offsets too) as aware UTC, or None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):  # the Graph API writes +0000
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def id_key(value: str) -> tuple[int, str]:
    """Order of ids that grow with time: numeric ones by value, Pleroma-style flake ids by text."""
    return len(value), value


def newer_id(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if id_key(b) > id_key(a) else a


def load_cursor(raw: str | None, what: str) -> dict[str, Any]:
    """A JSON-object cursor, or {} (start afresh, one warning) when it is absent or unreadable."""
    if not raw:
        return {}
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        log.warning("%s: cursor %r is unreadable; starting from the newest items", what, raw[:80])
        return {}
    return obj if isinstance(obj, dict) else {}


class PollStop(Exception):
    """Ends a poll (or one listing of it) with a problem line: ``until`` set for a rate limit (defer),
    ``blind`` for an answer that means the source cannot see (token, permission, login refused), which
    the source-health alert raises at once (``PollResult.blind``)."""

    def __init__(self, problem: str, until: datetime | None = None, *, blind: bool = False) -> None:
        super().__init__(problem)
        self.until = until
        self.blind = blind


def dump_cursor(state: dict[str, Any]) -> str:
    return json.dumps(state, separators=(",", ":"), sort_keys=True)


class RecordingSession(TimeoutSession):
    """A session with a timeout that remembers the last response's headers.

    Client libraries turn a 429 into an exception that drops the response; the
    rate-limit reset is in its headers, so we keep them here to decide between
    waiting and deferring.
    """

    def __init__(self, timeout: float, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        super().__init__(timeout, max_body=max_body)
        self.last_headers: dict[str, str] = {}
        self.last_status: int | None = None
        self.hooks["response"].append(self._remember)

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.last_headers = {k.lower(): v for k, v in response.headers.items()}
        self.last_status = response.status_code
