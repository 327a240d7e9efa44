"""Trustpilot: the reviews of the brand's own business unit (Business Units API, ``/reviews``).

An API key of a Trustpilot Business account (``TRUSTPILOT_API_KEY``) goes in
the ``apikey`` header. The listing is sorted by creation (``createdat.desc``;
the API has no sort by edit): an edited review is seen again only while it is
among the pages read, and a new one never passes unseen. The business's reply
is ``companyReply``; replying is done in Trustpilot Business.
"""

from __future__ import annotations

from typing import Any

from monitor.sources.common import parse_time
from monitor.sources.reviews import CountedClient, JsonApi, RawReview, ReviewPage, obj, titled

ANSWER_URL = "https://businessapp.b2b.trustpilot.com/reviews"


class TrustpilotClient(CountedClient):
    """One business unit's reviews, newest first, ``per_page`` per page, paged by page number."""

    what = "Trustpilot review"

    def __init__(self, api: JsonApi, *, business_unit_id: str, per_page: int = 100) -> None:
        super().__init__(api)
        self.api, self.per_page = api, per_page
        self.path = f"v1/business-units/{business_unit_id}/reviews"

    def page(self, token: str | None) -> ReviewPage:
        number = int(token) if token and token.isdigit() else 1
        body = self.api.get(self.path, {"perPage": self.per_page, "page": number, "orderBy": "createdat.desc"})
        links = [obj(link) for link in body.get("links") or []]
        more = any(link.get("rel") == "next-page" for link in links)
        return self.parsed(body.get("reviews"), review, str(number + 1) if more else None)


def review(item: Any) -> RawReview:
    """A Trustpilot review object as a ``RawReview``; ValueError when unusable."""
    item = obj(item)
    rid, stars = item.get("id"), item.get("stars")
    created = parse_time(item.get("createdAt"))
    if not isinstance(rid, str) or not isinstance(stars, int) or not 1 <= stars <= 5 or created is None:
        raise ValueError(f"review {rid!r} without id, stars 1-5 or createdAt")
    updated = parse_time(item.get("updatedAt"))
    text = titled(item.get("title"), item.get("text"))
    reply = obj(item.get("companyReply"))
    return RawReview(
        id=rid, rating=stars, text=text, created_at=created, order_at=created,
        edited_at=updated if updated is not None and updated > created else None,
        author=obj(item.get("consumer")).get("displayName"), language=item.get("language"),
        reply=str(reply["text"]) if reply.get("text") else None,
        reply_at=parse_time(reply.get("updatedAt") or reply.get("createdAt")),
        url=f"https://www.trustpilot.com/reviews/{rid}", answer_url=ANSWER_URL,
    )
