"""What the review platforms' blocks share (not a platform: the registry skips ``_`` modules)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from monitor.durations import Duration
from monitor.sources.registry import SourceSpec
from monitor.sources.schema import Polled


class ReviewQuery(Polled):
    """A business listing's reviews. ``reach`` stands for the audience of a review there (README: Reviews)."""

    poll_every: Duration = Field(default=timedelta(minutes=30), description="Time between polls")
    reach: int = Field(default=1000, ge=0, description="Reach given to each review on this platform: its weight "
                                                        "for rules' min_reach (not the reviewer's followers)")


def review_spec(name: str, source: str, brand: str, block: ReviewQuery, target: str) -> list[SourceSpec]:
    return [SourceSpec(name, source, brand, block.poll_every, None, target)]
