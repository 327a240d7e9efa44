"""Google Business Profile: the reviews of the brand's location, for its verified managers (access on request)."""

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
CLIENT_ID = EnvVar("GOOGLE_BUSINESS_CLIENT_ID", "the OAuth client id of the Google Cloud project granted the "
                   "Business Profile API", secret=False)
CLIENT_SECRET = EnvVar("GOOGLE_BUSINESS_CLIENT_SECRET", "that OAuth client's secret")
REFRESH_TOKEN = EnvVar("GOOGLE_BUSINESS_REFRESH_TOKEN", "a refresh token of a manager of the location "
                       "(scope business.manage)")


class GoogleBusinessQuery(ReviewQuery):
    """The reviews of the brand's Google Business Profile location."""

    account_id: str = Field(pattern=r"^\d+$", description="The Business Profile account (accounts/<id>)")
    location_id: str = Field(pattern=r"^\d+$", description="The location (locations/<id>)")
    reach: int = Field(default=5000, ge=0, description="Reach given to each review (README: Reviews)")
    api_root: str = Field(default="https://mybusiness.googleapis.com", description="API root (tests, proxies)")
    token_uri: str = Field(default="https://oauth2.googleapis.com/token", description="OAuth token endpoint")

    _url = field_validator("api_root", "token_uri")(classmethod(lambda cls, v: base_url(v)))


def source_name(brand: str) -> str:
    return f"google_business:{brand}"


def specs(brand: str, block: GoogleBusinessQuery) -> list[SourceSpec]:
    return review_spec(source_name(brand), "google_business", brand, block,
                       f"reviews of location {block.location_id}")


def build(ctx: BuildContext, brand: str, block: GoogleBusinessQuery) -> list[Source]:
    from monitor.sources.google_business import GoogleBusinessClient, refresh_token_grant
    from monitor.sources.reviews import JsonApi, ReviewSource

    name = source_name(brand)
    missing = PLATFORM.missing(ctx)
    if missing:
        log.warning("%s: skipped, %s not set", name, " and ".join(missing))
        return []
    grant = refresh_token_grant(token_uri=block.token_uri, client_id=ctx.env(CLIENT_ID.name) or "",
                                client_secret=ctx.env(CLIENT_SECRET.name) or "",
                                refresh_token=ctx.env(REFRESH_TOKEN.name) or "")
    api = JsonApi(root=block.api_root, what="Google Business Profile reviews", timeout=ctx.timeout,
                  policy=ctx.policy, authorize=grant,
                  fix=f"renew {REFRESH_TOKEN.name} with a manager of the location (scope business.manage) and "
                      f"check the project was granted the Business Profile API")
    client = GoogleBusinessClient(api, account_id=block.account_id, location_id=block.location_id)
    return [ReviewSource(name=name, brand=brand, source="google_business", client=client, reach=block.reach,
                         max_pages=block.max_pages_per_poll, languages=ctx.languages(brand),
                         poll_every=block.poll_every)]


PLATFORM = register(Platform(
    key="google_business", source="google_business", display="Google reviews", config=GoogleBusinessQuery,
    specs=specs, build=build, order=110, env=(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN),
    aliases=("google_business_profile", "gbp", "google_reviews"), brings="reviews",
))
