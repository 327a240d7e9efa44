"""Facebook Page and Instagram professional account through Meta's Graph API (plain HTTP).

No maintained client fits reading (the official ``facebook-business`` SDK is
built for ads), so this is ``requests`` through the resilience layer. The
token goes in the ``Authorization`` header, never in a URL, so no request log
or error message can carry it; cursor paging uses ``paging.cursors.after``
with our own parameters rather than the ``paging.next`` URL for the same reason.

Facebook (``facebook:<brand>``), each listing optional:

* ``comments``: comments **and replies** (``filter=stream``) on the page's
  ``recent_posts`` newest posts, since the newest one already received;
* ``visitor_posts``: what visitors post on the page (``since``);
* ``tagged``: posts elsewhere that tag the page (``since``).

Instagram (``instagram:<brand>``): comments and their replies on the
account's ``recent_media`` newest media, and ``/tags``, media in which the
account is tagged. Instagram has no ``since``: items are filtered on their
``timestamp`` against the cursor.

**Reach**: the Graph API does not give a commenter's audience, so a comment's
reach is the engagement of the post it is on (reactions + comments + shares;
likes + comments on Instagram), and its engagement is its own likes plus
replies; a post's reach is its own engagement. Say so when reading numbers.

The cursor (JSON) keeps, per listing, the newest ``created_time`` received
and the ids at that instant. A listing that did not answer completely (one
post's comments failed, page 2 failed) keeps its previous cursor: what it did
get is stored, and the next poll reads the same span again (the store drops
the duplicates), so no comment older than the failure is passed over.
A poll reads at most ``max_pages`` pages per post (per listing); when it stops
with pages left, the listing keeps its old time plus each such post's page
token (``resume``), and the next polls read only those posts on from there
(a failed page keeps its token) until the backlog is read; only then does the
time move to the newest item received. The very first poll reads the newest
pages only (no backfill).

Errors: an answer that means "we cannot see" stops the poll and makes the
source failing with what to fix: code 190 (token expired or revoked, renew
the variable), codes 10 and 200-299 and a code 100 naming a permission (grant
it to the token); codes 4, 17, 32, 613 and 80001 (rate limits) defer the
source until the usage header (or ``Retry-After``) says, else 15 minutes;
5xx, timeouts and code 1/2 are retried. Only an object that no longer exists
(a removed or hidden post or comment, code 100 subcode 33) is skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests

from monitor.clock import Clock, SystemClock
from monitor.models import Mention
from monitor.redact import remember_secret
from monitor.sources.base import PollResult
from monitor.sources.common import count, dump_cursor, fit_id, load_cursor, parse_time
from monitor.sources.resilience import RetryPolicy, TimeoutSession, reset_from_retry_after, transient_http

log = logging.getLogger(__name__)

RATE_LIMIT_CODES = {4, 17, 32, 613, 80001}
TRANSIENT_CODES = {1, 2}
MAX_SEEN = 200


PERMISSION_CODES = {10} | set(range(200, 300))
GONE = (100, 33)  # "Object does not exist, cannot be loaded due to missing permissions, or does not support this"
TOKEN_VAR = "FACEBOOK_PAGE_TOKEN"


class GraphError(Exception):
    """An error answer of the Graph API: ``code`` as documented, ``until`` set for a rate limit.

    ``blind`` marks an answer that will be the same for every request made
    with this token (expired, missing permission): the poll stops there and
    the source is failing. ``gone`` marks the one answer that concerns a
    single item (removed or hidden): only that item is skipped.
    """

    def __init__(self, message: str, code: int | None = None, until: datetime | None = None, *,
                 blind: bool = False, gone: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.until = until
        self.blind = blind
        self.gone = gone


class _Transient(Exception):
    pass


class GraphClient:
    """GET requests to one Graph API version with a token, bounded retries and error decoding."""

    def __init__(self, *, token: str, root: str = "https://graph.facebook.com", version: str = "v21.0",
                 timeout: float = 20.0, session: requests.Session | None = None, policy: RetryPolicy | None = None,
                 clock: Clock | None = None) -> None:
        remember_secret(token)
        self.base = f"{root.rstrip('/')}/{version}"
        self.policy = policy or RetryPolicy()
        self.session = session or TimeoutSession(timeout, max_body=self.policy.max_body)
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.clock = clock or SystemClock()
        self.requests = 0

    def __repr__(self) -> str:
        return f"GraphClient({self.base!r})"

    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        def once() -> requests.Response:
            self.requests += 1
            response = self.session.get(f"{self.base}/{path}", params=params)
            if response.status_code >= 500:
                response.raise_for_status()
            code = _error(response).get("code")
            if code in TRANSIENT_CODES:
                raise _Transient(f"Graph API error {code}")
            return response

        def transient(exc: BaseException) -> bool:
            return isinstance(exc, _Transient) or transient_http(exc)

        try:
            response = self.policy.call(once, transient=transient, what=f"Graph API {path.split('/')[-1]}")
        except requests.HTTPError as exc:
            raise GraphError(f"HTTP {exc.response.status_code if exc.response is not None else '?'}") from None
        except (_Transient, requests.RequestException) as exc:
            raise GraphError(f"{type(exc).__name__}: {exc}") from None
        err = _error(response)
        if err or response.status_code >= 400:
            raise self._refusal(response, err)
        try:
            body = response.json()
        except ValueError:
            raise GraphError("the API answered with malformed JSON; cursor kept") from None
        if not isinstance(body, dict):
            raise GraphError("the API answered with malformed JSON; cursor kept")
        return body

    def _refusal(self, response: requests.Response, err: dict[str, Any]) -> GraphError:
        code, sub = err.get("code"), err.get("error_subcode")
        message = str(err.get("message") or f"HTTP {response.status_code}")[:200]
        number = f"{code}{f'/{sub}' if sub else ''}"
        if code == 190:
            return GraphError(f"access token expired or revoked (Graph API error {number}): renew {TOKEN_VAR}", 190,
                              blind=True)
        if code in RATE_LIMIT_CODES or response.status_code == 429:
            until = self.clock.now() + _regain(response.headers, self.clock.now())
            return GraphError(f"rate limited (Graph API error {code}) until {until:%Y-%m-%d %H:%M:%S} UTC", code,
                              until)
        if (code, sub) == GONE:
            return GraphError(f"object no longer exists or is hidden: {message}", 100, gone=True)
        if code in PERMISSION_CODES or (code == 100 and "permission" in message.lower()):
            return GraphError(f"permission missing (Graph API error {number}: {message}): grant it to the token in "
                              f"{TOKEN_VAR} (the app's permissions and the page role of its user)", code,
                              blind=True)
        return GraphError(f"Graph API error {number}: {message}", code if isinstance(code, int) else None)

    def pages(self, path: str, params: dict[str, Any], max_pages: int,
              after: str | None = None) -> Iterator[tuple[list[Any], str | None]]:
        """The ``data`` of each page and the token of the page after it (None: the last page).

        Follows ``paging.cursors.after`` from ``after`` for at most ``max_pages``;
        the last token yielded is where a later poll goes on.
        """
        for _ in range(max_pages):
            body = self.get(path, {**params, **({"after": after} if after else {})})
            data = body.get("data")
            paging = _obj(body.get("paging"))
            token = _obj(paging.get("cursors")).get("after") if paging.get("next") else None
            after = token if isinstance(token, str) and token else None
            yield (data if isinstance(data, list) else []), after
            if after is None:
                return


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _error(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else {}


def _regain(headers: Any, now: datetime) -> timedelta:
    """How long a rate limit lasts: ``estimated_time_to_regain_access`` (minutes) of the business-use-case
    usage header, else ``Retry-After``, else 15 minutes."""
    try:
        usage = json.loads(headers.get("x-business-use-case-usage") or "{}")
        minutes = max(int(entry.get("estimated_time_to_regain_access") or 0)
                      for entries in usage.values() for entry in entries)
    except (ValueError, TypeError, AttributeError):
        minutes = 0
    if minutes > 0:
        return timedelta(minutes=minutes)
    retry = reset_from_retry_after(headers.get("retry-after"), now)
    if retry is not None and retry > now:
        return retry - now
    return timedelta(minutes=15)


@dataclass(slots=True)
class _Listing:
    """One listing's cursor: the newest time delivered and the ids at that instant, and its backlog.

    ``resume`` holds, per parent (a post's comments, or the listing itself),
    the page token to go on from when a poll stopped at ``max_pages`` with
    pages left (or a page failed while draining). While it is not empty the
    listing is *draining*: only those parents are read, from their tokens,
    with the same ``since`` (the floor), and the newest item seen so far waits
    in ``top``; the floor moves up to it only once the backlog is read.
    """

    since: datetime | None = None
    ids: set[str] = field(default_factory=set)
    top: datetime | None = None
    top_ids: set[str] = field(default_factory=set)
    resume: dict[str, dict[str, Any]] = field(default_factory=dict)
    draining: bool = False
    incomplete: bool = False  # a parent or a page failed: the cursor stays where it was

    @classmethod
    def load(cls, raw: Any) -> _Listing:
        raw = raw if isinstance(raw, dict) else {}
        since = parse_time(raw.get("since"))
        ids = {str(i) for i in raw.get("ids") or [] if isinstance(i, str)}
        resume = {str(k): v for k, v in _obj(raw.get("resume")).items() if isinstance(v, dict)}
        if not resume or since is None:
            return cls(since, ids, since, set(ids))
        top = parse_time(raw.get("newest")) or since
        top_ids = {str(i) for i in raw.get("newest_ids") or [] if isinstance(i, str)}
        return cls(since, ids, top, top_ids, resume, draining=True)

    def fresh(self, item_id: str, at: datetime) -> bool:
        """True the first time an item at or after the cursor is seen; moves the mark."""
        if self.since is not None and (at < self.since or (at == self.since and item_id in self.ids)):
            return False
        if self.top is None or at > self.top:
            self.top, self.top_ids = at, set()
        if at == self.top:
            self.top_ids.add(item_id)
        return True

    def hold(self) -> None:
        """A failure: a fresh read keeps its previous cursor (read again next poll); a draining one keeps
        each parent's token where it stopped, so nothing is to do."""
        if not self.draining:
            self.incomplete = True

    def dump(self) -> dict[str, Any] | None:
        """The cursor to keep; None (keep the previous one) when nothing was read or the listing is incomplete."""
        if self.incomplete:
            return None
        if self.resume and self.since is not None:
            top = self.top or self.since
            return {"since": self.since.isoformat(), "ids": sorted(self.ids)[-MAX_SEEN:],
                    "newest": top.isoformat(), "newest_ids": sorted(self.top_ids)[-MAX_SEEN:],
                    "resume": self.resume}
        if self.top is None:
            return None
        return {"since": self.top.isoformat(), "ids": sorted(self.top_ids)[-MAX_SEEN:]}


@dataclass(frozen=True, slots=True)
class _Parent:
    """What one listing pages through: a post's (media's) comments, or the listing itself.

    ``label`` is set for a post's comments: its failure is that post's alone
    (the other posts are still read); a listing's own failure ends the listing.
    """

    path: str
    reach: int = 0
    url: str | None = None
    label: str | None = None


def post_engagement(post: dict[str, Any]) -> int:
    """Reactions + comments + shares of a Facebook post; likes + comments of Instagram media."""
    def total(key: str) -> int:
        part = post.get(key)
        summary = part.get("summary") if isinstance(part, dict) else None
        return count(summary.get("total_count")) if isinstance(summary, dict) else 0

    shares = post.get("shares")
    return (total("reactions") + total("comments") + (count(shares.get("count")) if isinstance(shares, dict) else 0)
            + count(post.get("like_count")) + count(post.get("comments_count")))


def graph_mention(item: Any, *, source: str, brand: str, reach: int, conversation: str | None = None,
                  url: str | None = None) -> Mention:
    """A Facebook comment/post or Instagram comment/media as a Mention; ValueError when removed or unusable."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise ValueError("item without an id")
    text = str(item.get("message") or item.get("text") or item.get("caption") or "").strip()
    if not text:
        raise ValueError(f"{item['id']} has no text (removed, hidden or a photo without caption)")
    created = parse_time(item.get("created_time") or item.get("timestamp"))
    if created is None:
        raise ValueError(f"{item['id']}: no created_time")
    handle = item.get("username") or _obj(item.get("from")).get("name")
    parent = _obj(item.get("parent"))
    replies = item.get("comment_count")
    nested = _obj(item.get("replies"))
    return Mention(
        source=source, source_id=fit_id(item["id"]), brand=brand, text=text, created_at=created,
        url=str(item.get("permalink_url") or item.get("permalink") or url or "") or None,
        author_handle=str(handle) if handle else None, author_reach=reach,
        engagement=count(item.get("like_count")) + count(replies) + len(nested.get("data") or []),
        conversation_id=str(parent.get("id") or conversation) if parent.get("id") or conversation else None,
    )


@dataclass(slots=True)
class _Poll:
    """What one poll gathers across listings."""

    found: list[Mention] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    deferred: datetime | None = None
    blind: bool = False  # a token or permission error: the source cannot see

    def add(self, where: str, item: Any, listing: _Listing, **kwargs: Any) -> bool:
        """Keep the item when new; True when it is at or before the cursor (the page reached known items)."""
        try:
            m = graph_mention(item, **kwargs)
        except ValueError as exc:
            self.skipped.append(f"{where}: skipped: {exc}")
            return False
        if not listing.fresh(m.source_id, m.created_at):
            return True
        if m.source_id not in {f.source_id for f in self.found}:
            self.found.append(m)
        return False

    def result(self, state: dict[str, Any], listings: dict[str, _Listing], requests: int) -> PollResult:
        for key, listing in listings.items():
            dumped = listing.dump()
            if dumped is not None:
                state[key] = dumped
        return PollResult(self.found, dump_cursor(state), skipped=self.skipped, requests=requests,
                          problem="; ".join(self.problems) or None, deferred_until=self.deferred,
                          blind=self.blind)

    def fail(self, where: str, exc: GraphError, listing: _Listing) -> bool:
        """Record a failure in a listing, whose cursor then stays; True when the whole poll must stop."""
        listing.hold()
        self.problems.append(f"{where}: {exc}")
        self.blind = self.blind or exc.blind
        if exc.until is not None:
            self.deferred = exc.until
        return exc.until is not None or exc.blind

    def parent_failed(self, where: str, exc: GraphError, listing: _Listing) -> None:
        """One post's (media's) comments failed: skip it when it is gone, else hold the cursor and go on.

        A token or rate-limit error is re-raised: every other parent would
        answer the same.
        """
        if exc.gone:
            self.skipped.append(f"{where} skipped: {exc}")
            return
        if exc.blind or exc.until is not None:
            raise exc
        listing.hold()
        self.problems.append(f"{where}: {exc}")


class _GraphSource:
    """What the Facebook and Instagram sources share: one cursor per listing, read in turn, one result.

    A listing pages through its parents (each post's comments, or itself);
    a parent that still has pages after ``max_pages`` leaves its page token
    in the listing's ``resume``, and the next polls read only those parents
    from there until the backlog is read (see ``_Listing``).
    """

    _name: str
    client: GraphClient
    listings: list[str]
    max_pages: int
    parent_noun: str  # what a failed parent is called in a problem line: "post", "media"

    @property
    def name(self) -> str:
        return self._name

    def poll(self, cursor: str | None) -> PollResult:
        state = load_cursor(cursor, self.name)
        listings = {n: _Listing.load(state.get(n)) for n in self.listings}
        out = _Poll()
        before = self.client.requests
        for which in self.listings:
            try:
                self._read(which, listings[which], out)
            except GraphError as exc:
                if out.fail(which, exc, listings[which]):
                    break
        return out.result(state, listings, self.client.requests - before)

    def _read(self, which: str, listing: _Listing, out: _Poll) -> None:
        if listing.draining:
            parents = [_Parent(path, count(entry.get("reach")), entry.get("url") if isinstance(entry.get("url"), str)
                               else None, self._label(which, path)) for path, entry in list(listing.resume.items())]
        else:
            parents = self._parents(which)
        params = self._params(which, listing)
        for parent in parents:
            try:
                self._page_through(which, parent, params, listing, out)
            except GraphError as exc:
                if parent.label is None:
                    raise
                if exc.gone:
                    listing.resume.pop(parent.path, None)
                out.parent_failed(parent.label, exc, listing)

    def _page_through(self, which: str, parent: _Parent, params: dict[str, Any], listing: _Listing,
                      out: _Poll) -> None:
        """Read one parent from its resume token (or its first page); leave a token when pages remain.

        A failed page raises with the parent's entry at that page (kept when
        draining). A parent whose page reached items at or before the cursor
        needs no more pages.
        """
        entry = listing.resume.get(parent.path)
        start = entry.get("after") if entry and isinstance(entry.get("after"), str) else None
        after, reached = start, False
        for data, token in self.client.pages(parent.path, params, self.max_pages, start):
            after = token
            for item in data:
                reached = self._emit(which, parent, item, listing, out) or reached
            if listing.draining and parent.path in listing.resume:
                listing.resume[parent.path] = {"after": after, "reach": parent.reach, "url": parent.url}
        if after is None or reached or listing.since is None:  # read to the end, or a first poll (no backfill)
            listing.resume.pop(parent.path, None)
            return
        listing.resume[parent.path] = {"after": after, "reach": parent.reach, "url": parent.url}
        log.info("%s %s: more than %d page(s) since the last poll; the rest follows next poll", self.name,
                 parent.path, self.max_pages)

    def _commented(self, path: str, fields: str, limit: int, link: str) -> list[_Parent]:
        """The newest ``limit`` own posts (media) at ``path``, as the parents of the comments listing."""
        (posts, _) = next(self.client.pages(path, {"fields": fields, "limit": limit}, 1))
        return [_Parent(f"{post['id']}/comments", post_engagement(post), post.get(link),
                        self._label("comments", f"{post['id']}/comments"))
                for post in posts if isinstance(post, dict) and isinstance(post.get("id"), str)]

    def _label(self, which: str, path: str) -> str | None:
        """A post's comments fail on their own ("comments: post 1010_2020"); a listing's failure ends it."""
        return f"comments: {self.parent_noun} {path.split('/')[0]}" if which == "comments" else None

    def _parents(self, which: str) -> list[_Parent]:
        raise NotImplementedError

    def _params(self, which: str, listing: _Listing) -> dict[str, Any]:
        raise NotImplementedError

    def _emit(self, which: str, parent: _Parent, item: Any, listing: _Listing, out: _Poll) -> bool:
        raise NotImplementedError


POST_FIELDS = ("id,message,created_time,permalink_url,from{name},reactions.summary(true).limit(0),"
               "comments.summary(true).limit(0),shares")
MEDIA_FIELDS = "id,caption,timestamp,permalink,username,like_count,comments_count"


class FacebookSource(_GraphSource):
    """The brand's Facebook Page: comments on its posts, visitor posts, posts tagging it."""

    source = "facebook"
    parent_noun = "post"

    def __init__(self, *, brand: str, page_id: str, client: GraphClient, comments: bool = True,
                 visitor_posts: bool = True, tagged: bool = True, recent_posts: int = 10, max_pages: int = 5,
                 name: str | None = None, poll_every: timedelta = timedelta(minutes=10)) -> None:
        self.brand, self.page_id, self.client = brand, page_id, client
        self.listings = [n for n, on in (("comments", comments), ("visitor_posts", visitor_posts),
                                         ("tagged", tagged)) if on]
        self.recent_posts, self.max_pages = recent_posts, max_pages
        self._name = name or f"facebook:{brand}"
        self.poll_every = poll_every

    def _parents(self, which: str) -> list[_Parent]:
        if which != "comments":
            return [_Parent(f"{self.page_id}/{which}")]
        return self._commented(f"{self.page_id}/posts", POST_FIELDS, self.recent_posts, "permalink_url")

    def _params(self, which: str, listing: _Listing) -> dict[str, Any]:
        since = {"since": int(listing.since.timestamp())} if listing.since else {}
        if which != "comments":
            return {"fields": POST_FIELDS, **since}
        return {"filter": "stream", "order": "reverse_chronological", **since,
                "fields": "id,message,created_time,permalink_url,from{name},like_count,comment_count,parent{id}"}

    def _emit(self, which: str, parent: _Parent, item: Any, listing: _Listing, out: _Poll) -> bool:
        if which != "comments":
            return out.add(f"{self.name} {which}", item, listing, source=self.source, brand=self.brand,
                           reach=post_engagement(item) if isinstance(item, dict) else 0)
        return out.add(f"{self.name} comments", item, listing, source=self.source, brand=self.brand,
                       reach=parent.reach, conversation=parent.path.split("/")[0], url=parent.url)


