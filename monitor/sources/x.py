"""X (Twitter) recent search through tweepy, and the one normaliser of X API v2 pages.

``mentions_from_page`` turns one X API v2 response (``data``, ``includes.users``,
``meta``) into mentions; the live source and ``monitor import --format twarc``
both use it, so an imported archive and a live poll give identical rows.

The live source polls ``GET /2/tweets/search/recent`` with ``since_id`` as the
cursor, newest first through ``tweepy.Paginator``:

* the cursor moves only to the newest id actually received, in the same
  transaction as the mentions (the poller does that);
* a poll reads at most ``max_pages_per_poll`` pages and never more than the
  day's remaining request budget; when it stops with pages left, the cursor
  keeps the old ``since_id`` plus the ``next_token`` to resume from, so the
  backlog is read on the next polls without a gap and without re-reading;
* a 429 whose reset is near is waited out; a later one ends the poll and
  defers the source until the reset, keeping the cursor;
* 5xx, timeouts and dropped connections are retried a few times with backoff.

The very first poll (no cursor) starts from now: it reads the newest pages and
does not backfill seven days, which would spend the day's budget at once;
``monitor import`` is the way to load history.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import tweepy

from monitor.clock import Clock, SystemClock
from monitor.models import Mention
from monitor.redact import describe, protect_logger
from monitor.sources.base import PollResult
from monitor.sources.resilience import (
    DEFAULT_MAX_BODY,
    RateLimited,
    RetryPolicy,
    TimeoutSession,
    reset_from_epoch,
    reset_from_retry_after,
    transient_http,
    wait_or_defer,
)

log = logging.getLogger(__name__)
protect_logger("tweepy.client")  # tweepy logs the Authorization header at DEBUG

SOURCE = "x"
TWEET_FIELDS = ["created_at", "lang", "public_metrics", "conversation_id", "author_id"]
USER_FIELDS = ["public_metrics", "username"]
EXPANSIONS = ["author_id"]
_TWITTER_EPOCH_MS = 1288834974657  # snowflake ids carry their creation time since this instant


# --- normalisation (shared with the import) -------------------------------------------------------

@dataclass(slots=True)
class NormalisedPage:
    mentions: list[Mention] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    next_token: str | None = None

    @property
    def newest_id(self) -> int | None:
        return max((int(m.source_id) for m in self.mentions), default=None)

    def __iter__(self) -> Iterator[Mention]:
        """Iterating a page gives its mentions (``yield from mentions_from_page(...)``)."""
        return iter(self.mentions)

    def __len__(self) -> int:
        return len(self.mentions)


def snowflake_time(tweet_id: str) -> datetime:
    """Creation time encoded in an X id (exact to the millisecond) when ``created_at`` is missing."""
    return datetime.fromtimestamp(((int(tweet_id) >> 22) + _TWITTER_EPOCH_MS) / 1000, tz=UTC)


def _count(metrics: Any, key: str) -> int:
    value = metrics.get(key) if isinstance(metrics, dict) else None
    return value if isinstance(value, int) and value > 0 else 0


def _language(lang: Any, languages: Collection[str] | None) -> str | None:
    """X's ``lang`` when we expect it; None (our detector decides) otherwise.

    Without a list of expected languages any real code is kept; X's ``und`` (undetermined), ``zxx``
    (no text) and ``qme``/``qht``/... (media, hashtags only) never are.
    """
    if not isinstance(lang, str) or not lang:
        return None
    if languages is not None:
        return lang if lang in languages else None
    return lang if lang not in ("und", "zxx") and not lang.startswith("q") else None


def mention_from_tweet(tweet: Any, users: dict[str, Any], *, brand: str,
                       languages: Collection[str] | None = None) -> Mention:
    """One tweet object as a Mention, or ValueError saying what is wrong with it."""
    if not isinstance(tweet, dict):
        raise ValueError(f"expected a tweet object, got {type(tweet).__name__}")
    tweet_id = tweet.get("id")
    if not isinstance(tweet_id, str) or not tweet_id.isdigit():
        raise ValueError(f"tweet without a numeric string 'id' ({tweet_id!r})")
    note = tweet.get("note_tweet")  # posts over 280 characters carry their full text here
    text = note.get("text") if isinstance(note, dict) and isinstance(note.get("text"), str) else tweet.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"tweet {tweet_id} has no text")
    raw_created = tweet.get("created_at")
    if raw_created is None:
        created = snowflake_time(tweet_id)
    else:
        try:
            created = datetime.fromisoformat(str(raw_created).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"tweet {tweet_id}: created_at is not a time: {raw_created!r}") from None
    author_id = tweet.get("author_id")
    user = users.get(str(author_id)) if author_id is not None else None
    if user is None and isinstance(tweet.get("author"), dict):  # twarc's flattened form inlines the author
        user = tweet["author"]
    username = user.get("username") if isinstance(user, dict) else None
    handle = username if isinstance(username, str) and username else None
    reach = _count(user.get("public_metrics") if isinstance(user, dict) else None, "followers_count")
    metrics = tweet.get("public_metrics")
    engagement = sum(_count(metrics, k) for k in ("like_count", "reply_count", "retweet_count", "quote_count"))
    conversation = tweet.get("conversation_id")
    return Mention(
        source=SOURCE,
        source_id=tweet_id,
        brand=brand,
        text=text,
        created_at=created,
        url=f"https://x.com/{handle}/status/{tweet_id}" if handle else f"https://x.com/i/web/status/{tweet_id}",
        author_handle=handle,
        author_reach=reach,
        engagement=engagement,
        language=_language(tweet.get("lang"), languages),
        conversation_id=str(conversation) if conversation else None,
    )


def mentions_from_page(page: Any, *, brand: str, languages: Collection[str] | None = None,
                       where: str = "page") -> NormalisedPage:
    """One X API v2 response (or a lone tweet object) as mentions; bad tweets are logged and skipped.

    Never raises: a page that is not an X response at all becomes one skipped entry. ``languages``
    are the brand's expected ones (see ``_language``).
    """
    out = NormalisedPage()
    if isinstance(page, dict) and "data" not in page and "id" in page and "text" in page:
        page = {"data": [page]}  # a line holding a single tweet
    if not isinstance(page, dict):
        out.skipped.append(f"{where}: not an X API response (a {type(page).__name__})")
        log.warning("%s", out.skipped[-1])
        return out
    meta = page.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("next_token"), str):
        out.next_token = meta["next_token"]
    data = page.get("data", [])
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        out.skipped.append(f"{where}: 'data' is not a list of tweets")
        log.warning("%s", out.skipped[-1])
        return out
    if not data and "errors" in page and "meta" not in page:
        out.skipped.append(f"{where}: error response: {str(page['errors'])[:200]}")
        log.warning("%s", out.skipped[-1])
        return out
    includes = page.get("includes")
    raw_users = includes.get("users") if isinstance(includes, dict) else None
    users = {str(u["id"]): u for u in raw_users or [] if isinstance(u, dict) and "id" in u}
    for tweet in data:
        try:
            out.mentions.append(mention_from_tweet(tweet, users, brand=brand, languages=languages))
        except ValueError as exc:
            out.skipped.append(f"{where}: skipped: {exc}")
            log.warning("%s", out.skipped[-1])
    return out


# --- the cursor -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class XCursor:
    """``since_id`` when caught up; plus ``next_token``/``newest_id`` while a backlog is being read."""

    since_id: str | None = None
    next_token: str | None = None
    newest_id: str | None = None

    @classmethod
    def parse(cls, raw: str | None) -> XCursor:
        if not raw:
            return cls()
        if raw.isdigit():
            return cls(since_id=raw)
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            log.warning("x cursor %r is unreadable: starting from the newest posts", raw[:80])
            return cls()
        if not isinstance(obj, dict):
            return cls()

        def text(key: str) -> str | None:
            value = obj.get(key)
            return str(value) if value not in (None, "") else None

        return cls(since_id=text("since_id"), next_token=text("next_token"), newest_id=text("newest_id"))

    def dump(self) -> str | None:
        if self.next_token is None:
            return self.since_id
        return json.dumps({"since_id": self.since_id, "next_token": self.next_token, "newest_id": self.newest_id},
                          separators=(",", ":"))


def _newer(a: str | None, b: int | None) -> str | None:
    if b is None:
        return a
    if a is None or int(a) < b:
        return str(b)
    return a


# --- the live source ------------------------------------------------------------------------------

class _BudgetSpent(Exception):
    pass


_END = object()  # what next() returns when the paginator has no more pages


class XSource:
    """Recent search for one brand's query. See the module docstring for the cursor rules."""

    def __init__(
        self,
        *,
        brand: str,
        query: str,
        client: tweepy.Client,
        languages: Collection[str],
        name: str | None = None,
        daily_budget: int | None = None,
        max_pages: int = 5,
        poll_every: timedelta = timedelta(minutes=5),
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.brand = brand
        self.query = query
        self.client = client
        # tweepy would otherwise sleep up to 15 minutes inside a poll on a 429, holding the thread and SIGTERM;
        # we wait only as long as the policy allows and defer in the scheduler beyond that.
        self.client.wait_on_rate_limit = False
        self.languages = frozenset(languages)
        self._name = name or f"x:{brand}"
        self._budget = daily_budget
        self.max_pages = max_pages
        self.poll_every = poll_every
        self.policy = policy or RetryPolicy()
        self.clock = clock or SystemClock()

    @classmethod
    def with_token(cls, bearer_token: str, *, timeout: float = 20.0, **kwargs: Any) -> XSource:
        """A source whose client never waits on its own (we decide about 429s) and times out."""
        client = tweepy.Client(bearer_token=bearer_token, return_type=dict, wait_on_rate_limit=False)
        policy = kwargs.get("policy")
        client.session = TimeoutSession(timeout, max_body=policy.max_body if isinstance(policy, RetryPolicy)
                                        else DEFAULT_MAX_BODY)
        return cls(client=client, **kwargs)

    @property
    def name(self) -> str:
        return self._name

    @property
    def daily_budget(self) -> int | None:
        return self._budget

    def _pages(self, cursor: XCursor) -> Iterator[Any]:
        params: dict[str, Any] = {
            "expansions": EXPANSIONS, "user_fields": USER_FIELDS, "tweet_fields": TWEET_FIELDS, "max_results": 100,
        }
        if cursor.since_id:
            params["since_id"] = cursor.since_id
        paginator = tweepy.Paginator(self.client.search_recent_tweets, self.query,
                                     pagination_token=cursor.next_token, **params)
        return iter(paginator)

    def poll(self, cursor: str | None, *, requests_left: int | None = None) -> PollResult:
        state = XCursor.parse(cursor)
        try:
            return self._poll(state, requests_left)
        except tweepy.BadRequest as exc:
            # A resume token that expired, or a since_id older than the 7 days search covers:
            # start again from the newest posts rather than fail every poll from now on.
            if state.next_token is None and state.since_id is None:
                raise
            log.warning("%s: the API refused the cursor (%s); starting again from the newest posts",
                        self.name, describe(exc))
            fresh = XCursor(since_id=state.since_id) if state.next_token and "since_id" not in str(exc) \
                else XCursor()
            result = self._poll(fresh, None if requests_left is None else requests_left - 1)
            # "" clears a cursor the API no longer accepts even when nothing new arrived.
            return PollResult(result.mentions, result.next_cursor or "", skipped=result.skipped,
                                  requests=result.requests + 1, problem=result.problem,
                                  deferred_until=result.deferred_until)

    def _poll(self, state: XCursor, requests_left: int | None) -> PollResult:
        pages = self._pages(state)
        found: list[Mention] = []
        skipped: list[str] = []
        newest = state.newest_id
        requests = 0
        waited = False
        problem: str | None = None
        deferred: datetime | None = None
        blind = False  # access refused: the source cannot see (alerted at once)
        next_token = state.next_token
        backlog = state.since_id is not None  # without a since_id we only read the newest pages
        pages_read = 0

        def fetch() -> Any:
            nonlocal requests, waited
            while True:
                if requests_left is not None and requests >= requests_left:
                    raise _BudgetSpent
                requests += 1
                try:
                    return next(pages, _END)
                except tweepy.TooManyRequests as exc:
                    now = self.clock.now()
                    reset_at = reset_from_epoch(getattr(exc, "reset_time", None)
                                                or exc.response.headers.get("x-rate-limit-reset")) \
                        or reset_from_retry_after(exc.response.headers.get("retry-after"), now)
                    wait, until = wait_or_defer(self.policy, reset_at, now)
                    if wait is None or waited:
                        raise RateLimited(self.name, until) from None
                    log.info("%s: rate limited; waiting %.0f s for the window to reset", self.name, wait)
                    waited = True
                    self.policy.sleep(wait)

        while pages_read < self.max_pages:
            try:
                page = self.policy.call(fetch, transient=transient_http, what=f"{self.name} search")
            except _BudgetSpent:
                problem = None  # not an error: the next poll defers until the budget renews
                log.warning("%s: daily request budget reached; the rest waits for tomorrow", self.name)
                break
            except RateLimited as exc:
                problem, deferred = str(exc), exc.reset_at
                break
            except (tweepy.Unauthorized, tweepy.Forbidden) as exc:  # every request would get it: say what to fix
                problem = (f"{describe(exc)}: access refused; check X_BEARER_TOKEN (revoked or regenerated?) and "
                           "the app's access level (recent search needs Basic or higher)")
                blind = True
                break
            except Exception as exc:
                if pages_read == 0:
                    raise
                problem = describe(exc)  # keep the pages we have; resume at the failed one next poll
                break
            if page is _END:
                next_token = None
                break
            pages_read += 1
            normalised = mentions_from_page(page, brand=self.brand, languages=self.languages,
                                            where=f"{self.name} page {pages_read}")
            found.extend(normalised.mentions)
            skipped.extend(normalised.skipped)
            newest = _newer(newest, normalised.newest_id)
            next_token = normalised.next_token
            if next_token is None:
                break

        if not backlog or next_token is None:
            # Caught up (or first poll): everything up to the newest id received is covered.
            since = newest or state.since_id
            next_cursor = XCursor(since_id=since).dump()
        else:
            next_cursor = XCursor(since_id=state.since_id, next_token=next_token, newest_id=newest).dump()
        return PollResult(found, next_cursor, skipped=skipped, requests=requests, problem=problem,
                          deferred_until=deferred, blind=blind)
