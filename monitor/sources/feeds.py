"""News sites and blogs through RSS/Atom: conditional GET with ``requests``, parse with feedparser.

One source per feed, so a dead feed only marks itself unhealthy. The cursor
(JSON) holds the feed's ``ETag`` and ``Last-Modified``, sent back as
``If-None-Match``/``If-Modified-Since``: an unchanged feed answers 304 with no
body, which is cheap for both sides. It also holds the ids already delivered
(bounded), because a changed feed re-sends its older items too.

An item becomes a mention when its title or summary names the brand as a
whole word (any case); the author is the site's name and the reach is the
outlet's audience from ``monitor.yaml``. Fetching is ours, not feedparser's, so
every request has a timeout for the whole answer and a size cap
(``http.max_body``: a 10 MB feed is a broken feed, not one to parse for
minutes), transient failures are retried with backoff, and a 429/503 with
``Retry-After`` defers the feed instead of hammering it.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import json
import logging
import re
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import requests

from monitor.clock import Clock, SystemClock
from monitor.models import Mention
from monitor.sources.base import PollResult
from monitor.sources.keywords import keyword_matcher
from monitor.sources.resilience import (
    RateLimited,
    RetryPolicy,
    TimeoutSession,
    reset_from_retry_after,
    transient_http,
    wait_or_defer,
)

log = logging.getLogger(__name__)

SOURCE = "news"
MAX_SEEN = 500
MAX_ID = 128  # mentions.source_id is String(128)
USER_AGENT = "monitor-feeds/1.0 (+reputation monitoring; conditional requests)"
_TAGS = re.compile(r"<[^>]+>")


def _plain(value: Any) -> str:
    return " ".join(html.unescape(_TAGS.sub(" ", str(value or ""))).split())


def _entry_id(entry: Any) -> str | None:
    raw = entry.get("id") or entry.get("link")
    if not raw:
        title = entry.get("title")
        if not title:
            return None
        raw = f"{title}|{entry.get('published') or entry.get('updated') or ''}"
    raw = str(raw).strip()
    if len(raw) <= MAX_ID:
        return raw
    return "sha1:" + hashlib.sha1(raw.encode("utf-8")).hexdigest()


def _entry_time(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    return None


def feed_language(parsed: Any, expected: Collection[str], fallback: str | None) -> str | None:
    """The feed's declared language ('nl-BE' -> 'nl') when expected, else the configured one."""
    declared = str(parsed.feed.get("language") or "").split("-")[0].split("_")[0].strip().lower()
    if declared:
        return declared if declared in expected else None
    return fallback if fallback in expected else None


def mentions_from_feed(parsed: Any, *, brand: str, site: str, reach: int, languages: Collection[str],
                       matches: Callable[[str], bool], fetched_at: datetime,
                       language: str | None = None) -> tuple[list[Mention], list[str]]:
    """Entries of a parsed feed that name the brand, as mentions; unusable entries are skipped."""
    lang = feed_language(parsed, languages, language)
    found: list[Mention] = []
    skipped: list[str] = []
    for entry in parsed.entries:
        entry_id = _entry_id(entry)
        if entry_id is None:
            skipped.append(f"{site}: item without id, link or title skipped")
            continue
        title = _plain(entry.get("title"))
        summary = _plain(entry.get("summary") or entry.get("description"))
        text = f"{title}\n\n{summary}" if title and summary and summary != title else (title or summary)
        if not text or not matches(text):
            continue
        link = entry.get("link")
        found.append(Mention(
            source=SOURCE, source_id=entry_id, brand=brand, text=text,
            created_at=_entry_time(entry) or fetched_at, url=str(link) if link else None,
            author_handle=site, author_reach=reach, engagement=0, language=lang,
        ))
    return found, skipped


def parse_cursor(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}


class FeedSource:
    """One RSS/Atom feed for one brand."""

    def __init__(
        self,
        *,
        brand: str,
        site: str,
        url: str,
        keywords: Collection[str],
        languages: Collection[str],
        reach: int = 0,
        language: str | None = None,
        poll_every: timedelta = timedelta(minutes=15),
        name: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 20.0,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.brand = brand
        self.site = site
        self.url = url
        self.matches = keyword_matcher(list(keywords) or [brand])
        self.languages = frozenset(languages)
        self.reach = reach
        self.language = language
        self.poll_every = poll_every
        self._name = name or f"news:{brand}:{site}"
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        # Bounded by default: the whole answer within ``timeout``, at most ``policy.max_body`` bytes.
        self.session = session or TimeoutSession(timeout, max_body=self.policy.max_body)
        self.clock = clock or SystemClock()

    @property
    def name(self) -> str:
        return self._name

    def _get(self, headers: dict[str, str]) -> requests.Response:
        response = self.session.get(self.url, headers=headers, timeout=self.timeout)
        status = response.status_code
        pushed_back = status == 429 or (status == 503 and "retry-after" in response.headers)
        if status >= 500 and not pushed_back:
            response.raise_for_status()  # the HTTPError carries the response: transient_http retries it
        return response

    def poll(self, cursor: str | None) -> PollResult:
        state = parse_cursor(cursor)
        headers = {"User-Agent": USER_AGENT, "Accept": "application/rss+xml, application/atom+xml, "
                   "application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"}
        if state.get("etag"):
            headers["If-None-Match"] = str(state["etag"])
        if state.get("modified"):
            headers["If-Modified-Since"] = str(state["modified"])
        requests_made = 0
        waited = False
        def attempt() -> requests.Response:
            nonlocal requests_made
            requests_made += 1  # every request sent, a retried one too
            return self._get(headers)

        while True:
            response = self.policy.call(attempt, transient=transient_http, what=self.name)
            if response.status_code not in (429, 503):
                break
            now = self.clock.now()
            reset_at = reset_from_retry_after(response.headers.get("retry-after"), now)
            wait, until = wait_or_defer(self.policy, reset_at, now)
            if wait is None or waited:
                problem = str(RateLimited(self.name, until)).replace("HTTP 429", f"HTTP {response.status_code}")
                return PollResult([], cursor, requests=requests_made, problem=problem, deferred_until=until)
            waited = True
            self.policy.sleep(wait)

        if response.status_code == 304:
            return PollResult([], cursor, requests=requests_made)
        response.raise_for_status()
        parsed = feedparser.parse(response.content, response_headers={
            k.lower(): v for k, v in response.headers.items()})
        if parsed.bozo and not parsed.entries:
            reason = getattr(parsed, "bozo_exception", None)
            raise ValueError(f"{self.url} is not a readable RSS/Atom feed ({type(reason).__name__}: {reason})")
        if parsed.bozo:
            log.info("%s: feed is not well-formed (%s) but %d item(s) could be read", self.name,
                     type(getattr(parsed, "bozo_exception", None)).__name__, len(parsed.entries))
        mentions, skipped = mentions_from_feed(parsed, brand=self.brand, site=self.site, reach=self.reach,
                                               languages=self.languages, matches=self.matches,
                                               fetched_at=self.clock.now(), language=self.language)
        seen = [str(s) for s in state.get("seen", []) if isinstance(s, str)]
        already = set(seen)
        fresh = [m for m in mentions if m.source_id not in already]
        seen.extend(m.source_id for m in fresh)
        next_state = {
            "etag": response.headers.get("ETag"),
            "modified": response.headers.get("Last-Modified"),
            "seen": seen[-MAX_SEEN:],
        }
        return PollResult(fresh, json.dumps(next_state, separators=(",", ":")), skipped=skipped,
                              requests=requests_made)
