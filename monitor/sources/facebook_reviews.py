"""Facebook Page recommendations (Graph ``/{page-id}/ratings``), read with the page token of ``graph.py``.

Facebook replaced stars by recommendations in 2018: ``recommendation_type``
``positive`` counts as 5 stars and ``negative`` as 1, so ``rating_at_most: 2``
catches a page "not recommended"; a legacy ``rating`` (1-5) is kept as it is.
The listing is newest first by creation; an edit is seen while it is on the
pages read. The business's reply is a comment on the review's story, not part
of this listing: the alert links to the page's reviews to answer it. Errors are
the Graph client's: a refused token or a missing ``pages_read_user_content``
makes the source failing, a rate limit defers it.
"""

from __future__ import annotations

from typing import Any

from monitor.sources.common import parse_time
from monitor.sources.graph import GraphClient, GraphError
from monitor.sources.reviews import CountedClient, RawReview, ReviewError, ReviewPage, obj

FIELDS = "created_time,recommendation_type,rating,review_text,reviewer{name},open_graph_story{id}"


class FacebookReviewsClient(CountedClient):
    """One page's recommendations, newest first, through the shared Graph client."""

    what = "Facebook review"

    def __init__(self, graph: GraphClient, *, page_id: str, page_size: int = 50) -> None:
        super().__init__(graph)
        self.graph, self.page_id, self.page_size = graph, page_id, page_size

    def page(self, token: str | None) -> ReviewPage:
        params: dict[str, Any] = {"fields": FIELDS, "limit": self.page_size, **({"after": token} if token else {})}
        try:
            body = self.graph.get(f"{self.page_id}/ratings", params)
        except GraphError as exc:
            raise ReviewError(f"Facebook reviews: {exc}", until=exc.until, blind=exc.blind) from None
        paging = obj(body.get("paging"))
        after = obj(paging.get("cursors")).get("after") if paging.get("next") else None
        return self.parsed(body.get("data"), lambda item: review(item, self.page_id), str(after) if after else None)


def review(item: Any, page_id: str) -> RawReview:
    """A ``ratings`` entry as a ``RawReview``; ValueError when it has no time or no verdict."""
    item = obj(item)
    created = parse_time(item.get("created_time"))
    legacy = item.get("rating")
    kind = item.get("recommendation_type")
    rating = legacy if isinstance(legacy, int) and 1 <= legacy <= 5 else {"positive": 5, "negative": 1}.get(
        str(kind))
    story = obj(item.get("open_graph_story")).get("id")
    reviewer = obj(item.get("reviewer"))
    if created is None or rating is None:
        raise ValueError(f"rating {story!r} without created_time or recommendation_type")
    rid = str(story) if story else f"{reviewer.get('id') or reviewer.get('name') or '?'}@{created.isoformat()}"
    return RawReview(
        id=rid, rating=rating, text=str(item.get("review_text") or "").strip(), created_at=created,
        order_at=created, author=reviewer.get("name"),
        url=f"https://www.facebook.com/{story}" if story else None,
        answer_url=f"https://www.facebook.com/{page_id}/reviews",
    )
