"""Google News: one RSS search feed per edition (language and region); no credentials."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from monitor.durations import Duration
from monitor.i18n import N_, Problem
from monitor.sources.platforms.feeds import DISPLAY, SOURCE
from monitor.sources.registry import BuildContext, Platform, SourceSpec, register
from monitor.sources.schema import Strict, base_url

if TYPE_CHECKING:
    from monitor.sources.base import Source


class GoogleNewsQuery(Strict):
    """Google News RSS search per language and region; items are deduplicated across editions."""

    query: str | None = Field(default=None, min_length=1,
                              description="Search words; default: the brand's keywords joined with OR")
    editions: list[str] = Field(default_factory=lambda: ["nl-BE", "fr-BE"], min_length=1,
                                description="language-REGION pairs: nl-BE gives hl=nl&gl=BE&ceid=BE:nl")
    poll_every: Duration = Field(default=timedelta(minutes=30), description="Time between polls")
    root: str = Field(default="https://news.google.com", description="Feed root (tests, proxies)")

    _url = field_validator("root")(classmethod(lambda cls, v: base_url(v)))

    @field_validator("editions")
    @classmethod
    def _editions(cls, value: list[str]) -> list[str]:
        for edition in value:
            if not re.fullmatch(r"[a-z]{2,3}-[A-Z]{2}", edition):
                raise Problem(N_("expected an edition like 'nl-BE', got {value}"), value=repr(edition))
        return value


def source_name(brand: str, edition: str) -> str:
    return f"news:{brand}:google-{edition}"


def specs(brand: str, block: GoogleNewsQuery) -> list[SourceSpec]:
    return [SourceSpec(source_name(brand, e), SOURCE, brand, block.poll_every, None, f"Google News {e}")
            for e in block.editions]


def build(ctx: BuildContext, brand: str, block: GoogleNewsQuery) -> list[Source]:
    from monitor.sources.google_news import google_news_source

    return [google_news_source(brand, block, source_name(brand, e), keywords=ctx.keywords(brand),
                               languages=ctx.languages(brand), timeout=ctx.timeout, policy=ctx.policy)
            for e in block.editions]


PLATFORM = register(Platform(
    key="google_news", source=SOURCE, display=DISPLAY, config=GoogleNewsQuery, specs=specs, build=build, order=90,
    brings="articles",
))
