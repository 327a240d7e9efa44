"""Reads ``monitor.yaml`` (what to collect), the file the operator edits.

The one module that knows that file: brands, X queries, subreddits, feeds,
languages, poll intervals, budgets and HTTP limits, plus the source names the
store keys cursors and health on. It lives with the sources because they are
its only consumers (``sources/factory.py`` builds them from it); ``monitor
check``, ``monitor run`` and ``monitor sources`` load it through ``load_collect``.

One pydantic model is the single source of truth for the format (like the rule
and escalation files), validated through ``monitor.yamlconfig.parse`` so a typo
reads ``monitor.yaml:12:5: brands.Lumora.x: unknown key 'querry'; did you mean
'query'?``. Secrets never live here: the X token comes from ``X_BEARER_TOKEN``
and Reddit's client id/secret from praw's own ``praw_*`` variables or
``praw.ini``; an unknown key such as ``bearer_token`` is rejected like any typo.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.durations import Duration, PositiveDuration
from monitor.langcodes import language_codes, language_problem
from monitor.yamlconfig import parse

# cursors.source and source_health.source are String(64): a source name must fit.
MAX_SOURCE_NAME = 64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _positive(value: timedelta, what: str) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"{what} must be longer than zero")
    return value


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|bytes?|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "byte": 1, "bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20,
          "gib": 2**30}


def _byte_size(value: object) -> object:
    """'5 MB', '512kB', '2 MiB' or a plain number of bytes, as bytes; anything else is left for pydantic to refuse."""
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"expected a size like '5 MB' or '500 kB', got {value!r}")
        return int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])
    return value


class HttpConfig(_Strict):
    """How every source talks to its API: bounded waits so one slow API never stalls the worker."""

    timeout: Duration = Field(default=timedelta(seconds=20),
                              description="Per HTTP request, from connecting to the last byte of the answer")
    max_body: int = Field(default=5_000_000, ge=1_000,
                          description="Largest answer read, e.g. '5 MB'; a larger one fails the poll, saying so")
    attempts: int = Field(default=3, ge=1, le=10,
                          description="Tries for a 5xx, a timeout or a dropped connection (1 = no retry)")
    backoff: Duration = Field(default=timedelta(seconds=2),
                              description="First wait between tries; doubles each time, with jitter")
    rate_limit_max_wait: Duration = Field(
        default=timedelta(seconds=60),
        description="Wait out a 429 whose reset is at most this far away; a later reset skips polls until then",
    )

    @field_validator("timeout")
    @classmethod
    def _timeout_positive(cls, value: timedelta) -> timedelta:
        return _positive(value, "the timeout")

    _size = field_validator("max_body", mode="before")(classmethod(lambda cls, v: _byte_size(v)))


class XQuery(_Strict):
    """Recent search (last 7 days) through the X API v2 with an app bearer token."""

    query: str = Field(min_length=1, max_length=4096,
                       description='X search syntax, e.g. "Lumora" OR @lumora_be -is:retweet')
    poll_every: Duration = Field(default=timedelta(minutes=5), description="Time between polls")
    requests_per_day: int | None = Field(
        default=None, ge=1,
        description="Most search requests a UTC day (X bills every read); counted in the store across restarts",
    )
    max_pages_per_poll: int = Field(default=5, ge=1, le=100,
                                    description="Pages of up to 100 posts one poll may read; the rest next poll")

    @field_validator("poll_every")
    @classmethod
    def _poll_positive(cls, value: timedelta) -> timedelta:
        return _positive(value, "the poll interval")


class RedditQuery(_Strict):
    """Public posts through praw in read-only mode (app credentials from praw's own configuration)."""

    subreddits: list[str] = Field(default_factory=list,
                                  description="Without r/, e.g. [belgium, brussels]; none = search all of Reddit")
    query: str | None = Field(default=None, min_length=1,
                              description="Reddit search syntax; searched in the subreddits (or all), newest first")
    submissions: bool = Field(default=True,
                              description="Also read new posts of the subreddits, kept when they name the brand")
    comments: bool = Field(default=True,
                           description="Also read new comments of the subreddits, kept when they name the brand")
    poll_every: PositiveDuration = Field(default=timedelta(minutes=5), description="Time between polls")
    max_items: int = Field(default=300, ge=1, le=1000, description="Most items read per listing per poll")
    lookback: Duration = Field(
        default=timedelta(hours=1),
        description="How late an item may show up in a listing (search indexes lag) and still be collected",
    )
    first_poll: Duration = Field(default=timedelta(days=1),
                                 description="On the very first poll, collect items at most this old")

    @field_validator("subreddits")
    @classmethod
    def _clean_subreddits(cls, value: list[str]) -> list[str]:
        cleaned = []
        for name in value:
            bare = name.strip().removeprefix("/").removeprefix("r/")
            if not re.fullmatch(r"[A-Za-z0-9_]{2,21}", bare):
                raise ValueError(f"{name!r} is not a subreddit name (letters, digits and _ , e.g. belgium)")
            cleaned.append(bare)
        return cleaned

    @model_validator(mode="after")
    def _something_to_read(self) -> RedditQuery:
        if not self.subreddits and not self.query:
            raise ValueError("give subreddits, a query, or both")
        return self


class Feed(_Strict):
    """An RSS or Atom feed of a news site or blog; items naming the brand become mentions."""

    name: str = Field(min_length=1, max_length=40, description="Site name, shown as the author of its items")
    url: str = Field(description="http(s) URL of the RSS/Atom feed")
    reach: int = Field(default=0, ge=0, description="Audience of the outlet, used as the author reach of its items")
    poll_every: PositiveDuration = Field(default=timedelta(minutes=15), description="Time between polls")
    language: str | None = Field(default=None, description="Language of the feed when it does not declare one")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value

    @field_validator("language")
    @classmethod
    def _language_code(cls, value: str | None) -> str | None:
        problem = language_problem(value) if value is not None else None
        if problem is not None:
            raise ValueError(problem)
        return value


class Brand(_Strict):
    """One brand: its names and where to look for them."""

    keywords: list[str] = Field(
        default_factory=list,
        description="Names matched as whole words (any case) in Reddit listings and feeds; default: the brand name",
    )
    languages: list[str] = Field(default_factory=lambda: ["nl", "fr", "en"],
                                 description="Languages expected; a platform's language tag outside these is ignored")
    x: XQuery | None = None
    reddit: RedditQuery | None = None
    feeds: list[Feed] = Field(default_factory=list)
    # The sources of issue 18 (models at the end of this module).
    mastodon: MastodonQuery | None = None
    bluesky: BlueskyQuery | None = None
    youtube: YouTubeQuery | None = None
    facebook: FacebookQuery | None = None
    instagram: InstagramQuery | None = None
    google_news: GoogleNewsQuery | None = None

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, value: list[str]) -> list[str]:
        return language_codes(value)

    @field_validator("keywords")
    @classmethod
    def _keywords_not_blank(cls, value: list[str]) -> list[str]:
        if any(not k.strip() for k in value):
            raise ValueError("a keyword cannot be empty")
        return value

    @field_validator("feeds")
    @classmethod
    def _unique_feed_names(cls, value: list[Feed]) -> list[Feed]:
        seen: set[str] = set()
        for feed in value:
            if feed.name.casefold() in seen:
                raise ValueError(f"two feeds are named {feed.name!r}; names identify a feed's cursor")
            seen.add(feed.name.casefold())
        return value


