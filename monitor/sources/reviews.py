"""Reviews of the business (Google Business Profile, Trustpilot, Facebook, Google Play, App Store): one loop.

Each platform's client turns one page of its answer into ``RawReview`` values,
newest first; ``ReviewSource`` does the rest the same way for all of them:

* **Versions**: a review is stored under ``<platform id>@<rating><text hash>``
  with ``conversation_id`` the platform's id. A reviewer who edits a review
  (4 stars -> 1) makes a new version: a new row that is scored and goes
  through the rules again, because a rating that drops is news. The
  business's own reply changes no version: it is recorded on the row already
  stored (``store.mentions``), for the alert view and the digest.
* **Cursor**: the newest listing time read (``order_at``: the last edit where
  the platform sorts by it, else the creation) and the versions at that
  instant. Pages are read until one reaches the cursor; where the listing is
  sorted by creation, edited reviews on the pages read are taken too, and
  replies to reviews on the pages read are recorded. A page that fails
  (429, 5xx, a refused token) keeps the previous cursor, loudly: what was
  read is stored, the next poll reads the same span again (the store drops
  duplicates), so no review is passed over unseen. ``max_pages`` pages
  without reaching the cursor keep the old time plus the next page's token
  (``next``, with the newest read so far in ``newest``): the next polls go on
  from there until they reach the old time, and only then does the time move
  (like every source at its page limit). A first poll starts from the newest
  ``max_pages``.
* **Deleted reviews** simply stop appearing; what was stored stays until
  ``monitor forget`` (the platforms do not list deletions).
* **Reach** is the platform's weight (``reach`` in its block), not followers:
  a review is read by everyone who looks the business up there.
* **Personal data**: the reviewer's display name as the API gives it, nothing
  else of their profile.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import requests

from monitor.clock import Clock, SystemClock
from monitor.models import Mention, Review
from monitor.redact import remember_secret
from monitor.sources.base import PollResult
from monitor.sources.common import PollStop, dump_cursor, expected_language, fit_id, load_cursor, parse_time
from monitor.sources.resilience import RetryPolicy, TimeoutSession, reset_from_retry_after, transient_http

log = logging.getLogger(__name__)
MAX_SEEN = 200
DEFAULT_DEFER = timedelta(minutes=15)


class ReviewError(PollStop):
    """A page that did not come: ``until`` for a rate limit, ``blind`` when every request would fail alike
    (a refused token or permission: the source-health alert is raised at once, ``PollResult.blind``)."""

    def __init__(self, message: str, *, until: datetime | None = None, blind: bool = False,
                 status: int | None = None) -> None:
        super().__init__(message, until, blind=blind)
        self.status = status


@dataclass(frozen=True, slots=True)
class RawReview:
    """One review as a platform's client read it, before it becomes a ``Mention``."""

    id: str
    rating: int
    text: str
    created_at: datetime
    order_at: datetime  # the time the listing is sorted by (last edit, or creation)
    edited_at: datetime | None = None
    author: str | None = None
    language: str | None = None
    reply: str | None = None
    reply_at: datetime | None = None
    url: str | None = None
    answer_url: str | None = None

    @property
    def version(self) -> str:
        """The stored id: the platform's id and what the reviewer wrote (rating, text), not the reply."""
        digest = hashlib.sha1(f"{self.rating}\n{self.text}".encode()).hexdigest()[:10]
        return fit_id(f"{self.id}@{self.rating}{digest}")


@dataclass(slots=True)
class ReviewPage:
    reviews: list[RawReview] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    next: str | None = None  # the platform's token (or page number) for the next page; None: last page


class ReviewClient(Protocol):
    """One platform's listing of the business's reviews, newest first."""

    sorted_by_edit: bool  # True: the listing is sorted by last edit, so an edit comes back to the top

    @property
    def requests(self) -> int: ...

    def page(self, token: str | None) -> ReviewPage: ...


class _Counter(Protocol):
    @property
    def requests(self) -> int: ...


class CountedClient:
    """What the platforms' clients share: requests counted by their HTTP client, items parsed one by one."""

    sorted_by_edit = False
    what = "review"

    def __init__(self, http: _Counter) -> None:
        self.http = http

    @property
    def requests(self) -> int:
        return self.http.requests

    def parsed(self, items: Any, parse: Callable[[Any], RawReview], next_token: str | None) -> ReviewPage:
        """A page of the items ``parse`` accepts; each one it refuses is one skipped line."""
        out = ReviewPage(next=next_token)
        for item in items if isinstance(items, list) else []:
            try:
                out.reviews.append(parse(item))
            except ValueError as exc:
                out.skipped.append(f"{self.what} skipped: {exc}")
        return out


