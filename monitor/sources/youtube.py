"""YouTube Data API v3 through google-api-python-client, with an API key.

Two listings, each optional:

* ``comments``: ``commentThreads.list(allThreadsRelatedToChannelId=...)``,
  every comment thread on the brand's own channel's videos, newest first,
  with up to five replies each (**1 quota unit** per page of 100);
* ``search``: ``search.list(q=..., type=video, order=date)`` for videos
  naming the brand, at most once per ``search_every`` (**100 units** a page).

Quota is per Google Cloud project: 10,000 units a day, reset at midnight
Pacific time. The source reports units as its "requests", so the poller's
daily budget (``units_per_day``) counts units in the store across restarts,
like X's ``requests_per_day``; a search is skipped when fewer than 100 units
are left. A ``quotaExceeded`` answer defers the source until the next
midnight Pacific time; ``rateLimitExceeded``/429 defers it 15 minutes.

Quota is counted in **units**, not requests: ``monitor poll`` and ``monitor
sources`` say "unit(s)" for this source.

The cursor (JSON) keeps the newest comment time received and the ids at that
instant, and the time of the last search (``publishedAfter`` of the next).
Comment pages come newest first, so a poll whose page 2 failed keeps its
previous cursor: the next poll reads page 1 again (the store drops what it
already has) and then page 2, and no comment older than the failure is passed
over. A poll that stops with pages left (``max_pages`` read, or the day's
budget spent) keeps the old time plus the next page token
(``comments_next``), and the next polls go on from there until they reach
the time; only then does it move to the newest comment received.

Requests go through ``TimeoutSession`` (``BoundedHttp`` speaks httplib2's
``request`` to the client library), so an answer is bounded in time as a
whole and in size like every other source's; a 429's ``Retry-After`` is read.
Comments are asked as ``textFormat=plainText``: their text is kept as sent
(``<3`` and ``>2 weken`` are words, not tags).
Reach is 0: a commenter's subscriber count costs a request per channel and
says little about who saw one comment; engagement is the comment's likes (plus
replies for a thread), a video's is 0 (statistics would cost more units).
The client is built from the bundled discovery document (``static_discovery``),
so it needs no network to start and ``api_root`` can point it at a test server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from monitor.clock import Clock, SystemClock
from monitor.models import Mention
from monitor.redact import protect_logger, remember_secret
from monitor.sources.base import PollResult
from monitor.sources.common import PollStop as _Stop
from monitor.sources.common import count, dump_cursor, fit_id, load_cursor, parse_time, plain_text
from monitor.sources.google_api import BoundedHttp, transient_google
from monitor.sources.resilience import RetryPolicy, TimeoutSession, reset_from_retry_after, wait_or_defer

log = logging.getLogger(__name__)
protect_logger("googleapiclient.discovery")
protect_logger("googleapiclient.http")

SOURCE = "youtube"
UNIT = "unit(s)"  # what this source's "requests" count: quota units
COMMENT_UNITS, SEARCH_UNITS = 1, 100
PACIFIC = ZoneInfo("America/Los_Angeles")
# Answers that mean every request with this key will fail the same way: the source is blind, say what to fix.
KEY_REFUSED = {"forbidden", "keyInvalid", "keyExpired", "accessNotConfigured", "ipRefererBlocked",
               "badRequest", "authError", "insufficientPermissions"}
MAX_SEEN = 200


def next_quota_reset(now: datetime) -> datetime:
    """Midnight Pacific time after ``now``: when YouTube renews a project's daily quota."""
    local = now.astimezone(PACIFIC)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=PACIFIC).astimezone(now.tzinfo)


def plain_comment(value: Any) -> str:
    """A ``textFormat=plainText`` comment: the text as written, whitespace tidied, nothing taken for a tag."""
    lines = (" ".join(line.split()) for line in str(value or "").splitlines())
    return "\n".join(line for line in lines if line)