class RedditClient(_Strict):
    """Where praw connects; credentials stay in praw.ini or the praw_* environment variables."""

    site: str | None = Field(default=None, description="Section of praw.ini to use")
    oauth_url: str | None = Field(default=None, description="Override of https://oauth.reddit.com (tests, proxies)")
    reddit_url: str | None = Field(default=None, description="Override of https://www.reddit.com (token exchange)")


class CollectConfig(_Strict):
    """The whole of ``monitor.yaml``."""

    source_unhealthy_after: Duration = Field(
        default=timedelta(hours=2),
        description="A source failing (or rate limited) this long raises a source-health alert",
    )
    http: HttpConfig = Field(default_factory=HttpConfig)
    reddit_client: RedditClient = Field(default_factory=RedditClient)
    brands: dict[str, Brand] = Field(description="Brand name -> what to collect for it")

    @field_validator("source_unhealthy_after")
    @classmethod
    def _unhealthy_positive(cls, value: timedelta) -> timedelta:
        return _positive(value, "source_unhealthy_after")

    @field_validator("brands")
    @classmethod
    def _names_fit(cls, value: dict[str, Brand]) -> dict[str, Brand]:
        if not value:
            raise ValueError("list at least one brand")
        for name, brand in value.items():
            if not name.strip() or ":" in name:
                raise ValueError(f"brand name {name!r} must be non-empty and without ':'")
            for source in source_names(name, brand):
                if len(source) > MAX_SOURCE_NAME:
                    raise ValueError(f"source name {source!r} is longer than {MAX_SOURCE_NAME} characters; "
                                     "shorten the brand or feed name")
        return value

    def keywords(self, brand: str) -> list[str]:
        return list(self.brands[brand].keywords) or [brand]


