"""App Store: the customer reviews of the company's own iOS app, read with an App Store Connect API key."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from monitor.sources.platforms._reviews import ReviewQuery, key_file_status, review_spec
from monitor.sources.registry import BuildContext, EnvVar, Platform, SourceSpec, register
from monitor.sources.schema import base_url

if TYPE_CHECKING:
    from monitor.sources.base import Source

log = logging.getLogger(__name__)
ISSUER = EnvVar("APP_STORE_CONNECT_ISSUER_ID", "the issuer id of the App Store Connect API keys (Users and Access > "
                "Integrations)", secret=False)
KEY_ID = EnvVar("APP_STORE_CONNECT_KEY_ID", "the id of the API key (role Customer Support or above)", secret=False)
KEY_FILE = EnvVar("APP_STORE_CONNECT_KEY_FILE", "path of that key's private key (AuthKey_<key id>.p8, downloaded "
                  "once)", secret=False)


class AppStoreQuery(ReviewQuery):
    """The customer reviews of the brand's iOS app on the App Store."""

    app_id: str = Field(pattern=r"^\d+$", description="The app's Apple ID (App Store Connect > App Information)")
    reach: int = Field(default=3000, ge=0, description="Reach given to each review (README: Reviews)")
    api_root: str = Field(default="https://api.appstoreconnect.apple.com", description="API root (tests, proxies)")

    _url = field_validator("api_root")(classmethod(lambda cls, v: base_url(v)))


def source_name(brand: str) -> str:
    return f"app_store:{brand}"


def specs(brand: str, block: AppStoreQuery) -> list[SourceSpec]:
    return review_spec(source_name(brand), "app_store", brand, block, f"reviews of app {block.app_id}")


def build(ctx: BuildContext, brand: str, block: AppStoreQuery) -> list[Source]:
    from monitor.sources.app_store import RENEW_AFTER, AppStoreClient, jwt_grant, private_key
    from monitor.sources.reviews import JsonApi, ReviewSource

    name = source_name(brand)
    missing = PLATFORM.missing(ctx)
    if missing:
        log.warning("%s: skipped, %s not set", name, " and ".join(missing))
        return []
    path = ctx.env(KEY_FILE.name) or ""
    grant = jwt_grant(issuer_id=ctx.env(ISSUER.name) or "", key_id=ctx.env(KEY_ID.name) or "",
                      key=lambda: private_key(path, variable=KEY_FILE.name))
    api = JsonApi(root=block.api_root, what="App Store Connect reviews", timeout=ctx.timeout, policy=ctx.policy,
                  authorize=grant, token_lifetime=RENEW_AFTER,
                  fix=f"check {ISSUER.name}, {KEY_ID.name} and {KEY_FILE.name} (a key not revoked, role Customer "
                      f"Support or above, with access to app {block.app_id})")
    client = AppStoreClient(api, app_id=block.app_id)
    return [ReviewSource(name=name, brand=brand, source="app_store", client=client, reach=block.reach,
                         max_pages=block.max_pages_per_poll, languages=ctx.languages(brand),
                         poll_every=block.poll_every)]


PLATFORM = register(Platform(
    key="app_store", source="app_store", display="App Store", config=AppStoreQuery, specs=specs, build=build,
    order=114, env=(ISSUER, KEY_ID, KEY_FILE), aliases=("app_store_connect", "apple", "ios", "appstore"),
    brings="reviews", credentials=key_file_status("app_store", KEY_FILE),
))
