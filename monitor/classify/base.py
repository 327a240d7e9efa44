"""The one interface every sentiment backend implements.

The pipeline only ever sees ``SentimentModel``; which backend stands behind it
(the offline default or a Hugging Face model) is a configuration choice, so a
user with hub access can swap models without touching any other stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from monitor.models import SentimentScores


@runtime_checkable
class SentimentModel(Protocol):
    """Scores batches of texts; implementations must be safe to call repeatedly."""

    @property
    def name(self) -> str:
        """Stable identifier stored with every score (e.g. ``e5-head`` or a hub id)."""
        ...

    @property
    def version(self) -> str:
        """Version of weights/head, stored with every score so digests can say who judged."""
        ...

    def predict(self, texts: Sequence[str]) -> list[SentimentScores]:
        """One ``SentimentScores`` per input text, in order. Empty text must not raise."""
        ...