def x_source_name(brand: str) -> str:
    return f"x:{brand}"


def reddit_source_name(brand: str) -> str:
    return f"reddit:{brand}"


def feed_source_name(brand: str, feed: str) -> str:
    return f"news:{brand}:{feed}"


def source_names(name: str, brand: Brand) -> list[str]:
    """Names of the sources a brand configures: the keys of their cursors and health rows."""
    names = []
    if brand.x is not None:
        names.append(x_source_name(name))
    if brand.reddit is not None:
        names.append(reddit_source_name(name))
    names.extend(feed_source_name(name, feed.name) for feed in brand.feeds)
    names.extend(social_source_names(name, brand))
    return names


def load_collect(path: Path) -> CollectConfig:
    """Raises ``ConfigInvalid`` listing every problem with file, line and key."""
    return parse(CollectConfig, path)


# --- Mastodon, Bluesky, YouTube, Facebook, Instagram, Google News (issue 18) -------------------------
# Credentials come from the environment (monitor/settings.py); only where to look lives here.

def _base_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    return value.rstrip("/")


class _Polled(_Strict):
    poll_every: Duration = Field(default=timedelta(minutes=10), description="Time between polls")
    max_pages_per_poll: int = Field(default=3, ge=1, le=50,
                                    description="Pages one poll may read; a backlog continues on the next polls")

    @field_validator("poll_every")
    @classmethod
    def _poll_positive(cls, value: timedelta) -> timedelta:
        return _positive(value, "the poll interval")