def no_text(rating: int) -> str:
    """The text of a review with stars only: the rules and the alert still have something to show."""
    return f"({rating}/5, no text)"


class ReviewSource:
    """The reviews of one business listing on one platform, polled with one cursor."""

    def __init__(self, *, name: str, brand: str, source: str, client: ReviewClient, reach: int,
                 max_pages: int = 5, languages: list[str] | None = None,
                 poll_every: timedelta = timedelta(minutes=30)) -> None:
        self._name, self.brand, self.source, self.client = name, brand, source, client
        self.reach, self.max_pages, self.languages = reach, max_pages, list(languages or [])
        self.poll_every = poll_every

    @property
    def name(self) -> str:
        return self._name

    def mention(self, raw: RawReview) -> Mention:
        return Mention(
            source=self.source, source_id=raw.version, brand=self.brand, text=raw.text or no_text(raw.rating),
            created_at=raw.edited_at or raw.created_at, url=raw.url, author_handle=raw.author,
            author_reach=self.reach, language=expected_language(raw.language, self.languages),
            conversation_id=fit_id(raw.id),
            review=Review(raw.rating, raw.reply, raw.reply_at, raw.edited_at, raw.answer_url),
        )

    def poll(self, cursor: str | None) -> PollResult:
        state = load_cursor(cursor, self.name)
        since = parse_time(state.get("since"))
        seen = {str(i) for i in state.get("ids") or [] if isinstance(i, str)}
        token = state.get("next") if isinstance(state.get("next"), str) and since is not None else None
        if token is not None:  # draining a backlog left at the page limit: the newest read so far waits here
            top = parse_time(state.get("newest")) or since
            top_ids = {str(i) for i in state.get("newest_ids") or [] if isinstance(i, str)}
        else:
            top, top_ids = since, set(seen)
        found: dict[str, Mention] = {}
        skipped: list[str] = []
        problem: str | None = None
        deferred: datetime | None = None
        blind = False
        before = self.client.requests
        complete = False
        resume: str | None = None  # the page to go on from next poll, when the page limit stopped this one
        for _ in range(self.max_pages):
            try:
                page = self.client.page(token)
            except ReviewError as exc:
                problem, deferred, blind = f"{exc}; cursor kept", exc.until, exc.blind
                break
            skipped += page.skipped
            reached = False
            for raw in page.reviews:
                version = raw.version
                if since is not None and (raw.order_at < since or (raw.order_at == since and version in seen)):
                    reached = True
                    # Older than the cursor but on a page read: an edit (where the listing is sorted by
                    # creation) or the business's reply is taken; the store drops versions it has and
                    # records the reply. The cursor does not move for it.
                    if raw.reply is not None or not self.client.sorted_by_edit:
                        found.setdefault(version, self.mention(raw))
                    continue
                found.setdefault(version, self.mention(raw))
                if top is None or raw.order_at > top:
                    top, top_ids = raw.order_at, set()
                if raw.order_at == top:
                    top_ids.add(version)
            if reached or page.next is None:
                complete = True
                break
            token = page.next
        else:
            if since is None:
                complete = True  # a first poll starts from the newest pages, like every source
            else:
                resume = token
                log.info("%s: more than %d page(s) of new reviews since the last poll; the rest follows next poll",
                         self.name, self.max_pages)
        if complete and top is not None:
            state = {"since": top.isoformat(), "ids": sorted(top_ids)[-MAX_SEEN:]}
        elif resume is not None and since is not None:
            state = {"since": since.isoformat(), "ids": sorted(seen)[-MAX_SEEN:], "next": resume,
                     "newest": (top or since).isoformat(), "newest_ids": sorted(top_ids)[-MAX_SEEN:]}
        return PollResult(list(found.values()), dump_cursor(state), skipped=skipped,
                          requests=self.client.requests - before, problem=problem, deferred_until=deferred,
                          blind=blind)