class InstagramSource(_GraphSource):
    """The brand's Instagram professional account: comments on its media, media it is tagged in."""

    source = "instagram"
    parent_noun = "media"

    def __init__(self, *, brand: str, account_id: str, client: GraphClient, comments: bool = True,
                 mentions: bool = True, recent_media: int = 10, max_pages: int = 5, name: str | None = None,
                 poll_every: timedelta = timedelta(minutes=10)) -> None:
        self.brand, self.account_id, self.client = brand, account_id, client
        self.listings = [n for n, on in (("comments", comments), ("tags", mentions)) if on]
        self.recent_media, self.max_pages = recent_media, max_pages
        self._name = name or f"instagram:{brand}"
        self.poll_every = poll_every

    def _parents(self, which: str) -> list[_Parent]:
        if which == "tags":
            return [_Parent(f"{self.account_id}/tags")]
        return self._commented(f"{self.account_id}/media", MEDIA_FIELDS, self.recent_media, "permalink")

    def _params(self, which: str, listing: _Listing) -> dict[str, Any]:
        if which == "tags":
            return {"fields": MEDIA_FIELDS}
        return {"fields": "id,text,timestamp,username,like_count,replies{id,text,timestamp,username,like_count}"}

    def _emit(self, which: str, parent: _Parent, item: Any, listing: _Listing, out: _Poll) -> bool:
        if which == "tags":
            return out.add(f"{self.name} tags", item, listing, source=self.source, brand=self.brand,
                           reach=post_engagement(item) if isinstance(item, dict) else 0)
        known = out.add(f"{self.name} comments", item, listing, source=self.source, brand=self.brand,
                        reach=parent.reach, conversation=parent.path.split("/")[0], url=parent.url)
        nested = item.get("replies") if isinstance(item, dict) else None
        for reply in (nested.get("data") if isinstance(nested, dict) else None) or []:
            out.add(f"{self.name} replies", reply, listing, source=self.source, brand=self.brand,
                    reach=parent.reach, conversation=str(item.get("id")), url=parent.url)
        return known
