"""Mastodon through Mastodon.py: full-text search (API v2, ``type=statuses``) and hashtag timelines.

One source per brand **and instance** (``mastodon:Lumora:mastodon.social``):
each instance has its own rate limit (300 requests per 5 minutes per account
and IP) and its own outages, so one deferred instance never holds up another.

The cursor (JSON) keeps, per stream (``search`` and ``tag:<name>``), the
newest status id received:

* hashtag timelines are read forward with ``min_id`` (pages of the statuses
  *immediately* newer than the cursor), so a backlog longer than one poll
  continues on the next poll without a gap;
* search is filtered with ``min_id`` and paged with ``offset``; a poll reads at
  most ``max_pages`` pages. Search pages come newest first: when a poll stops
  with pages left, the cursor keeps the old id plus the oldest id received
  (``search:before``, sent as ``max_id``) and the newest (``search:newest``),
  and the next polls go on below it until they reach the old id; only then
  does the cursor move to the newest. A search that failed on a later page
  keeps its previous cursor: the next poll reads the same span again (the
  store drops what it has) and no status older than the failure is passed.

A 429 defers the instance until ``X-RateLimit-Reset`` or ``Retry-After``
(waited out when near, as everywhere). Mastodon.py raises the same
``MastodonRatelimitError`` when it cannot read the rate-limit headers of a
*successful* answer (a duplicated ``Date`` header, say): that is reported as
what it is, a problem of the instance's answer, never as a 429.

The very first poll (no cursor) reads only the newest page: it starts from now
and does not backfill. The mention id is the status's federated ``uri``, the
same on every instance, so a post seen through two instances is stored once.

Reach is the author's follower count as the instance reports it; engagement is
favourites + boosts + replies. The access token (optional: most instances
answer hashtag timelines without one; full-text search of statuses needs a
logged-in account on many) is sent only to the instance it belongs to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonNetworkError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)

from monitor.clock import Clock, SystemClock
from monitor.models import Mention
from monitor.redact import describe, protect_logger, remember_secret
from monitor.sources.base import PollResult
from monitor.sources.common import (
    PollStop as _Stop,
)
from monitor.sources.common import (
    RecordingSession,
    count,
    dump_cursor,
    expected_language,
    fit_id,
    id_key,
    load_cursor,
    newer_id,
    parse_time,
    plain_text,
)
from monitor.sources.resilience import (
    DEFAULT_MAX_BODY,
    BodyTooLarge,
    DeadlineExceeded,
    RateLimited,
    RetryPolicy,
    reset_from_epoch,
    reset_from_retry_after,
    wait_or_defer,
)

log = logging.getLogger(__name__)
protect_logger("mastodon")

SOURCE = "mastodon"
PAGE_SIZE = 40  # the most Mastodon returns per request
USER_AGENT = "monitor-mastodon/1.0 (+reputation monitoring; read-only)"
_PUBLIC = {"public", "unlisted", None}


def instance_host(url: str) -> str:
    """``https://mastodon.social/`` -> ``mastodon.social`` (the part of the source name that varies)."""
    return urlsplit(url).netloc or url.strip("/")


def mention_from_status(status: Any, *, brand: str, languages: Collection[str]) -> Mention:
    """One Mastodon status as a Mention, or ValueError naming what is missing."""
    if not isinstance(status, dict):
        raise ValueError(f"expected a status object, got {type(status).__name__}")
    local_id = status.get("id")
    uri = status.get("uri") or status.get("url")
    if not uri or local_id in (None, ""):
        raise ValueError("status without id or uri")
    text = plain_text(status.get("content"))
    warning = plain_text(status.get("spoiler_text"))
    if warning:  # a content warning is part of what readers see first
        text = f"{warning}\n\n{text}" if text else warning
    if not text:
        raise ValueError(f"status {local_id} has no text")
    raw_created = status.get("created_at")
    created = raw_created if isinstance(raw_created, datetime) else parse_time(raw_created)
    if created is None:
        raise ValueError(f"status {local_id}: created_at is not a time: {raw_created!r}")
    raw_account = status.get("account")
    account: dict[str, Any] = raw_account if isinstance(raw_account, dict) else {}
    handle = account.get("acct") if isinstance(account.get("acct"), str) else None
    reply_to = status.get("in_reply_to_id")
    return Mention(
        source=SOURCE,
        source_id=fit_id(str(uri)),
        brand=brand,
        text=text,
        created_at=created,
        url=str(status.get("url") or uri),
        author_handle=handle or None,
        author_reach=count(account.get("followers_count")),
        engagement=sum(count(status.get(k)) for k in ("favourites_count", "reblogs_count", "replies_count")),
        language=expected_language(status.get("language"), languages),
        conversation_id=str(reply_to) if reply_to else None,
    )


