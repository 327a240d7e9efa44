"""Mastodon: search (API v2, statuses) and hashtag timelines, one source per instance."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from monitor.i18n import N_, Problem
from monitor.sources.registry import BuildContext, EnvVar, Platform, SourceSpec, register
from monitor.sources.schema import Polled, base_url

if TYPE_CHECKING:
    from monitor.sources.base import Source

TOKEN = "MASTODON_ACCESS_TOKEN"


class MastodonQuery(Polled):
    """Search (API v2, statuses) and hashtag timelines on one or more Mastodon instances."""

    instances: list[str] = Field(default_factory=lambda: ["https://mastodon.social"], min_length=1,
                                 description="Base URLs of the instances to read; one source each")
    query: str | None = Field(default=None, min_length=1, description="Full-text search (needs a login on many "
                                                                       "instances: MASTODON_ACCESS_TOKEN)")
    hashtags: list[str] = Field(default_factory=list, description="Hashtag timelines, without #")
    account_instance: str | None = Field(
        default=None, description="The instance MASTODON_ACCESS_TOKEN belongs to; only it receives the token")

    _urls = field_validator("instances")(classmethod(lambda cls, v: [base_url(u) for u in v]))

    @field_validator("hashtags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        tags = [t.strip().lstrip("#") for t in value]
        if any(not re.fullmatch(r"\w+", t) for t in tags):
            raise Problem(N_("a hashtag is letters, digits and _ (e.g. lumora)"))
        return tags

    @model_validator(mode="after")
    def _something_to_read(self) -> MastodonQuery:
        if not self.query and not self.hashtags:
            raise Problem(N_("give a query, hashtags, or both"))
        return self


def source_name(brand: str, instance: str) -> str:
    return f"mastodon:{brand}:{re.sub(r'^https?://', '', instance).strip('/')}"


def specs(brand: str, block: MastodonQuery) -> list[SourceSpec]:
    what = ", ".join(([f"search {block.query!r}"] if block.query else []) + [f"#{t}" for t in block.hashtags])
    return [SourceSpec(source_name(brand, i), "mastodon", brand, block.poll_every, None, f"{i}: {what}")
            for i in block.instances]


def build(ctx: BuildContext, brand: str, block: MastodonQuery) -> list[Source]:
    from monitor.sources.mastodon import MastodonSource

    sources: list[Source] = []
    for instance in block.instances:
        # The token goes to the instance it belongs to, never to the others.
        token = ctx.env(TOKEN) if block.account_instance and block.account_instance.rstrip("/") == instance \
            else None
        sources.append(MastodonSource.connect(
            instance, access_token=token, timeout=ctx.timeout, brand=brand, query=block.query,
            hashtags=block.hashtags, languages=ctx.languages(brand), name=source_name(brand, instance),
            max_pages=block.max_pages_per_poll, poll_every=block.poll_every, policy=ctx.policy))
    return sources


def credentials(ctx: BuildContext) -> str:
    return f"ok ({TOKEN})" if ctx.env(TOKEN) else f"none (anonymous; set {TOKEN} where search needs a login)"


PLATFORM = register(Platform(
    key="mastodon", source="mastodon", display="Mastodon", config=MastodonQuery, specs=specs, build=build, order=40,
    env=(EnvVar(TOKEN, "optional; sent only to mastodon.account_instance", required=False),),
    credentials=credentials,
))
