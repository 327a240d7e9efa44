"""Trustpilot: the reviews of the brand's own business unit, with an API key of its Trustpilot Business account."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from monitor.sources.platforms._reviews import ReviewQuery, review_spec
from monitor.sources.registry import BuildContext, EnvVar, Platform, SourceSpec, register
from monitor.sources.schema import base_url

if TYPE_CHECKING:
    from monitor.sources.base import Source

log = logging.getLogger(__name__)
KEY = EnvVar("TRUSTPILOT_API_KEY", "the API key of the Trustpilot Business account's application")


class TrustpilotQuery(ReviewQuery):
    """The reviews of the brand's Trustpilot business unit."""

    business_unit_id: str = Field(pattern=r"^[0-9a-f]{24}$", description="The business unit's id (24 hex digits)")
    reach: int = Field(default=2000, ge=0, description="Reach given to each review (README: Reviews)")
    api_root: str = Field(default="https://api.trustpilot.com", description="API root (tests, proxies)")

    _url = field_validator("api_root")(classmethod(lambda cls, v: base_url(v)))


def source_name(brand: str) -> str:
    return f"trustpilot:{brand}"


def specs(brand: str, block: TrustpilotQuery) -> list[SourceSpec]:
    return review_spec(source_name(brand), "trustpilot", brand, block,
                       f"reviews of business unit {block.business_unit_id}")


def build(ctx: BuildContext, brand: str, block: TrustpilotQuery) -> list[Source]:
    from monitor.sources.reviews import JsonApi, ReviewSource
    from monitor.sources.trustpilot import TrustpilotClient

    name = source_name(brand)
    key = ctx.env(KEY.name)
    if not key:
        log.warning("%s: skipped, %s is not set", name, KEY.name)
        return []
    api = JsonApi(root=block.api_root, what="Trustpilot reviews", timeout=ctx.timeout, policy=ctx.policy,
                  headers={"apikey": key}, fix=f"renew {KEY.name} in Trustpilot Business (Integrations > API)")
    client = TrustpilotClient(api, business_unit_id=block.business_unit_id)
    return [ReviewSource(name=name, brand=brand, source="trustpilot", client=client, reach=block.reach,
                         max_pages=block.max_pages_per_poll, languages=ctx.languages(brand),
                         poll_every=block.poll_every)]


PLATFORM = register(Platform(
    key="trustpilot", source="trustpilot", display="Trustpilot", config=TrustpilotQuery, specs=specs, build=build,
    order=111, env=(KEY,), brings="reviews",
))
