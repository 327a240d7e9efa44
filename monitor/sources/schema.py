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
from monitor.yamlconfig import parse

# cursors.source and source_health.source are String(64): a source name must fit.
MAX_SOURCE_NAME = 64
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _positive(value: timedelta, what: str) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"{what} must be longer than zero")
    return value


class HttpConfig(_Strict):
    """How every source talks to its API: bounded waits so one slow API never stalls the worker."""

    timeout: Duration = Field(default=timedelta(seconds=20), description="Per HTTP request")
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
        if value is not None and not _LANGUAGE.match(value):
            raise ValueError(f"expected a language code like 'nl', got {value!r}")
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

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not _LANGUAGE.match(code):
                raise ValueError(f"expected language codes like 'nl', got {code!r}")
        if not value:
            raise ValueError("list at least one language")
        return value

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
    return names


def load_collect(path: Path) -> CollectConfig:
    """Raises ``ConfigInvalid`` listing every problem with file, line and key."""
    return parse(CollectConfig, path)
