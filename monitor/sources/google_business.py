"""Google Business Profile: the reviews of the brand's own location (``accounts/*/locations/*/reviews``).

The API (My Business v4) is for the listing's verified managers; access is
granted on request to a Google Cloud project. It takes an OAuth access token
of a manager's account, which lives an hour: we keep the refresh token
(``GOOGLE_BUSINESS_REFRESH_TOKEN``, with the OAuth client's id and secret) and
fetch an access token when there is none or the API says it expired.
The listing is read sorted by ``updateTime desc``, so an edited review comes
back to the top and is seen again. Google gives no link per review: the
alert links to the listing's reviews in Business Profile, where replying is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.sources.common import parse_time
from monitor.sources.reviews import CountedClient, JsonApi, RawReview, ReviewError, ReviewPage, obj

STARS = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5}
ANSWER_URL = "https://business.google.com/reviews"


class GoogleBusinessClient(CountedClient):
    """One location's reviews, newest edit first, ``page_size`` per page."""

    sorted_by_edit = True
    what = "Google Business review"

    def __init__(self, api: JsonApi, *, account_id: str, location_id: str, page_size: int = 50) -> None:
        super().__init__(api)
        self.api, self.page_size = api, page_size
        self.path = f"v4/accounts/{account_id}/locations/{location_id}/reviews"

    def page(self, token: str | None) -> ReviewPage:
        params: dict[str, Any] = {"pageSize": self.page_size, "orderBy": "updateTime desc"}
        if token:
            params["pageToken"] = token
        body = self.api.get(self.path, params)
        return self.parsed(body.get("reviews"), review,
                           str(body["nextPageToken"]) if body.get("nextPageToken") else None)


def review(item: Any) -> RawReview:
    """A ``Review`` resource of the API as a ``RawReview``; ValueError when unusable."""
    item = obj(item)
    rid = item.get("reviewId") or item.get("name")
    rating = STARS.get(str(item.get("starRating")))
    created, updated = parse_time(item.get("createTime")), parse_time(item.get("updateTime"))
    if not isinstance(rid, str) or rating is None or created is None:
        raise ValueError(f"review {rid!r} without id, star rating or createTime")
    reply = obj(item.get("reviewReply"))
    edited = updated if updated is not None and updated > created and _edited(item, updated) else None
    return RawReview(
        id=rid, rating=rating, text=str(item.get("comment") or "").strip(), created_at=created,
        order_at=updated or created, edited_at=edited, author=obj(item.get("reviewer")).get("displayName"),
        reply=str(reply["comment"]) if reply.get("comment") else None, reply_at=parse_time(reply.get("updateTime")),
        answer_url=ANSWER_URL,
    )


def _edited(item: dict[str, Any], updated: Any) -> bool:
    """``updateTime`` moves when the business replies too; only a later time than the reply is the reviewer's."""
    reply_at = parse_time(obj(item.get("reviewReply")).get("updateTime"))
    return reply_at is None or updated > reply_at


def refresh_token_grant(*, token_uri: str, client_id: str, client_secret: str, refresh_token: str
                        ) -> Callable[[JsonApi], str]:
    """``authorize`` for ``JsonApi``: an access token from the OAuth refresh token (RFC 6749 section 6)."""

    def fetch(api: JsonApi) -> str:
        try:
            body = api.request("POST", token_uri, data={"grant_type": "refresh_token", "client_id": client_id,
                                                        "client_secret": client_secret,
                                                        "refresh_token": refresh_token})
        except ReviewError as exc:
            if exc.status not in (400, 401, 403):  # a rate limit or an outage: not the token's fault
                raise
            raise ReviewError(f"Google OAuth refused the refresh token ({exc}): renew "
                              f"GOOGLE_BUSINESS_REFRESH_TOKEN", blind=True) from None
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise ReviewError("Google OAuth: no access_token in the answer; renew GOOGLE_BUSINESS_REFRESH_TOKEN",
                              blind=True)
        return token

    return fetch
