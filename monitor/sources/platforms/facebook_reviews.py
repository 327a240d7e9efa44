"""Facebook Page recommendations (``/{page-id}/ratings``) with the page token Facebook and Instagram use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from monitor.sources.platforms._reviews import ReviewQuery, review_spec
from monitor.sources.platforms.facebook import TOKEN, GraphQuery, graph_client
from monitor.sources.registry import BuildContext, Platform, SourceSpec, register

if TYPE_CHECKING:
    from monitor.sources.base import Source


class FacebookReviewsQuery(ReviewQuery, GraphQuery):
    """The recommendations of the brand's Facebook Page (needs ``pages_read_user_content``)."""

    page_id: str = Field(pattern=r"^\d+$", description="Numeric id of the brand's page")
    reach: int = Field(default=1000, ge=0, description="Reach given to each review (README: Reviews)")


def source_name(brand: str) -> str:
    return f"facebook_reviews:{brand}"


def specs(brand: str, block: FacebookReviewsQuery) -> list[SourceSpec]:
    return review_spec(source_name(brand), "facebook_reviews", brand, block,
                       f"recommendations of page {block.page_id}")


def build(ctx: BuildContext, brand: str, block: FacebookReviewsQuery) -> list[Source]:
    from monitor.sources.facebook_reviews import FacebookReviewsClient
    from monitor.sources.reviews import ReviewSource

    name = source_name(brand)
    graph = graph_client(ctx, name, block)
    if graph is None:
        return []
    return [ReviewSource(name=name, brand=brand, source="facebook_reviews",
                         client=FacebookReviewsClient(graph, page_id=block.page_id), reach=block.reach,
                         max_pages=block.max_pages_per_poll, languages=ctx.languages(brand),
                         poll_every=block.poll_every)]


PLATFORM = register(Platform(
    key="facebook_reviews", source="facebook_reviews", display="Facebook reviews", config=FacebookReviewsQuery,
    specs=specs, build=build, order=112, env=(TOKEN,), aliases=("facebook_ratings", "facebook_recommendations"),
    brings="reviews",
))