class JsonApi:
    """GET (and a token POST) to one REST API: timeouts, bounded retries on 5xx, errors as ``ReviewError``.

    The secret goes in a header (``headers``) never in a URL, so no log line or
    error message can carry it. ``fix`` says what to do when the API refuses
    the credentials (the variable to renew, the access to ask for).
    ``token_lifetime``: ``authorize``'s token is made again once it is this old
    (App Store Connect's JWT lives 20 minutes at most), not only after a 401.
    """

    def __init__(self, *, root: str, what: str, fix: str, timeout: float, policy: RetryPolicy | None = None,
                 clock: Clock | None = None, headers: dict[str, str] | None = None,
                 authorize: Callable[[JsonApi], str] | None = None,
                 token_lifetime: timedelta | None = None) -> None:
        self.root, self.what, self.fix = root.rstrip("/"), what, fix
        self.policy = policy or RetryPolicy()
        self.session = TimeoutSession(timeout, max_body=self.policy.max_body)
        for key, value in (headers or {}).items():
            remember_secret(value)
            self.session.headers[key] = value
        self.clock = clock or SystemClock()
        self.authorize = authorize
        self.token_lifetime = token_lifetime
        self.token_expires: datetime | None = None
        self.requests = 0

    def __repr__(self) -> str:
        return f"JsonApi({self.root!r})"

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON object at ``path``; with ``authorize``, an access token fetched first and once more
        when the API says it expired (401)."""
        url = path if path.startswith("http") else f"{self.root}/{path.lstrip('/')}"
        fresh = self._authorize(renew=False)
        try:
            return self.request("GET", url, params=params)
        except ReviewError as exc:
            if exc.status != 401 or fresh or not self._authorize(renew=True):
                raise
            return self.request("GET", url, params=params)

    def _authorize(self, *, renew: bool) -> bool:
        """Fetch an access token when there is none, it is too old (``token_lifetime``) or ``renew``; True when
        one was fetched now."""
        if self.authorize is None:
            return False
        expired = self.token_expires is not None and self.clock.now() >= self.token_expires
        if "Authorization" in self.session.headers and not renew and not expired:
            return False
        self.session.headers.pop("Authorization", None)
        token = self.authorize(self)
        remember_secret(token)
        self.session.headers["Authorization"] = f"Bearer {token}"
        if self.token_lifetime is not None:
            self.token_expires = self.clock.now() + self.token_lifetime
        return True

    def request(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        def once() -> requests.Response:
            self.requests += 1
            response = self.session.request(method, url, **kwargs)
            if response.status_code >= 500:
                response.raise_for_status()
            return response

        try:
            response = self.policy.call(once, transient=transient_http, what=self.what)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise ReviewError(f"{self.what}: HTTP {status}") from None
        except requests.RequestException as exc:
            raise ReviewError(f"{self.what}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise self.refusal(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ReviewError(f"{self.what}: the API answered with malformed JSON")
        return body

    def refusal(self, response: requests.Response) -> ReviewError:
        try:
            body = response.json()
        except ValueError:
            body = None
        return refusal(self.what, self.fix, response.status_code, detail=detail_of(body),
                       retry_after=response.headers.get("retry-after"), now=self.clock.now())


def refusal(what: str, fix: str, status: int, *, detail: str, retry_after: Any, now: datetime) -> ReviewError:
    """An API's refusal (HTTP ``status``) as a ``ReviewError``, the same for every review platform and client:
    429 defers until ``Retry-After`` (else ``DEFAULT_DEFER``), 401/403/404 make the source blind saying ``fix``."""
    if status == 429:
        retry = reset_from_retry_after(retry_after, now)
        until = retry if retry is not None and retry > now else now + DEFAULT_DEFER
        return ReviewError(f"{what}: rate limited (HTTP 429) until {until:%Y-%m-%d %H:%M:%S} UTC", until=until)
    if status in (401, 403):
        why = "credentials refused" if status == 401 else "permission missing"
        return ReviewError(f"{what}: {why} (HTTP {status}{': ' + detail if detail else ''}): {fix}",
                           blind=True, status=status)
    if status == 404:
        return ReviewError(f"{what}: not found (HTTP 404): check the id in monitor.yaml", blind=True, status=status)
    return ReviewError(f"{what}: HTTP {status}{': ' + detail if detail else ''}", status=status)


def detail_of(body: Any) -> str:
    """The API's own error message, short (Google: error.message; Trustpilot: message/details; Apple:
    errors[].detail)."""
    if not isinstance(body, dict):
        return ""
    err = body.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or "")[:200]
    if isinstance(err, str):
        return err[:200]
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("detail") or errors[0].get("title") or "")[:200]
    return str(body.get("message") or body.get("details") or "")[:200]


def titled(title: Any, body: Any) -> str:
    """A review's title and body as one text; the title once when the body starts with it (or is empty)."""
    head, rest = str(title or "").strip(), str(body or "").strip()
    return f"{head}\n{rest}" if head and rest and not rest.startswith(head) else (rest or head)


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
