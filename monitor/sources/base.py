"""The source interface: ``poll(cursor) -> (mentions, next_cursor)``.

A source never writes to the store itself: the worker stores the mentions and
the returned cursor in one transaction, so a crash between the two is
impossible and no source needs its own bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from monitor.models import Mention


@dataclass(frozen=True, slots=True)
class PollResult:
    mentions: list[Mention]
    next_cursor: str | None
    # True when a finite source (a replayed file) has nothing more to give.
    exhausted: bool = False
    skipped: list[str] = field(default_factory=list)  # human-readable reasons for dropped items


class Source(Protocol):
    @property
    def name(self) -> str:
        """Unique name; the key of this source's cursor in the store."""
        ...

    def poll(self, cursor: str | None) -> PollResult:
        """Fetch what is new after ``cursor``. Must not raise for bad items: skip and report them."""
        ...
