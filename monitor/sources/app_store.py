"""App Store: the customer reviews of the company's own iOS app (App Store Connect API, ``customerReviews``).

An App Store Connect API key (Users and Access > Integrations, role Customer
Support or above) signs a JSON Web Token with ES256: its issuer id
(``APP_STORE_CONNECT_ISSUER_ID``), its key id (``APP_STORE_CONNECT_KEY_ID``, in
the token's header) and its private key (the ``.p8`` file downloaded once,
``APP_STORE_CONNECT_KEY_FILE``). Apple refuses tokens that live longer than
20 minutes: each lives ``TOKEN_LIFETIME`` and a new one is signed once it is
``RENEW_AFTER`` old (or when the API answers 401).

The listing is sorted by creation (``sort=-createdDate``), paged with the
``cursor`` of ``links.next``: an edited review is seen while it is on the pages
a poll reads (Apple gives no edit time). The business's reply is the
``customerReviewResponses`` included with ``include=response``; only a
published one counts (one pending publication is not public yet). There is
no public link to one review: the alert links to the app's Ratings and Reviews
in App Store Connect, where replying is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from monitor.redact import remember_secret
from monitor.sources.common import parse_time
from monitor.sources.reviews import CountedClient, JsonApi, RawReview, ReviewError, ReviewPage, obj, titled

AUDIENCE = "appstoreconnect-v1"
TOKEN_LIFETIME = timedelta(minutes=15)  # Apple: at most 20 minutes
RENEW_AFTER = timedelta(minutes=10)
MAX_KEY_FILE = 16 * 1024


def answer_url(app_id: str) -> str:
    """The app's Ratings and Reviews in App Store Connect."""
    return f"https://appstoreconnect.apple.com/apps/{app_id}/distribution/activity/ios/ratingsResponses"


class AppStoreClient(CountedClient):
    """One app's customer reviews, newest first, ``limit`` per page (at most 200)."""

    what = "App Store review"

    def __init__(self, api: JsonApi, *, app_id: str, limit: int = 100) -> None:
        super().__init__(api)
        self.api, self.app_id, self.limit = api, app_id, limit
        self.path = f"v1/apps/{app_id}/customerReviews"

    def page(self, token: str | None) -> ReviewPage:
        params: dict[str, Any] = {"sort": "-createdDate", "limit": self.limit, "include": "response"}
        if token:  # the query of ``links.next`` (its cursor), asked of our own root and path
            params.update(parse_qsl(token))
        body = self.api.get(self.path, params)
        replies = {str(r.get("id")): obj(r.get("attributes")) for r in map(obj, body.get("included") or [])
                   if r.get("type") == "customerReviewResponses"}
        following = obj(body.get("links")).get("next")
        query = urlsplit(following).query if isinstance(following, str) else ""
        return self.parsed(body.get("data"), lambda item: review(item, replies, self.app_id), query or None)


def review(item: Any, replies: dict[str, dict[str, Any]], app_id: str) -> RawReview:
    """A ``customerReviews`` resource (and its included response) as a ``RawReview``; ValueError when unusable."""
    item = obj(item)
    rid, attributes = item.get("id"), obj(item.get("attributes"))
    rating, created = attributes.get("rating"), parse_time(attributes.get("createdDate"))
    if not isinstance(rid, str) or not isinstance(rating, int) or not 1 <= rating <= 5 or created is None:
        raise ValueError(f"review {rid!r} without id, rating 1-5 or createdDate")
    linked = obj(obj(obj(item.get("relationships")).get("response")).get("data")).get("id")
    response = replies.get(str(linked), {}) if linked else {}
    published = response.get("state") == "PUBLISHED" and response.get("responseBody")
    return RawReview(
        id=rid, rating=rating, text=titled(attributes.get("title"), attributes.get("body")), created_at=created,
        order_at=created, author=str(attributes.get("reviewerNickname") or "") or None,
        reply=str(response["responseBody"]) if published else None,
        reply_at=parse_time(response.get("lastModifiedDate")) if published else None,
        answer_url=answer_url(app_id),
    )


def private_key(path: str, *, variable: str) -> EllipticCurvePrivateKey:
    """The ``.p8`` key at ``path``; ``ReviewError`` (blind) naming what is wrong. Its text is masked from here on."""
    where = f"{variable}={path}"
    try:
        file = Path(path)
        if file.stat().st_size > MAX_KEY_FILE:
            raise ValueError("larger than a .p8 key")
        pem = file.read_bytes()
    except (OSError, ValueError) as exc:
        raise ReviewError(f"App Store Connect: cannot read the private key {where} ({exc}): download the key "
                          "(.p8) in App Store Connect, Users and Access > Integrations", blind=True) from None
    for line in pem.decode("ascii", "replace").splitlines():
        if "PRIVATE KEY" not in line:
            remember_secret(line.strip())
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ReviewError(f"App Store Connect: {where} is no PEM private key ({str(exc)[:120]}): give the .p8 "
                          "file App Store Connect downloaded", blind=True) from None
    if not isinstance(key, EllipticCurvePrivateKey):
        raise ReviewError(f"App Store Connect: {where} is not an EC (P-256) key: give the .p8 file App Store "
                          "Connect downloaded", blind=True)
    return key


def jwt_grant(*, issuer_id: str, key_id: str, key: Callable[[], EllipticCurvePrivateKey]
              ) -> Callable[[JsonApi], str]:
    """``authorize`` for ``JsonApi``: a token signed with the API key (ES256, ``kid`` in the header), issued
    at the API's clock."""

    def sign(api: JsonApi) -> str:
        now = api.clock.now()
        claims = {"iss": issuer_id, "iat": int(now.timestamp()), "exp": int((now + TOKEN_LIFETIME).timestamp()),
                  "aud": AUDIENCE}
        return jwt.encode(claims, key(), algorithm="ES256", headers={"kid": key_id, "typ": "JWT"})

    return sign