def _transient(exc: BaseException) -> bool:
    """A 5xx or a network failure; not an answer cut off for its size or its slowness (as bad next time)."""
    if isinstance(exc.__context__, DeadlineExceeded | BodyTooLarge):
        return False
    return isinstance(exc, MastodonNetworkError | MastodonServerError)


def _bad_json(exc: BaseException) -> bool:
    return isinstance(exc, MastodonAPIError) and "Could not parse response as JSON" in str(exc)


class MastodonSource:
    """Search and hashtag timelines of one Mastodon instance for one brand."""

    def __init__(
        self,
        *,
        brand: str,
        client: Mastodon,
        instance: str,
        query: str | None,
        hashtags: Iterable[str] = (),
        languages: Collection[str] = ("nl", "fr", "en"),
        name: str | None = None,
        max_pages: int = 3,
        poll_every: timedelta = timedelta(minutes=5),
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.brand = brand
        self.client = client
        self.instance = instance
        self.query = query
        self.hashtags = [t.lstrip("#") for t in hashtags]
        self.languages = frozenset(languages)
        self._name = name or f"mastodon:{brand}:{instance_host(instance)}"
        self.max_pages = max_pages
        self.poll_every = poll_every
        self.policy = policy or RetryPolicy()
        self.clock = clock or SystemClock()

    @classmethod
    def connect(cls, instance: str, *, access_token: str | None = None, timeout: float = 20.0,
                **kwargs: Any) -> MastodonSource:
        """A client that never sleeps on its own (we decide about 429s) and never asks for the version."""
        remember_secret(access_token)
        client = Mastodon(api_base_url=instance.rstrip("/"), access_token=access_token, request_timeout=timeout,
                          ratelimit_method="throw", version_check_mode="created", mastodon_version="4.0.0",
                          session=RecordingSession(timeout, max_body=_max_body(kwargs.get("policy"))),
                          user_agent=USER_AGENT)
        return cls(client=client, instance=instance, **kwargs)

    @property
    def name(self) -> str:
        return self._name

    def streams(self) -> list[str]:
        return (["search"] if self.query else []) + [f"tag:{t}" for t in self.hashtags]

    def poll(self, cursor: str | None) -> PollResult:
        state = {k: str(v) for k, v in load_cursor(cursor, self.name).items() if isinstance(v, str | int)}
        found: list[Mention] = []
        skipped: list[str] = []
        problems: list[str] = []
        deferred: datetime | None = None
        blind = False
        requests = 0
        for stream in self.streams():
            reader = _StreamReader(self, stream, state)
            try:
                reader.read()
            except _Stop as exc:
                problems.append(f"{stream}: {exc}")
                deferred = exc.until or deferred
                blind = blind or exc.blind
                reader.failed()
            requests += reader.requests
            have = {m.source_id for m in found}  # a status both searched and tagged is delivered once
            found.extend(m for m in reader.found if m.source_id not in have)
            skipped.extend(reader.skipped)
            reader.save(state)
            if deferred is not None:
                break  # the limit is per account and IP: the next stream would get a 429 too
        return PollResult(found, dump_cursor(state), skipped=skipped, requests=requests,
                          problem="; ".join(problems) or None, deferred_until=deferred, blind=blind)


class _StreamReader:
    """Reads one stream (search or one hashtag) from its cursor, page by page."""

    def __init__(self, source: MastodonSource, stream: str, state: dict[str, str]) -> None:
        self.source = source
        self.stream = stream
        self.since = state.get(stream)
        # A search backlog being read: ids below ``before`` (max_id) and above ``since``, newest kept aside.
        self.before = state.get(f"{stream}:before") if self.since is not None else None
        self.newest = state.get(f"{stream}:newest", self.since) if self.before is not None else self.since
        self.oldest: str | None = None
        self.found: list[Mention] = []
        self.skipped: list[str] = []
        self.requests = 0
        self.waited = False
        self.broke = False

    def failed(self) -> None:
        """The stream stopped on an error: a search (newest first) keeps its cursor, a timeline (read forward
        from the cursor, so gapless) keeps what it read."""
        self.broke = True

    def save(self, state: dict[str, str]) -> None:
        """Write this stream's cursor: a search moves its id only once its backlog is read."""
        if self.stream != "search":
            if self.newest is not None:
                state[self.stream] = self.newest
            return
        if self.broke:
            return
        for key in (f"{self.stream}:before", f"{self.stream}:newest"):
            state.pop(key, None)
        if self.before is not None and self.newest is not None:
            state.update({f"{self.stream}:before": self.before, f"{self.stream}:newest": self.newest})
        elif self.newest is not None:
            state[self.stream] = self.newest

    def _call(self, fetch: Callable[[], Any]) -> Any:
        src = self.source

        def attempt() -> Any:
            self.requests += 1  # every request sent, a retried one too
            return fetch()

        while True:
            try:
                return src.policy.call(attempt, transient=_transient, what=f"{src.name} {self.stream}")
            except MastodonRatelimitError as exc:
                now = src.clock.now()
                session = src.client.session
                if getattr(session, "last_status", 429) != 429:
                    raise _Stop(f"{src.instance} answered HTTP {getattr(session, 'last_status', '?')} with "
                                f"rate-limit headers Mastodon.py cannot read ({exc}); not a rate limit, the "
                                "instance's answer is malformed") from None
                headers = getattr(session, "last_headers", {})
                reset_at = parse_time(headers.get("x-ratelimit-reset")) or reset_from_epoch(
                    headers.get("x-ratelimit-reset")) or reset_from_retry_after(headers.get("retry-after"), now)
                wait, until = wait_or_defer(src.policy, reset_at, now, default=timedelta(minutes=5))
                if wait is None or self.waited:
                    raise _Stop(str(RateLimited(src.name, until)).split(": ", 1)[1], until) from None
                log.info("%s: rate limited; waiting %.0f s for the window to reset", src.name, wait)
                self.waited = True
                src.policy.sleep(wait)
            except Exception as exc:
                if _bad_json(exc):
                    raise _Stop(f"{src.instance} answered with malformed JSON; cursor kept") from None
                if isinstance(exc, MastodonUnauthorizedError) or (
                        isinstance(exc, MastodonAPIError) and getattr(src.client.session, "last_status", 0) == 403):
                    raise _Stop(f"{describe(exc)}: access refused; {src.instance} answers this only to a logged-in "
                                "account: set MASTODON_ACCESS_TOKEN (of an account there, mastodon.account_instance) "
                                "or renew it", blind=True) from None
                raise _Stop(describe(exc)) from None

    def _page(self, page_no: int) -> list[Any]:
        src, client = self.source, self.source.client
        if self.stream == "search":
            answer = self._call(lambda: client.search_v2(
                src.query, resolve=False, result_type="statuses", min_id=self.since, max_id=self.before,
                offset=page_no * PAGE_SIZE if page_no else None, limit=PAGE_SIZE))
            statuses = answer.get("statuses") if isinstance(answer, dict) else None
        else:
            tag = self.stream.removeprefix("tag:")
            # min_id pages forward from the cursor (gapless); without a cursor: the newest page only.
            after = self.newest if self.since is not None else None
            statuses = self._call(lambda: client.timeline_hashtag(tag, min_id=after, limit=PAGE_SIZE))
        if not isinstance(statuses, list):
            raise _Stop(f"{src.instance} answered without a list of statuses; cursor kept")
        return statuses

    def read(self) -> None:
        src = self.source
        for page_no in range(src.max_pages):
            statuses = self._page(page_no)
            for status in statuses:
                status_id = str(status.get("id")) if isinstance(status, dict) and status.get("id") else None
                if status_id is not None and self.since is not None and id_key(status_id) <= id_key(self.since):
                    continue  # an instance that ignores min_id must not re-deliver
                if status_id is not None and self.before is not None and id_key(status_id) >= id_key(self.before):
                    continue  # nor one that ignores max_id
                self.newest = newer_id(self.newest, status_id)
                if status_id is not None and (self.oldest is None or id_key(status_id) < id_key(self.oldest)):
                    self.oldest = status_id
                if isinstance(status, dict) and status.get("visibility") not in _PUBLIC:
                    continue
                try:
                    self.found.append(mention_from_status(status, brand=src.brand, languages=src.languages))
                except ValueError as exc:
                    self.skipped.append(f"{src.name} {self.stream}: skipped: {exc}")
                    log.warning("%s", self.skipped[-1])
            if len(statuses) < PAGE_SIZE or self.since is None:
                self.before = None
                return  # caught up, or a first poll (newest page only)
        if self.stream == "search":  # newest first: go on below the oldest received
            self.before = self.oldest or self.before
        log.info("%s %s: more than %d statuses since the last poll; the rest follows next poll", src.name,
                 self.stream, src.max_pages * PAGE_SIZE)


def _max_body(policy: object) -> int:
    return policy.max_body if isinstance(policy, RetryPolicy) else DEFAULT_MAX_BODY
