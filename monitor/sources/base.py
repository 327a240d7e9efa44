"""The source interface: ``poll(cursor) -> PollResult``, and the one result type of a poll.

A source never writes to the store itself: the worker stores the mentions and
the returned cursor in one transaction, so a crash between the two is
impossible and no source needs its own bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from monitor.models import Mention


@dataclass(frozen=True, slots=True)
class PollResult:
    """One poll of one source, from what the source fetched to what the poller stored.

    One type travels the whole way (source -> ``poll_source`` -> ``Pipeline.poll``
    -> the worker and the metrics), so a field added here reaches every reader
    and no stage re-packs the numbers under other names.

    A source fills in the first fields. A live API also says what the poll cost
    (``requests``) and whether it pushed back: ``problem`` set means the poll
    did not complete (the mentions it did get are still stored, with a cursor
    that resumes where it stopped) and is recorded as a failure;
    ``deferred_until`` makes the poller skip the source without a request
    until then. ``poll_source`` returns the same result with ``new`` (stored,
    duplicates excluded) filled in, or with ``ran=False`` when it skipped the
    source without asking it (deferred, daily budget spent).
    """

    mentions: list[Mention] = field(default_factory=list)
    next_cursor: str | None = None
    # True when a finite source (a replayed file) has nothing more to give.
    exhausted: bool = False
    skipped: list[str] = field(default_factory=list)  # human-readable reasons for dropped items
    requests: int = 0  # metered API requests spent (X bills each read)
    problem: str | None = None
    deferred_until: datetime | None = None
    # ``problem`` means "we cannot see": a token, a permission, a refused login or key. It will not heal by
    # itself, so the source-health alert is raised at once (``sources.health``), not after the grace period.
    blind: bool = False
    # Set by the poller, never by a source:
    new: int = 0
    ran: bool = True  # False: skipped without a request (deferred, budget spent)

    @property
    def fetched(self) -> int:
        return len(self.mentions)

    @property
    def failed(self) -> bool:
        """The source was asked and did not answer completely (an exception, an error, a rate limit)."""
        return self.ran and self.problem is not None


class Source(Protocol):
    @property
    def name(self) -> str:
        """Unique name; the key of this source's cursor in the store."""
        ...

    def poll(self, cursor: str | None) -> PollResult:
        """Fetch what is new after ``cursor``. Must not raise for bad items: skip and report them."""
        ...
