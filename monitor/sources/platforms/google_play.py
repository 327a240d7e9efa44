"""Google Play: the reviews of the company's own Android app, read by a service account of its developer account."""

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
KEY_FILE = EnvVar("GOOGLE_PLAY_SERVICE_ACCOUNT_FILE", "path of the JSON key of a Google Cloud service account "
                  "invited to the Play Console with the app's \"Reply to reviews\" permission", secret=False)


class GooglePlayQuery(ReviewQuery):
    """The reviews of the brand's Android app on Google Play (the last seven days' only: README: Reviews)."""

    package_name: str = Field(pattern=r"^[A-Za-z][\w]*(\.[A-Za-z][\w]*)+$",
                              description="The app's package name (com.example.app)")
    reach: int = Field(default=3000, ge=0, description="Reach given to each review (README: Reviews)")
    translate_to: str | None = Field(default=None, pattern=r"^[a-z]{2}([-_][A-Za-z]{2})?$",
                                     description="Ask Google to translate reviews into this language (e.g. nl)")
    developer_id: str | None = Field(default=None, pattern=r"^\d+$", description="The developer account's id in "
                                     "the Play Console address (.../developers/<id>/...): links alerts to the review")
    console_app_id: str | None = Field(default=None, pattern=r"^\d+$", description="The app's id in the Play "
                                       "Console address (.../app/<id>/...): links alerts to the review")
    api_root: str = Field(default="https://androidpublisher.googleapis.com", description="API root (tests, proxies)")

    _url = field_validator("api_root")(classmethod(lambda cls, v: base_url(v)))


def source_name(brand: str) -> str:
    return f"google_play:{brand}"


def specs(brand: str, block: GooglePlayQuery) -> list[SourceSpec]:
    return review_spec(source_name(brand), "google_play", brand, block, f"reviews of app {block.package_name}")


def build(ctx: BuildContext, brand: str, block: GooglePlayQuery) -> list[Source]:
    from monitor.sources.google_play import GooglePlayClient, service_account_credentials
    from monitor.sources.reviews import ReviewSource

    name = source_name(brand)
    path = ctx.env(KEY_FILE.name)
    if not path:
        log.warning("%s: skipped, %s is not set", name, KEY_FILE.name)
        return []
    client = GooglePlayClient(
        package_name=block.package_name, credentials=lambda: service_account_credentials(path, variable=KEY_FILE.name),
        fix=f"in the Play Console (Users and permissions), give the service account of {KEY_FILE.name} the app with "
            f"\"Reply to reviews\", and enable the Google Play Android Developer API in its Cloud project",
        api_root=block.api_root, translate_to=block.translate_to, developer_id=block.developer_id,
        console_app_id=block.console_app_id, timeout=ctx.timeout, policy=ctx.policy)
    return [ReviewSource(name=name, brand=brand, source="google_play", client=client, reach=block.reach,
                         max_pages=block.max_pages_per_poll, languages=ctx.languages(brand),
                         poll_every=block.poll_every)]


PLATFORM = register(Platform(
    key="google_play", source="google_play", display="Google Play", config=GooglePlayQuery, specs=specs,
    build=build, order=113, env=(KEY_FILE,), aliases=("play_store", "android", "google_play_reviews"),
    brings="reviews", credentials=key_file_status("google_play", KEY_FILE),
))
