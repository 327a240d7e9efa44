"""News feeds: RSS or Atom feeds of news sites and blogs, fetched with conditional GET; no credentials."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field, field_validator

from monitor.durations import PositiveDuration
from monitor.i18n import N_, Problem
from monitor.langcodes import language_problem
from monitor.sources.registry import BuildContext, Platform, SourceSpec, register
from monitor.sources.schema import Strict

if TYPE_CHECKING:
    from monitor.sources.base import Source

SOURCE = "news"  # shared with Google News: rules and the digest see one "News"
DISPLAY = "News"


class Feed(Strict):
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
            raise Problem(N_("expected an http(s) URL, got {value}"), value=repr(value))
        return value

    @field_validator("language")
    @classmethod
    def _language_code(cls, value: str | None) -> str | None:
        problem = language_problem(value) if value is not None else None
        if problem is not None:
            raise Problem(problem)
        return value


def _unique_names(value: list[Feed]) -> list[Feed]:
    seen: set[str] = set()
    for feed in value:
        if feed.name.casefold() in seen:
            raise Problem(N_("two feeds are named {name}; names identify a feed's cursor"), name=repr(feed.name))
        seen.add(feed.name.casefold())
    return value


Feeds = Annotated[list[Feed], AfterValidator(_unique_names)]


def source_name(brand: str, feed: str) -> str:
    return f"news:{brand}:{feed}"


def specs(brand: str, block: list[Feed]) -> list[SourceSpec]:
    return [SourceSpec(source_name(brand, feed.name), SOURCE, brand, feed.poll_every, None, feed.url) for feed in block]


def build(ctx: BuildContext, brand: str, block: list[Feed]) -> list[Source]:
    from monitor.sources.feeds import FeedSource

    return [FeedSource(
        brand=brand, site=feed.name, url=feed.url, keywords=ctx.keywords(brand), languages=ctx.languages(brand),
        reach=feed.reach, language=feed.language, poll_every=feed.poll_every,
        name=source_name(brand, feed.name), timeout=ctx.timeout, policy=ctx.policy,
    ) for feed in block]


PLATFORM = register(Platform(
    key="feeds", source=SOURCE, display=DISPLAY, config=Feeds, default_factory=list, specs=specs, build=build,
    order=30, aliases=("rss", "atom"), brings="articles",
))
