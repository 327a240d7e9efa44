"""Bluesky through atproto: ``app.bsky.feed.searchPosts`` with a logged-in session.

Search needs a session since early 2025. The source logs in with an **app
password** (``BLUESKY_HANDLE``/``BLUESKY_APP_PASSWORD``) on its first poll and
keeps that session for the life of the process: atproto refreshes the access
token itself before it expires, and a 401 (session revoked) costs one new
login, never a loop of them: login is limited to 30 per 5 minutes and 300 a
day per account, so a refused login (401, or 429 "too many logins") defers the
source: until ``ratelimit-reset``/``Retry-After`` for a 429, else an hour.
Every answer is bounded in time as a whole and in size (``BoundedTransport``
under atproto's httpx client), like the other sources.

The cursor (JSON) is the newest ``indexedAt`` received, sent back as
``since`` (inclusive), plus the URIs already delivered at that instant so
they are not delivered twice. Results come newest first; a poll reads at most
``max_pages`` pages, and when it stops with pages left the cursor also holds
the old ``since`` and the page token, so the backlog is read on the next polls
without a gap. The very first poll reads only the newest page.

Engagement is likes + reposts + replies + quotes; reach is the author's
follower count, fetched with ``app.bsky.actor.getProfiles`` in batches of 25
(one request per batch; a failure there leaves reach 0, the posts are kept).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from atproto import Client, models
from atproto_client.exceptions import (
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    RequestException,
    UnauthorizedError,
)
from atproto_client.request import Request

from monitor.clock import Clock, SystemClock
from monitor.models import Mention
from monitor.redact import describe, protect_logger, remember_secret
from monitor.sources.base import PollResult
from monitor.sources.common import PollStop as _Stop
from monitor.sources.common import count, dump_cursor, expected_language, fit_id, load_cursor, parse_time
from monitor.sources.resilience import (
    BodyTooLarge,
    BoundedTransport,
    DeadlineExceeded,
    RetryPolicy,
    reset_from_retry_after,
    wait_or_defer,
)

log = logging.getLogger(__name__)
protect_logger("atproto_client")
protect_logger("httpx")

SOURCE = "bluesky"
PAGE_SIZE = 100
PROFILE_BATCH = 25  # the most app.bsky.actor.getProfiles accepts
MAX_SEEN = 200
LOGIN_BACKOFF = timedelta(hours=1)


def _get(obj: Any, name: str) -> Any:
    """A field of the raw JSON (``like_count`` reads ``likeCount``), or an attribute of an atproto model."""
    if isinstance(obj, dict):
        head, *rest = name.split("_")
        return obj.get(head + "".join(w.title() for w in rest), obj.get(name))
    return getattr(obj, name, None)


def mention_from_post(post: Any, *, brand: str, languages: Collection[str], followers: int = 0) -> Mention:
    """One ``PostView`` as a Mention, or ValueError naming what is missing."""
    uri = _get(post, "uri")
    if not isinstance(uri, str) or not uri.startswith("at://"):
        raise ValueError(f"post without an at:// uri ({uri!r})")
    record = _get(post, "record")
    text = _get(record, "text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{uri}: no text")
    created = parse_time(_get(record, "created_at") or _get(record, "createdAt")) or parse_time(
        _get(post, "indexed_at"))
    if created is None:
        raise ValueError(f"{uri}: no creation time")
    author = _get(post, "author")
    handle = _get(author, "handle") if author is not None else None
    rkey = uri.rsplit("/", 1)[-1]
    profile = handle if isinstance(handle, str) and handle else uri.split("/")[2]
    langs = _get(record, "langs")
    reply = _get(record, "reply")
    root = _get(_get(reply, "root"), "uri") if reply is not None else None
    return Mention(
        source=SOURCE,
        source_id=fit_id(uri),
        brand=brand,
        text=text.strip(),
        created_at=created,
        url=f"https://bsky.app/profile/{profile}/post/{rkey}",
        author_handle=handle if isinstance(handle, str) and handle else None,
        author_reach=followers,
        engagement=sum(count(_get(post, k)) for k in ("like_count", "repost_count", "reply_count", "quote_count")),
        language=expected_language(langs[0], languages) if isinstance(langs, list) and langs else None,
        conversation_id=root if isinstance(root, str) else None,
    )


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, NetworkError):  # timeouts, dropped connections, 502
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(exc, RequestException) and not isinstance(exc, RateLimitExceededError) \
        and isinstance(status, int) and status >= 500


def _search(params: dict[str, Any]) -> Callable[[Client], Any]:
    # The raw query, not ``app.bsky.feed.search_posts``: that one validates the whole page, so one odd
    # post would fail every poll; here each post is checked (and skipped) on its own.
    typed = models.AppBskyFeedSearchPosts.Params(**params)
    return lambda client: _content(client.invoke_query("app.bsky.feed.searchPosts", params=typed))


def _profiles(actors: list[str]) -> Callable[[Client], Any]:
    typed = models.AppBskyActorGetProfiles.Params(actors=actors)
    return lambda client: _content(client.invoke_query("app.bsky.actor.getProfiles", params=typed))


def _content(response: Any) -> dict[str, Any]:
    content = getattr(response, "content", None)
    if not isinstance(content, dict):
        raise ValueError("the answer is not a JSON object")
    return content


def _reset_at(exc: RateLimitExceededError, now: datetime) -> datetime | None:
    """When a 429 ends: atproto's ``ratelimit-reset``, else ``Retry-After``."""
    return exc.reset_at or reset_from_retry_after(exc.retry_after, now)


