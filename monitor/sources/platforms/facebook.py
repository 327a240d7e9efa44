"""Facebook Page: comments, visitor posts and tags through the Graph API with a page access token.

Instagram (``instagram.py``) reads the same Graph API with the same token: the
shared block fields and the client live here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from monitor.sources.registry import BuildContext, EnvVar, Platform, SourceSpec, register
from monitor.sources.schema import Polled, base_url

if TYPE_CHECKING:
    from monitor.sources.base import Source
    from monitor.sources.graph import GraphClient

log = logging.getLogger(__name__)
TOKEN = EnvVar("FACEBOOK_PAGE_TOKEN", "a Graph API page access token (Facebook Page and Instagram)")


class GraphQuery(Polled):
    """What every Graph API block has: the API's version and root, and pages per listing."""

    graph_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$", description="Graph API version")
    graph_root: str = Field(default="https://graph.facebook.com", description="API root (tests, proxies)")
    max_pages_per_poll: int = Field(default=5, ge=1, le=50, description="Pages of each listing one poll may read")

    _url = field_validator("graph_root")(classmethod(lambda cls, v: base_url(v)))


class FacebookQuery(GraphQuery):
    """The brand's Facebook Page through the Graph API with FACEBOOK_PAGE_TOKEN (a page access token)."""

    page_id: str = Field(pattern=r"^\d+$", description="Numeric id of the brand's page")
    comments: bool = Field(default=True, description="Comments and replies on the page's own posts")
    visitor_posts: bool = Field(default=True, description="Posts visitors write on the page")
    tagged: bool = Field(default=True, description="Posts elsewhere that tag the page")
    recent_posts: int = Field(default=10, ge=1, le=50, description="Newest own posts whose comments are read")


def graph_client(ctx: BuildContext, name: str, block: GraphQuery) -> GraphClient | None:
    """A Graph API client with the page token, or None (one warning line naming the variable)."""
    from monitor.sources.graph import GraphClient

    token = ctx.env(TOKEN.name)
    if not token:
        log.warning("%s: skipped, %s is not set", name, TOKEN.name)
        return None
    return GraphClient(token=token, root=block.graph_root, version=block.graph_version, timeout=ctx.timeout,
                       policy=ctx.policy)


def source_name(brand: str) -> str:
    return f"facebook:{brand}"


def specs(brand: str, block: FacebookQuery) -> list[SourceSpec]:
    return [SourceSpec(source_name(brand), "facebook", brand, block.poll_every, None, f"page {block.page_id}")]


def build(ctx: BuildContext, brand: str, block: FacebookQuery) -> list[Source]:
    from monitor.sources.graph import FacebookSource

    name = source_name(brand)
    client = graph_client(ctx, name, block)
    if client is None:
        return []
    return [FacebookSource(brand=brand, page_id=block.page_id, client=client, comments=block.comments,
                           visitor_posts=block.visitor_posts, tagged=block.tagged, recent_posts=block.recent_posts,
                           max_pages=block.max_pages_per_poll, name=name, poll_every=block.poll_every)]


PLATFORM = register(Platform(
    key="facebook", source="facebook", display="Facebook", config=FacebookQuery, specs=specs, build=build,
    order=70, env=(TOKEN,), brings="comments",
))
