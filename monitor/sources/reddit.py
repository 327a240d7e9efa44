"""Reddit through praw, read-only: search results, new posts and new comments naming the brand.

Three listings, each optional, each newest first:

* ``search``: ``subreddit.search(query, sort="new")`` in the configured
  subreddits (or all of Reddit); Reddit's own search matched these, so they
  are not filtered again;
* ``submissions``: ``subreddit.new()`` of the subreddits, kept when the title
  or body names the brand (whole word, any case): search indexes lag, the new
  queue does not;
* ``comments``: ``subreddit.comments()`` of the subreddits, same filter.

The cursor (JSON) keeps, per listing, the newest ``created_utc`` scanned and
the ids delivered within ``lookback`` of it: an item is delivered once, even
when it shows up late in a search index, and nothing older than the lookback
is ever re-read. It survives restarts like any cursor.

Author reach is the item's **score** (net upvotes), a proxy chosen because the
author's karma or follower count costs one more request per author (Reddit's
free tier allows about 100 requests a minute) and says little about how many
people saw this one post; engagement is score plus comment count (submissions)
or the score (comments). Language is left to our detector: Reddit has no tag.

praw honours its own configuration (``praw.ini`` and the ``praw_client_id``,
``praw_client_secret``, ``praw_user_agent`` environment variables);
``oauth_url``/``reddit_url`` can point it elsewhere. prawcore already retries
5xx and dropped connections (twice, 2 to 4 s apart), so no second retry layer
is stacked on it; a 429 is waited out when short, otherwise deferred.

prawcore also sleeps on its own: after an answer saying
``x-ratelimit-remaining: 0`` it sleeps until the reset before the next
request (90 s and more), ignoring ``rate_limit_max_wait`` and holding the
poll thread. ``RedditSession`` (the session the factory gives praw) takes
that decision away from it: it hides the exhausted window from prawcore,
and the next request either waits the policy's short wait or raises
``RateLimited``, which ends the poll with the source deferred until the reset.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import praw
import prawcore

from monitor.clock import Clock, SystemClock
from monitor.models import Mention
from monitor.redact import describe, protect_logger
from monitor.sources.base import PollResult
from monitor.sources.keywords import keyword_matcher
from monitor.sources.resilience import (
    RateLimited,
    RetryPolicy,
    TimeoutSession,
    reset_from_retry_after,
    wait_or_defer,
)

log = logging.getLogger(__name__)
protect_logger("prawcore")

SOURCE = "reddit"
REDDIT = "https://www.reddit.com"
LISTINGS = ("search", "submissions", "comments")
MAX_SEEN = 2000  # ids kept per listing; bounds the cursor even for a brand in the news
_PUBLIC = {None, "public", "restricted", "archived", "user"}
_GONE = {"[deleted]", "[removed]"}


@dataclass(slots=True)
class ListingState:
    newest: float | None = None
    seen: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"newest": self.newest, "seen": self.seen}


def parse_cursor(raw: str | None) -> dict[str, ListingState]:
    states = {name: ListingState() for name in LISTINGS}
    if not raw:
        return states
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        log.warning("reddit cursor %r is unreadable: starting afresh", raw[:80])
        return states
    if not isinstance(obj, dict):
        return states
    for name in LISTINGS:
        part = obj.get(name)
        if not isinstance(part, dict):
            continue
        newest = part.get("newest")
        seen = part.get("seen")
        states[name] = ListingState(
            newest=float(newest) if isinstance(newest, int | float) else None,
            seen={str(k): float(v) for k, v in seen.items() if isinstance(v, int | float)}
            if isinstance(seen, dict) else {},
        )
    return states


def dump_cursor(states: dict[str, ListingState]) -> str:
    return json.dumps({name: state.as_json() for name, state in states.items()}, separators=(",", ":"),
                      sort_keys=True)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def mention_from_item(item: Any, *, brand: str) -> Mention:
    """A praw Submission or Comment (only the fields already loaded: no lazy request) as a Mention."""
    data: dict[str, Any] = vars(item) if hasattr(item, "__dict__") else dict(item)
    item_id = data.get("id")
    fullname = data.get("name")
    is_comment = "body" in data
    if not isinstance(item_id, str) or not item_id:
        raise ValueError("item without an id")
    if not isinstance(fullname, str) or not fullname:
        fullname = f"{'t1' if is_comment else 't3'}_{item_id}"
    created = data.get("created_utc")
    if not isinstance(created, int | float):
        raise ValueError(f"{fullname}: no created_utc")
    if is_comment:
        text = str(data.get("body") or "")
    else:
        title = str(data.get("title") or "")
        body = str(data.get("selftext") or "")
        text = f"{title}\n\n{body}" if body and body not in _GONE else title
    if not text.strip() or text.strip() in _GONE:
        raise ValueError(f"{fullname}: deleted or empty")
    subreddit = _str(data.get("subreddit"))
    permalink = _str(data.get("permalink"))
    if permalink:
        url = REDDIT + permalink.split("?", 1)[0] if permalink.startswith("/") else permalink.split("?", 1)[0]
    elif is_comment and subreddit and isinstance(data.get("link_id"), str):
        url = f"{REDDIT}/r/{subreddit}/comments/{data['link_id'].removeprefix('t3_')}/_/{item_id}/"
    else:
        url = None
    score = max(0, _int(data.get("score")))
    author = _str(data.get("author"))
    link_id = data.get("link_id")
    return Mention(
        source=SOURCE,
        source_id=fullname,
        brand=brand,
        text=text,
        created_at=datetime.fromtimestamp(float(created), tz=UTC),
        url=url,
        author_handle=author if author and author not in _GONE else None,
        author_reach=score,
        engagement=score if is_comment else score + max(0, _int(data.get("num_comments"))),
        language=None,
        conversation_id=str(link_id) if is_comment and isinstance(link_id, str) else fullname,
    )


def _public(item: Any) -> bool:
    data = vars(item) if hasattr(item, "__dict__") else {}
    if data.get("subreddit_type") not in _PUBLIC:
        return False
    return not data.get("removed_by_category")


_WINDOW_HEADERS = ("x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset")


class RedditSession(TimeoutSession):
    """The session praw talks through: bounded answers, and prawcore never sleeps longer than our policy."""

    def __init__(self, timeout: float, policy: RetryPolicy, clock: Clock | None = None) -> None:
        super().__init__(timeout, max_body=policy.max_body)
        self.policy = policy
        self.clock = clock or SystemClock()
        self.blocked_until: datetime | None = None

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.blocked_until is not None:
            wait = (self.blocked_until - self.clock.now()).total_seconds()
            if wait > self.policy.rate_limit_max_wait:
                raise RateLimited("reddit", self.blocked_until, why="no requests left in this window")
            if wait > 0:
                log.info("reddit: no requests left in this window; waiting %.0f s", wait)
                self.policy.sleep(wait)
            self.blocked_until = None
        response = super().request(method, url, *args, **kwargs)
        remaining, reset = (response.headers.get(h) for h in _WINDOW_HEADERS[::2])
        try:
            exhausted = remaining is not None and float(remaining) <= 0
            seconds = float(reset) if reset is not None else 600.0  # Reddit's window is 10 minutes
        except ValueError:
            return response
        if exhausted:
            # One second more: the reset second itself may still be limited (as in wait_or_defer).
            self.blocked_until = self.clock.now() + timedelta(seconds=max(1.0, seconds) + 1.0)
            for header in _WINDOW_HEADERS:  # prawcore would sleep until the reset before its next request
                response.headers.pop(header, None)
        return response


def rate_limited_cause(exc: BaseException) -> RateLimited | None:
    """The ``RateLimited`` a ``RedditSession`` raised, which prawcore wraps in its ``RequestException``."""
    original = getattr(exc, "original_exception", None)
    return original if isinstance(original, RateLimited) else None


class _Deferred(Exception):
    def __init__(self, problem: str, until: datetime) -> None:
        super().__init__(problem)
        self.until = until


class RedditSource:
    """One brand's Reddit listings; see the module docstring for cursor, reach and limits."""

    def __init__(
        self,
        *,
        brand: str,
        reddit: praw.Reddit,
        keywords: Collection[str],
        subreddits: Iterable[str] = (),
        query: str | None = None,
        submissions: bool = True,
        comments: bool = True,
        max_items: int = 300,
        lookback: timedelta = timedelta(hours=1),
        first_poll: timedelta = timedelta(days=1),
        poll_every: timedelta = timedelta(minutes=5),
        name: str | None = None,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.brand = brand
        self.reddit = reddit
        self.reddit.read_only = True
        self.subreddits = list(subreddits)
        self.query = query
        self.matches = keyword_matcher(list(keywords) or [brand])
        self.listings = [name for name, on in (("search", bool(query)), ("submissions", submissions and bool(
            self.subreddits)), ("comments", comments and bool(self.subreddits))) if on]
        self.max_items = max_items
        self.lookback = lookback
        self.first_poll = first_poll
        self.poll_every = poll_every
        self._name = name or f"reddit:{brand}"
        self.policy = policy or RetryPolicy()
        self.clock = clock or SystemClock()

    @property
    def name(self) -> str:
        return self._name

    def _listing(self, which: str) -> Iterator[Any]:
        target = self.reddit.subreddit("+".join(self.subreddits) or "all")
        if which == "search":
            assert self.query is not None
            return iter(target.search(self.query, sort="new", time_filter="all", limit=self.max_items))
        if which == "submissions":
            return iter(target.new(limit=self.max_items))
        return iter(target.comments(limit=self.max_items))

    def poll(self, cursor: str | None) -> PollResult:
        states = parse_cursor(cursor)
        found: list[Mention] = []
        skipped: list[str] = []
        problems: list[str] = []
        deferred: datetime | None = None
        blind = False  # access refused: the source cannot see (alerted at once)
        for which in self.listings:
            try:
                mentions, dropped, states[which] = self._read(which, states[which])
            except _Deferred as exc:
                problems.append(str(exc))
                deferred = exc.until
                break  # the limit is per client: the other listings would get a 429 too
            except (prawcore.Forbidden, prawcore.OAuthException, prawcore.InvalidToken) as exc:
                problems.append(f"{which}: {describe(exc)}: access refused; check praw_client_id and "
                                "praw_client_secret, that the app is approved for the Data API, and that the "
                                "subreddits are public")
                blind = True
                continue
            except Exception as exc:  # one broken listing must not cost the others
                problems.append(f"{which}: {describe(exc)}")
                continue
            have = {m.source_id for m in found}  # a post both searched and new is delivered once
            found.extend(m for m in mentions if m.source_id not in have)
            skipped.extend(dropped)
        return PollResult(found, dump_cursor(states), skipped=skipped,
                          problem="; ".join(problems) or None, deferred_until=deferred, blind=blind)

    def _read(self, which: str, state: ListingState) -> tuple[list[Mention], list[str], ListingState]:
        now = self.clock.now()
        floor = (state.newest - self.lookback.total_seconds() if state.newest is not None
                 else (now - self.first_poll).timestamp())
        seen = dict(state.seen)
        newest = state.newest
        found: list[Mention] = []
        skipped: list[str] = []
        waited = False
        scanned = 0
        while True:
            try:
                for item in self._listing(which):
                    scanned += 1
                    created = vars(item).get("created_utc")
                    if not isinstance(created, int | float):
                        skipped.append(f"{self.name} {which}: item without created_utc skipped")
                        log.warning("%s", skipped[-1])
                        continue
                    if created < floor:
                        break  # newest first: everything further is older still
                    newest = created if newest is None else max(newest, created)
                    fullname = str(vars(item).get("name") or "")
                    if fullname in seen or not _public(item):
                        continue
                    try:
                        mention = mention_from_item(item, brand=self.brand)
                    except ValueError as exc:
                        skipped.append(f"{self.name} {which}: skipped: {exc}")
                        log.debug("%s", skipped[-1])
                        continue
                    if which != "search" and not self.matches(mention.text):
                        continue
                    seen[mention.source_id] = float(created)
                    found.append(mention)
                else:
                    if scanned >= self.max_items and state.newest is not None:
                        log.warning("%s %s: %d items since the last poll, the most read per poll; older ones may "
                                    "be missed (poll more often)", self.name, which, scanned)
                break
            except prawcore.RequestException as exc:
                limited = rate_limited_cause(exc)
                if limited is None or limited.reset_at is None:
                    raise
                raise _Deferred(f"{which}: {str(limited).removeprefix('reddit: ')}", limited.reset_at) from None
            except prawcore.TooManyRequests as exc:
                reset_at = reset_from_retry_after(exc.retry_after, now)
                wait, until = wait_or_defer(self.policy, reset_at, self.clock.now())
                if wait is None or waited:
                    raise _Deferred(f"{which}: rate limited (HTTP 429) until {until:%Y-%m-%d %H:%M:%S} UTC",
                                    until) from None
                log.info("%s: rate limited; waiting %.0f s", self.name, wait)
                waited = True
                self.policy.sleep(wait)
        keep_from = (newest or 0.0) - self.lookback.total_seconds()
        recent = sorted(((k, v) for k, v in seen.items() if v >= keep_from), key=lambda kv: kv[1])[-MAX_SEEN:]
        return found, skipped, ListingState(newest=newest, seen=dict(recent))