class BlueskySource:
    """Bluesky post search for one brand; see the module docstring for session and cursor rules."""

    def __init__(
        self,
        *,
        brand: str,
        query: str,
        handle: str,
        app_password: str,
        service: str = "https://bsky.social",
        languages: Collection[str] = ("nl", "fr", "en"),
        name: str | None = None,
        max_pages: int = 3,
        poll_every: timedelta = timedelta(minutes=5),
        timeout: float = 20.0,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.brand = brand
        self.query = query
        self.service = service.rstrip("/")
        self.languages = frozenset(languages)
        self._name = name or f"bluesky:{brand}"
        self.max_pages = max_pages
        self.poll_every = poll_every
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.clock = clock or SystemClock()
        remember_secret(app_password)
        self._handle = handle
        self._password = app_password
        self._client: Client | None = None
        self.logins = 0  # how many sessions this process created (the API allows 300 a day)

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:  # never the password
        return f"BlueskySource({self._name!r}, service={self.service!r})"

    def _session(self) -> Client:
        if self._client is None:
            client = Client(base_url=self.service, request=Request(
                timeout=self.timeout, transport=BoundedTransport(self.timeout, max_body=self.policy.max_body)))
            try:
                self.policy.call(lambda: client.login(self._handle, self._password, fetch_bsky_profile=False),
                                 transient=_transient, what=f"{self.name} login")
            except UnauthorizedError:
                until = self.clock.now() + LOGIN_BACKOFF
                raise _Stop(f"login refused for {self._handle}: check BLUESKY_HANDLE and BLUESKY_APP_PASSWORD; "
                            f"next try after {until:%H:%M} UTC", until, blind=True) from None
            except RateLimitExceededError as exc:  # 30 logins per 5 minutes, 300 a day per account
                now = self.clock.now()
                reset_at = _reset_at(exc, now)
                until = reset_at if reset_at is not None and reset_at > now else now + LOGIN_BACKOFF
                raise _Stop(f"login refused for {self._handle}: too many logins (HTTP 429); next try after "
                            f"{until:%Y-%m-%d %H:%M} UTC", until) from None
            except (DeadlineExceeded, BodyTooLarge) as exc:
                raise _Stop(f"login: {exc}") from None
            except RequestErrorBase as exc:
                raise _Stop(f"login failed for {self._handle}: {describe(exc)}") from None
            self.logins += 1
            self._client = client
        return self._client

    def _call(self, fetch: Callable[[Client], Any], what: str, state: dict[str, int]) -> Any:
        relogged = waited = False
        while True:
            client = self._session()

            def attempt(c: Client = client) -> Any:
                state["requests"] += 1  # every request sent, a retried one too
                return fetch(c)

            try:
                return self.policy.call(attempt, transient=_transient, what=f"{self.name} {what}")
            except RateLimitExceededError as exc:
                now = self.clock.now()
                reset_at = _reset_at(exc, now)
                wait, until = wait_or_defer(self.policy, reset_at, now, default=timedelta(minutes=5))
                if wait is None or waited:
                    raise _Stop(f"{what}: rate limited (HTTP 429) until {until:%Y-%m-%d %H:%M:%S} UTC",
                                until) from None
                waited = True
                self.policy.sleep(wait)
            except UnauthorizedError:
                if relogged:
                    raise _Stop(f"{what}: the new session was refused too (HTTP 401): check BLUESKY_HANDLE and "
                                "BLUESKY_APP_PASSWORD", blind=True) from None
                log.info("%s: session refused; logging in again", self.name)
                self._client, relogged = None, True
            except RequestErrorBase as exc:
                raise _Stop(f"{what}: {describe(exc)}") from None
            except (DeadlineExceeded, BodyTooLarge) as exc:
                raise _Stop(f"{what}: {exc}") from None
            except ValueError as exc:  # atproto's JSON decoding and model validation
                raise _Stop(f"{what}: {self.service} answered with malformed JSON or an unexpected shape "
                            f"({type(exc).__name__}); cursor kept") from None

    def poll(self, cursor: str | None) -> PollResult:
        state = load_cursor(cursor, self.name)
        since = state.get("since") if isinstance(state.get("since"), str) else None
        page_token = state.get("next") if isinstance(state.get("next"), str) else None
        newest = state.get("newest") if isinstance(state.get("newest"), str) else since
        raw_seen = state.get("seen")
        seen = [str(s) for s in raw_seen] if isinstance(raw_seen, list) else []
        counter = {"requests": 0}
        posts: list[Any] = []
        problem: str | None = None
        deferred: datetime | None = None
        blind = False
        pages = 0
        try:
            while pages < self.max_pages:
                params: dict[str, Any] = {"q": self.query, "sort": "latest", "limit": PAGE_SIZE}
                if since:
                    params["since"] = since
                if page_token:
                    params["cursor"] = page_token
                answer = self._call(_search(params), "search", counter)
                pages += 1
                page = list(_get(answer, "posts") or [])
                posts.extend(page)
                page_token = _get(answer, "cursor") or None
                if not page or page_token is None or since is None:  # done, or a first poll (newest page only)
                    page_token = None
                    break
        except _Stop as exc:
            problem, deferred, blind = str(exc), exc.until, exc.blind
        found, skipped, newest_seen = self._mentions(posts, since, seen, newest)
        reach_problem = self._add_reach(found, counter)
        if page_token is None:
            next_state: dict[str, Any] = {"since": newest_seen[0], "seen": newest_seen[1]} if newest_seen[0] else {}
        else:
            next_state = {"since": since, "next": page_token, "newest": newest_seen[0], "seen": newest_seen[1]}
        next_cursor = dump_cursor(next_state) if next_state else cursor
        if problem is None and reach_problem:
            log.warning("%s: follower counts unavailable (%s); reach 0 for this poll", self.name, reach_problem)
        return PollResult(found, next_cursor, skipped=skipped, requests=counter["requests"], problem=problem,
                          deferred_until=deferred, blind=blind)

    def _mentions(self, posts: list[Any], since: str | None, seen: list[str],
                  newest: str | None) -> tuple[list[Mention], list[str], tuple[str | None, list[str]]]:
        found: list[Mention] = []
        skipped: list[str] = []
        already = set(seen)
        at_newest = list(seen)
        floor = parse_time(since)
        top = parse_time(newest)
        for post in posts:
            uri, indexed = _get(post, "uri"), _get(post, "indexed_at")
            at = parse_time(indexed)
            if at is None:
                skipped.append(f"{self.name}: skipped: post {uri} has no indexedAt")
                continue
            if uri in already or (floor is not None and at < floor):
                continue
            already.add(str(uri))
            if top is None or at > top:
                newest, top, at_newest = str(indexed), at, []
            if at == top:
                at_newest.append(str(uri))
            try:
                found.append(mention_from_post(post, brand=self.brand, languages=self.languages))
            except ValueError as exc:
                skipped.append(f"{self.name}: skipped: {exc}")
                log.warning("%s", skipped[-1])
        return found, skipped, (newest, at_newest[-MAX_SEEN:])

    def _add_reach(self, found: list[Mention], counter: dict[str, int]) -> str | None:
        """Replace each mention's reach by its author's follower count; a problem text when that failed."""
        handles = sorted({m.author_handle for m in found if m.author_handle})
        followers: dict[str, int] = {}
        for start in range(0, len(handles), PROFILE_BATCH):
            batch = handles[start:start + PROFILE_BATCH]
            try:
                answer = self._call(_profiles(batch), "profiles", counter)
            except _Stop as exc:
                return str(exc)
            for profile in _get(answer, "profiles") or []:
                followers[str(_get(profile, "handle"))] = count(_get(profile, "followers_count"))
        for i, m in enumerate(found):
            if m.author_handle in followers:
                found[i] = replace(m, author_reach=followers[m.author_handle])
        return None