class MastodonQuery(_Polled):
    """Search (API v2, statuses) and hashtag timelines on one or more Mastodon instances."""

    instances: list[str] = Field(default_factory=lambda: ["https://mastodon.social"], min_length=1,
                                 description="Base URLs of the instances to read; one source each")
    query: str | None = Field(default=None, min_length=1, description="Full-text search (needs a login on many "
                                                                       "instances: MASTODON_ACCESS_TOKEN)")
    hashtags: list[str] = Field(default_factory=list, description="Hashtag timelines, without #")
    account_instance: str | None = Field(
        default=None, description="The instance MASTODON_ACCESS_TOKEN belongs to; only it receives the token")

    _urls = field_validator("instances")(classmethod(lambda cls, v: [_base_url(u) for u in v]))

    @field_validator("hashtags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        tags = [t.strip().lstrip("#") for t in value]
        if any(not re.fullmatch(r"\w+", t) for t in tags):
            raise ValueError("a hashtag is letters, digits and _ (e.g. lumora)")
        return tags

    @model_validator(mode="after")
    def _something_to_read(self) -> MastodonQuery:
        if not self.query and not self.hashtags:
            raise ValueError("give a query, hashtags, or both")
        return self


class BlueskyQuery(_Polled):
    """``app.bsky.feed.searchPosts`` with a logged-in session (BLUESKY_HANDLE, BLUESKY_APP_PASSWORD)."""

    query: str = Field(min_length=1, description="Bluesky search syntax, e.g. Lumora OR lumora.be")
    service: str = Field(default="https://bsky.social", description="Where to log in and search (PDS/entryway)")
    poll_every: Duration = Field(default=timedelta(minutes=5), description="Time between polls")

    _url = field_validator("service")(classmethod(lambda cls, v: _base_url(v)))


class YouTubeQuery(_Polled):
    """Comments on the brand's channel (commentThreads.list, 1 unit) and a daily search (search.list, 100)."""

    channel_id: str | None = Field(default=None, pattern=r"^UC[\w-]{22}$",
                                   description="The brand's channel (UC...): comments on all its videos")
    search: str | None = Field(default=None, min_length=1, description="Daily search for videos naming the brand")
    search_every: Duration = Field(default=timedelta(days=1), description="Time between searches (100 units each)")
    units_per_day: int = Field(default=10_000, ge=1, description="The project's daily quota (10,000 by default), "
                                                                 "counted in the store across restarts")
    poll_every: Duration = Field(default=timedelta(minutes=30), description="Time between polls")
    api_root: str = Field(default="https://youtube.googleapis.com", description="API root (tests, proxies)")

    _url = field_validator("api_root")(classmethod(lambda cls, v: _base_url(v)))

    @model_validator(mode="after")
    def _something_to_read(self) -> YouTubeQuery:
        if not self.channel_id and not self.search:
            raise ValueError("give channel_id, search, or both")
        return self


class _Graph(_Polled):
    graph_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$", description="Graph API version")
    graph_root: str = Field(default="https://graph.facebook.com", description="API root (tests, proxies)")
    max_pages_per_poll: int = Field(default=5, ge=1, le=50, description="Pages of each listing one poll may read")

    _url = field_validator("graph_root")(classmethod(lambda cls, v: _base_url(v)))


class FacebookQuery(_Graph):
    """The brand's Facebook Page through the Graph API with FACEBOOK_PAGE_TOKEN (a page access token)."""

    page_id: str = Field(pattern=r"^\d+$", description="Numeric id of the brand's page")
    comments: bool = Field(default=True, description="Comments and replies on the page's own posts")
    visitor_posts: bool = Field(default=True, description="Posts visitors write on the page")
    tagged: bool = Field(default=True, description="Posts elsewhere that tag the page")
    recent_posts: int = Field(default=10, ge=1, le=50, description="Newest own posts whose comments are read")


class InstagramQuery(_Graph):
    """The brand's Instagram professional account (INSTAGRAM_BUSINESS_ID, token FACEBOOK_PAGE_TOKEN)."""

    account_id: str | None = Field(default=None, pattern=r"^\d+$",
                                   description="Instagram business account id; default INSTAGRAM_BUSINESS_ID")
    comments: bool = Field(default=True, description="Comments (and replies) on the account's own media")
    mentions: bool = Field(default=True, description="Media in which the account is tagged / @mentioned")
    recent_media: int = Field(default=10, ge=1, le=50, description="Newest own media whose comments are read")


class GoogleNewsQuery(_Strict):
    """Google News RSS search per language and region; items are deduplicated across editions."""

    query: str | None = Field(default=None, min_length=1,
                              description="Search words; default: the brand's keywords joined with OR")
    editions: list[str] = Field(default_factory=lambda: ["nl-BE", "fr-BE"], min_length=1,
                                description="language-REGION pairs: nl-BE gives hl=nl&gl=BE&ceid=BE:nl")
    poll_every: Duration = Field(default=timedelta(minutes=30), description="Time between polls")
    root: str = Field(default="https://news.google.com", description="Feed root (tests, proxies)")

    _url = field_validator("root")(classmethod(lambda cls, v: _base_url(v)))

    @field_validator("editions")
    @classmethod
    def _editions(cls, value: list[str]) -> list[str]:
        for edition in value:
            if not re.fullmatch(r"[a-z]{2,3}-[A-Z]{2}", edition):
                raise ValueError(f"expected an edition like 'nl-BE', got {edition!r}")
        return value


def mastodon_source_name(brand: str, instance: str) -> str:
    return f"mastodon:{brand}:{re.sub(r'^https?://', '', instance).strip('/')}"


def bluesky_source_name(brand: str) -> str:
    return f"bluesky:{brand}"


def youtube_source_name(brand: str) -> str:
    return f"youtube:{brand}"


def facebook_source_name(brand: str) -> str:
    return f"facebook:{brand}"


def instagram_source_name(brand: str) -> str:
    return f"instagram:{brand}"


def google_news_source_name(brand: str, edition: str) -> str:
    return f"news:{brand}:google-{edition}"


def social_source_names(name: str, brand: Brand) -> list[str]:
    names = [mastodon_source_name(name, i) for i in brand.mastodon.instances] if brand.mastodon else []
    for query, namer in ((brand.bluesky, bluesky_source_name), (brand.youtube, youtube_source_name),
                         (brand.facebook, facebook_source_name), (brand.instagram, instagram_source_name)):
        if query is not None:
            names.append(namer(name))
    if brand.google_news is not None:
        names.extend(google_news_source_name(name, e) for e in brand.google_news.editions)
    return names
