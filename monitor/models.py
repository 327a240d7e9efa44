"""The nouns every stage shares.

They live in one module so that a stage never imports another stage to learn
what a mention looks like: data crosses stage boundaries only as these values.
All timestamps are timezone-aware UTC; local time appears only at the edges
(business hours, rendering), which keeps comparisons and storage unambiguous.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime


def utc(dt: datetime) -> datetime:
    """Normalise a datetime to aware UTC (naive values are taken as UTC)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "critical": 2}[self.value]


class SentimentLabel(enum.StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


@dataclass(frozen=True, slots=True)
class Mention:
    """One public post that names a brand, normalised across platforms.

    Only what an alert or a digest needs is kept: no profile data beyond the
    public handle and follower count (GDPR data minimisation).
    """

    source: str
    source_id: str
    brand: str
    text: str
    created_at: datetime
    url: str | None = None
    author_handle: str | None = None
    author_reach: int = 0
    engagement: int = 0
    language: str | None = None
    conversation_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", utc(self.created_at))


@dataclass(frozen=True, slots=True)
class SentimentScores:
    """Probabilities for the three classes; they sum to 1.

    Rules threshold ``negative`` directly instead of trusting the arg-max label,
    because the neutral class is the weak one and precision decides alert fatigue.
    """

    negative: float
    neutral: float
    positive: float

    @property
    def label(self) -> SentimentLabel:
        best = max(
            (self.negative, SentimentLabel.NEGATIVE),
            (self.neutral, SentimentLabel.NEUTRAL),
            (self.positive, SentimentLabel.POSITIVE),
        )
        return best[1]

    def as_dict(self) -> dict[str, float]:
        return {"negative": self.negative, "neutral": self.neutral, "positive": self.positive}


@dataclass(frozen=True, slots=True)
class StoredMention:
    """A mention as read back from the store, with its row id and any score."""

    id: int
    mention: Mention
    sentiment: SentimentScores | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """A rule fired: what, how bad, and why in words a comms officer reads."""

    rule: str
    severity: Severity
    brand: str
    group_key: str
    reason: str
    fired_at: datetime
    mention_ids: tuple[int, ...]
    kind: str = "mention"  # "mention" (one post) or "window" (frequency / spike)


class IncidentState(enum.StrEnum):
    OPEN = "open"
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"
    EXPIRED = "expired"

    @property
    def is_closed(self) -> bool:
        return self in (IncidentState.RESOLVED, IncidentState.FALSE_POSITIVE, IncidentState.EXPIRED)


@dataclass(frozen=True, slots=True)
class Incident:
    """Signals grouped under one key: one page, one Slack message, one timeline.

    Exactly the stored row (``store.incidents``): the escalation engine, the Slack
    buttons and the tests read the same fields under the same names. Its posts are
    a separate list (``store.incidents.mention_ids``), read only where needed.
    """

    id: int
    key: str
    brand: str
    rule: str
    kind: str  # the kind of the signal that opened it: "mention" or "window"
    severity: Severity
    state: IncidentState
    policy: str
    level: int  # the escalation level last called (0: nobody yet)
    cycle: int  # how many times the policy's levels have been gone through again
    reason: str
    opened_at: datetime
    updated_at: datetime
    last_mention_at: datetime  # the newest post's time: the grouping window and quiet periods count from it
    next_action_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One line of an incident's timeline: who changed what, when, and why."""

    id: int
    incident_id: int
    at: datetime
    from_state: str | None
    to_state: str
    level: int
    actor: str
    note: str | None


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to deliver, as stored in the outbox before it is sent."""

    id: int
    incident_id: int
    kind: str  # "alert", "escalation", "update", "resolved", ...
    recipients: tuple[str, ...]
    channel: str | None
    payload: dict[str, object]
    created_at: datetime
    # Send attempts started before this one: > 0 means an earlier try may have reached the
    # receiver before a crash, so a receiver that can look up its own messages should check first.
    attempts: int = 0