def _comment_mention(comment: Any, *, brand: str, video: str | None, replies: int = 0) -> Mention:
    if not isinstance(comment, dict) or not isinstance(comment.get("id"), str):
        raise ValueError("comment without an id")
    raw = comment.get("snippet")
    snippet: dict[str, Any] = raw if isinstance(raw, dict) else {}
    text = plain_comment(snippet.get("textDisplay")) or plain_comment(snippet.get("textOriginal"))
    if not text:
        raise ValueError(f"comment {comment['id']} has no text (removed or held for review)")
    created = parse_time(snippet.get("publishedAt"))
    if created is None:
        raise ValueError(f"comment {comment['id']}: no publishedAt")
    video = video or snippet.get("videoId")
    parent = snippet.get("parentId")
    return Mention(
        source=SOURCE, source_id=fit_id(comment["id"]), brand=brand, text=text, created_at=created,
        url=f"https://www.youtube.com/watch?v={video}&lc={comment['id']}" if video else None,
        author_handle=str(snippet.get("authorDisplayName") or "") or None, author_reach=0,
        engagement=count(snippet.get("likeCount")) + replies,
        conversation_id=str(parent) if parent else None,
    )


def mentions_from_thread(thread: Any, *, brand: str) -> list[Mention]:
    """A commentThread (top-level comment and the replies it carries) as mentions; ValueError when unusable."""
    if not isinstance(thread, dict) or not isinstance(thread.get("snippet"), dict):
        raise ValueError("comment thread without a snippet")
    snippet = thread["snippet"]
    video = snippet.get("videoId")
    top = _comment_mention(snippet.get("topLevelComment"), brand=brand, video=video,
                           replies=count(snippet.get("totalReplyCount")))
    out = [top]
    replies = thread.get("replies")
    for reply in (replies.get("comments") if isinstance(replies, dict) else None) or []:
        try:
            out.append(_comment_mention(reply, brand=brand, video=video))
        except ValueError:
            continue  # a removed reply: the thread itself still counts
    return out


def mention_from_video(item: Any, *, brand: str) -> Mention:
    """One search result (a video) as a Mention."""
    ident = item.get("id") if isinstance(item, dict) else None
    video = ident.get("videoId") if isinstance(ident, dict) else None
    raw = item.get("snippet") if isinstance(item, dict) else None
    snippet: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if not isinstance(video, str):
        raise ValueError("search result without a videoId")
    title, description = plain_text(snippet.get("title")), plain_text(snippet.get("description"))
    text = f"{title}\n\n{description}" if title and description else title or description
    created = parse_time(snippet.get("publishedAt"))
    if not text or created is None:
        raise ValueError(f"video {video}: no title or no publishedAt")
    return Mention(source=SOURCE, source_id=f"video:{video}", brand=brand, text=text, created_at=created,
                   url=f"https://www.youtube.com/watch?v={video}",
                   author_handle=str(snippet.get("channelTitle") or "") or None)


def _reason(exc: HttpError) -> str:
    try:
        body = json.loads(exc.content)
        errors = body["error"].get("errors") or [{}]
        return str(errors[0].get("reason") or body["error"].get("status") or "")
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return ""


@dataclass(slots=True)
class _Mark:
    """The newest comment time delivered, and the ids at that instant (a cursor mark)."""

    top: datetime | None
    ids: set[str]

    def see(self, m: Mention) -> None:
        if self.top is None or m.created_at > self.top:
            self.top, self.ids = m.created_at, set()
        if m.created_at == self.top:
            self.ids.add(m.source_id)


