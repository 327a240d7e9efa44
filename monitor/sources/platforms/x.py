"""X (Twitter): recent search through the X API v2 with an app-only bearer token."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from monitor.durations import Duration
from monitor.sources.registry import BuildContext, EnvVar, Platform, SourceSpec, register
from monitor.sources.schema import Polled

if TYPE_CHECKING:
    from monitor.sources.base import Source

log = logging.getLogger(__name__)
TOKEN = "X_BEARER_TOKEN"


class XQuery(Polled):
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


def source_name(brand: str) -> str:
    return f"x:{brand}"


def specs(brand: str, block: XQuery) -> list[SourceSpec]:
    return [SourceSpec(source_name(brand), "x", brand, block.poll_every, block.requests_per_day, block.query)]


def build(ctx: BuildContext, brand: str, block: XQuery) -> list[Source]:
    from monitor.sources.x import XSource

    token = ctx.env(TOKEN)
    if not token:
        log.warning("%s: skipped, %s is not set", source_name(brand), TOKEN)
        return []
    return [XSource.with_token(
        token, timeout=ctx.timeout, brand=brand, query=block.query, languages=ctx.languages(brand),
        name=source_name(brand), daily_budget=block.requests_per_day, max_pages=block.max_pages_per_poll,
        poll_every=block.poll_every, policy=ctx.policy,
    )]


PLATFORM = register(Platform(
    key="x", source="x", display="X", config=XQuery, specs=specs, build=build, order=10, aliases=("twitter",),
    env=(EnvVar(TOKEN, "an app-only bearer token of the X API v2"),),
))
