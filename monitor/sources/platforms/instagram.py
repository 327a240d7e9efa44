"""Instagram: the brand's professional account through the Graph API (Facebook's page token)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import Field

from monitor.sources.platforms.facebook import TOKEN, GraphQuery, graph_client
from monitor.sources.registry import BuildContext, EnvVar, Platform, SourceSpec, register

if TYPE_CHECKING:
    from monitor.sources.base import Source

log = logging.getLogger(__name__)
ACCOUNT = "INSTAGRAM_BUSINESS_ID"


class InstagramQuery(GraphQuery):
    """The brand's Instagram professional account (INSTAGRAM_BUSINESS_ID, token FACEBOOK_PAGE_TOKEN)."""

    account_id: str | None = Field(default=None, pattern=r"^\d+$",
                                   description="Instagram business account id; default INSTAGRAM_BUSINESS_ID")
    comments: bool = Field(default=True, description="Comments (and replies) on the account's own media")
    mentions: bool = Field(default=True, description="Media in which the account is tagged / @mentioned")
    recent_media: int = Field(default=10, ge=1, le=50, description="Newest own media whose comments are read")


def source_name(brand: str) -> str:
    return f"instagram:{brand}"


def specs(brand: str, block: InstagramQuery) -> list[SourceSpec]:
    return [SourceSpec(source_name(brand), "instagram", brand, block.poll_every, None,
                       f"account {block.account_id or ACCOUNT}")]


def build(ctx: BuildContext, brand: str, block: InstagramQuery) -> list[Source]:
    from monitor.sources.graph import InstagramSource

    name = source_name(brand)
    client = graph_client(ctx, name, block)
    if client is None:
        return []
    account = block.account_id or ctx.env(ACCOUNT)
    if not account:
        log.warning("%s: skipped, set %s (or instagram.account_id)", name, ACCOUNT)
        return []
    return [InstagramSource(brand=brand, account_id=account, client=client, comments=block.comments,
                            mentions=block.mentions, recent_media=block.recent_media,
                            max_pages=block.max_pages_per_poll, name=name, poll_every=block.poll_every)]


PLATFORM = register(Platform(
    key="instagram", source="instagram", display="Instagram", config=InstagramQuery, specs=specs, build=build,
    order=80, aliases=("ig",),
    env=(TOKEN, EnvVar(ACCOUNT, "the Instagram professional account's id (or instagram.account_id)", secret=False,
                       required=False)), brings="comments",
))