class YouTubeSource:
    """Comments on one brand's channel and a periodic video search; see the module docstring."""

    def __init__(self, *, brand: str, api_key: str, channel_id: str | None = None, search: str | None = None,
                 search_every: timedelta = timedelta(days=1), units_per_day: int | None = 10_000,
                 api_root: str = "https://youtube.googleapis.com", name: str | None = None, max_pages: int = 3,
                 poll_every: timedelta = timedelta(minutes=30), timeout: float = 20.0,
                 policy: RetryPolicy | None = None, clock: Clock | None = None,
                 languages: Collection[str] = ()) -> None:
        remember_secret(api_key)  # an HttpError repeats the request URL, key= included
        self.brand = brand
        self.channel_id = channel_id
        self.search = search
        self.search_every = search_every
        self._budget = units_per_day
        self._name = name or f"youtube:{brand}"
        self.max_pages = max_pages
        self.poll_every = poll_every
        self.policy = policy or RetryPolicy()
        self.clock = clock or SystemClock()
        self.languages = frozenset(languages)
        self.service = build("youtube", "v3", developerKey=api_key, static_discovery=True, cache_discovery=False,
                             http=BoundedHttp(TimeoutSession(timeout, max_body=self.policy.max_body)),
                             client_options={"api_endpoint": api_root.rstrip("/") + "/"})

    @property
    def name(self) -> str:
        return self._name

    @property
    def daily_budget(self) -> int | None:
        return self._budget

    def __repr__(self) -> str:
        return f"YouTubeSource({self._name!r})"

    def _execute(self, request: Any, what: str, units: dict[str, int], cost: int) -> dict[str, Any]:
        """Run one prepared ``HttpRequest`` (retried when transient); API refusals become ``_Stop``.

        Every attempt costs ``cost`` quota units, a retried one too: Google counts each request it gets.
        """
        def attempt() -> Any:
            units["spent"] += cost
            return request.execute()

        try:
            answer = self.policy.call(attempt, transient=transient_google, what=f"{self.name} {what}")
        except HttpError as exc:
            reason, now = _reason(exc), self.clock.now()
            if reason in ("quotaExceeded", "dailyLimitExceeded"):
                until = next_quota_reset(now)
                raise _Stop(f"{what}: the project's daily quota is used up (quotaExceeded); deferred until "
                            f"{until:%Y-%m-%d %H:%M} UTC", until) from None
            if exc.resp.status == 429 or reason in ("rateLimitExceeded", "userRateLimitExceeded"):
                _wait, until = wait_or_defer(self.policy, reset_from_retry_after(exc.resp.get("retry-after"), now),
                                             now)
                raise _Stop(f"{what}: rate limited ({reason or 'HTTP 429'}) until {until:%H:%M:%S} UTC",
                            until) from None
            if exc.resp.status in (400, 401, 403) and reason in KEY_REFUSED:
                raise _Stop(f"{what}: the API refused the key (HTTP {exc.resp.status}, {reason}): check "
                            "YOUTUBE_API_KEY, that the YouTube Data API is enabled for its project and the key's "
                            "restrictions", blind=True) from None
            raise _Stop(f"{what}: HTTP {exc.resp.status}{f' ({reason})' if reason else ''}") from None
        except ValueError:
            raise _Stop(f"{what}: the API answered with malformed JSON; cursor kept") from None
        except Exception as exc:  # timeouts and connection errors after the retries
            raise _Stop(f"{what}: {type(exc).__name__}: {exc}") from None
        if not isinstance(answer, dict):
            raise _Stop(f"{what}: the API answered with malformed JSON; cursor kept")
        return answer

    def poll(self, cursor: str | None, *, requests_left: int | None = None) -> PollResult:
        state = load_cursor(cursor, self.name)
        units = {"spent": 0}
        found: list[Mention] = []
        skipped: list[str] = []
        problems: list[str] = []
        deferred: datetime | None = None
        blind = False

        def left() -> int | None:
            return None if requests_left is None else requests_left - units["spent"]

        for run in (self._comments, self._search):
            try:
                run(state, found, skipped, units, left)
            except _Stop as exc:
                problems.append(str(exc))
                deferred = exc.until or deferred
                blind = blind or exc.blind
                if exc.until is not None:
                    break  # quota and rate limits are per project: the other listing would fail too
        return PollResult(found, dump_cursor(state), skipped=skipped, requests=units["spent"],
                          problem="; ".join(problems) or None, deferred_until=deferred, blind=blind)

    def _comments(self, state: dict[str, Any], found: list[Mention], skipped: list[str], units: dict[str, int],
                  left: Callable[[], int | None]) -> None:
        if not self.channel_id:
            return
        newest = parse_time(state.get("comments_since"))
        seen = {str(s) for s in state.get("comments_seen") or [] if isinstance(s, str)}
        token = state.get("comments_next") if isinstance(state.get("comments_next"), str) else None
        if token is not None and newest is not None:  # draining a backlog: the newest delivered waits here
            mark = _Mark(parse_time(state.get("comments_newest")) or newest,
                         {str(s) for s in state.get("comments_newest_seen") or [] if isinstance(s, str)})
        else:
            token, mark = None, _Mark(newest, set(seen))
        # A failure (an exception) leaves the cursor where it was: the pages read are stored, and the next
        # poll reads them again down to what it has not seen.
        token = self._comment_pages(newest, seen, token, found, skipped, units, left, mark)
        for key in ("comments_next", "comments_newest", "comments_newest_seen"):
            state.pop(key, None)
        if token is not None and newest is not None:  # pages left: keep the old time, go on from the token
            state.update(comments_next=token, comments_newest=(mark.top or newest).isoformat(),
                         comments_newest_seen=sorted(mark.ids)[-MAX_SEEN:])
        elif mark.top is not None:
            state["comments_since"] = mark.top.isoformat()
            state["comments_seen"] = sorted(mark.ids)[-MAX_SEEN:]

    def _comment_pages(self, newest: datetime | None, seen: set[str], token: str | None, found: list[Mention],
                       skipped: list[str], units: dict[str, int], left: Callable[[], int | None],
                       mark: _Mark) -> str | None:
        """Read comment pages newest first from ``token``: the page token to go on from next poll when the page
        limit or the budget stopped it before reaching the cursor, else None."""
        for _page in range(self.max_pages if newest is not None else 1):  # a first poll: newest page only
            budget = left()
            if budget is not None and budget < COMMENT_UNITS:
                log.warning("%s: daily quota budget reached; comments wait for tomorrow", self.name)
                return token
            request = self.service.commentThreads().list(
                part="snippet,replies", allThreadsRelatedToChannelId=self.channel_id, order="time",
                maxResults=100, textFormat="plainText", pageToken=token)
            answer = self._execute(request, "comments", units, COMMENT_UNITS)
            older = False
            for thread in answer.get("items") or []:
                try:
                    mentions = mentions_from_thread(thread, brand=self.brand)
                except ValueError as exc:
                    skipped.append(f"{self.name}: skipped: {exc}")
                    continue
                for m in mentions:
                    if newest is not None and (m.created_at < newest or m.source_id in seen):
                        older = older or m.conversation_id is None
                        continue
                    found.append(m)
                    mark.see(m)
            token = answer.get("nextPageToken") if isinstance(answer.get("nextPageToken"), str) else None
            if token is None or older:
                return None
        if newest is None:
            return None  # a first poll starts from now: no backfill
        log.info("%s: more than %d page(s) of comments since the last poll; the rest follows next poll",
                 self.name, self.max_pages)
        return token

    def _search(self, state: dict[str, Any], found: list[Mention], skipped: list[str], units: dict[str, int],
                left: Callable[[], int | None]) -> None:
        if not self.search:
            return
        now = self.clock.now()
        last = parse_time(state.get("searched_at"))
        if last is not None and now - last < self.search_every:
            return
        budget = left()
        if budget is not None and budget < SEARCH_UNITS:
            log.info("%s: %d quota unit(s) left today, a search costs %d; searching tomorrow", self.name, budget,
                     SEARCH_UNITS)
            return
        after = (last or now - self.search_every).isoformat().replace("+00:00", "Z")
        request = self.service.search().list(part="snippet", q=self.search, type="video", order="date",
                                             publishedAfter=after, maxResults=50)
        answer = self._execute(request, "search", units, SEARCH_UNITS)
        have = {m.source_id for m in found}
        for item in answer.get("items") or []:
            try:
                m = mention_from_video(item, brand=self.brand)
            except ValueError as exc:
                skipped.append(f"{self.name}: skipped: {exc}")
                continue
            if m.source_id not in have:
                found.append(m)
        state["searched_at"] = now.isoformat()
