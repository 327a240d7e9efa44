"""Bluesky: ``app.bsky.feed.searchPosts`` with a logged-in session (handle and app password)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from monitor.durations import Duration
from monitor.sources.registry import BuildContext, EnvVar, Platform, SourceSpec, register
from monitor.sources.schema import Polled, base_url

if TYPE_CHECKING:
    from monitor.sources.base import Source

log = logging.getLogger(__name__)
HANDLE, PASSWORD = "BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"


class BlueskyQuery(Polled):
    """``app.bsky.feed.searchPosts`` with a logged-in session (BLUESKY_HANDLE, BLUESKY_APP_PASSWORD)."""

    query: str = Field(min_length=1, description="Bluesky search syntax, e.g. Lumora OR lumora.be")
    service: str = Field(default="https://bsky.social", description="Where to log in and search (PDS/entryway)")
    poll_every: Duration = Field(default=timedelta(minutes=5), description="Time between polls")

    _url = field_validator("service")(classmethod(lambda cls, v: base_url(v)))


def source_name(brand: str) -> str:
    return f"bluesky:{brand}"


def specs(brand: str, block: BlueskyQuery) -> list[SourceSpec]:
    return [SourceSpec(source_name(brand), "bluesky", brand, block.poll_every, None,
                       f"searchPosts {block.query!r}")]


def build(ctx: BuildContext, brand: str, block: BlueskyQuery) -> list[Source]:
    from monitor.sources.bluesky import BlueskySource

    handle, password = ctx.env(HANDLE), ctx.env(PASSWORD)
    if not handle or not password:
        log.warning("%s: skipped, %s and %s are not set", source_name(brand), HANDLE, PASSWORD)
        return []
    return [BlueskySource(brand=brand, query=block.query, handle=handle, app_password=password,
                          service=block.service, languages=ctx.languages(brand), name=source_name(brand),
                          max_pages=block.max_pages_per_poll, poll_every=block.poll_every, timeout=ctx.timeout,
                          policy=ctx.policy)]


PLATFORM = register(Platform(
    key="bluesky", source="bluesky", display="Bluesky", config=BlueskyQuery, specs=specs, build=build, order=50,
    env=(EnvVar(HANDLE, "the account's handle", secret=False),
         EnvVar(PASSWORD, "an app password (Settings → App passwords), not the account password")),
))
