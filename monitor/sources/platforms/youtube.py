"""YouTube: comments on the brand's channel and a periodic search, within the project's daily quota."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from monitor.durations import Duration
from monitor.i18n import N_, Problem
from monitor.sources.registry import BuildContext, EnvVar, Platform, SourceSpec, register
from monitor.sources.schema import Polled, base_url

if TYPE_CHECKING:
    from monitor.sources.base import Source

log = logging.getLogger(__name__)
KEY = "YOUTUBE_API_KEY"


class YouTubeQuery(Polled):
    """Comments on the brand's channel (commentThreads.list, 1 unit) and a daily search (search.list, 100)."""

    channel_id: str | None = Field(default=None, pattern=r"^UC[\w-]{22}$",
                                   description="The brand's channel (UC...): comments on all its videos")
    search: str | None = Field(default=None, min_length=1, description="Daily search for videos naming the brand")
    search_every: Duration = Field(default=timedelta(days=1), description="Time between searches (100 units each)")
    units_per_day: int = Field(default=10_000, ge=1, description="The project's daily quota (10,000 by default), "
                                                                 "counted in the store across restarts")
    poll_every: Duration = Field(default=timedelta(minutes=30), description="Time between polls")
    api_root: str = Field(default="https://youtube.googleapis.com", description="API root (tests, proxies)")

    _url = field_validator("api_root")(classmethod(lambda cls, v: base_url(v)))

    @model_validator(mode="after")
    def _something_to_read(self) -> YouTubeQuery:
        if not self.channel_id and not self.search:
            raise Problem(N_("give channel_id, search, or both"))
        return self


def source_name(brand: str) -> str:
    return f"youtube:{brand}"


def specs(brand: str, block: YouTubeQuery) -> list[SourceSpec]:
    parts = ([f"comments on channel {block.channel_id}"] if block.channel_id else []) + (
        [f"search {block.search!r}"] if block.search else [])
    return [SourceSpec(source_name(brand), "youtube", brand, block.poll_every, block.units_per_day,
                       ", ".join(parts))]


def build(ctx: BuildContext, brand: str, block: YouTubeQuery) -> list[Source]:
    from monitor.sources.youtube import YouTubeSource

    key = ctx.env(KEY)
    if not key:
        log.warning("%s: skipped, %s is not set", source_name(brand), KEY)
        return []
    return [YouTubeSource(brand=brand, api_key=key, channel_id=block.channel_id, search=block.search,
                          search_every=block.search_every, units_per_day=block.units_per_day,
                          api_root=block.api_root, name=source_name(brand), max_pages=block.max_pages_per_poll,
                          poll_every=block.poll_every, timeout=ctx.timeout, policy=ctx.policy,
                          languages=ctx.languages(brand))]


PLATFORM = register(Platform(
    key="youtube", source="youtube", display="YouTube", config=YouTubeQuery, specs=specs, build=build, order=60,
    env=(EnvVar(KEY, "a Google Cloud API key with the YouTube Data API v3 enabled"),), brings="comments",
))
