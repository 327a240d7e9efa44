"""The nouns every stage shares.

They live in one module so that a stage never imports another stage to learn
what a mention looks like: data crosses stage boundaries only as these values.
All timestamps are timezone-aware UTC; local time appears only at the edges
(business hours, rendering), which keeps comparisons and storage unambiguous.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from operator import attrgetter, gt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.reasons import Reason


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


# Limits applied to every post at the edge (``Mention.__post_init__``), the column sizes of
# ``store.tables.mentions`` for identifiers; a text beyond 20,000 characters is not a post but a page.
TEXT_LIMIT = 20_000
URL_LIMIT = 2_048
COUNT_LIMIT = 2**31 - 1  # follower and engagement counts: the store's INTEGER columns
FIELD_LIMITS = {"source": 32, "source_id": 128, "brand": 128, "author_handle": 256, "language": 8,
                "conversation_id": 128, "url": URL_LIMIT, "text": TEXT_LIMIT}
# C0 controls a store or a model cannot take, or that mean nothing in a post (\n and \t are kept),
# DEL, and UTF-16 surrogates (a lone one cannot even be encoded as UTF-8).
_UNWANTED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SPACE_LIKE = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1f]")  # line and record separators: a line break
_DROPPED = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")
_TEXT_FIELDS = attrgetter(*FIELD_LIMITS)
_TEXT_LIMITS = tuple(FIELD_LIMITS.values())


def clean_text(value: str, limit: int) -> str:
    """``value`` as every store and model can take it: one function, applied once at the edge.

    Surrogates are paired up where they form a character and replaced by U+FFFD where
    they do not; separators become a line break; NUL and the other controls go; the
    result is cut to ``limit`` characters. Clean text (nearly all of it) costs one
    regex search.
    """
    if _UNWANTED.search(value) is not None:
        if _SURROGATE.search(value) is not None:
            value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        value = _DROPPED.sub("", _SPACE_LIKE.sub("\n", value))
    return value if len(value) <= limit else value[:limit]


@dataclass(frozen=True, slots=True)
class Review:
    """What a review of the business adds to a post: its stars, the business's public reply, its edit time.

    A review is a ``Mention`` (text, language, author handle only: no reviewer
    profile) carrying one of these. ``rating`` is 1-5 on every platform (a
    Facebook recommendation is 5 or 1, see ``sources/reviews.py``);
    ``answer_url`` is where the business answers it on the platform.
    """

    rating: int
    reply: str | None = None
    reply_at: datetime | None = None
    edited_at: datetime | None = None
    answer_url: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rating", min(max(int(self.rating), 1), 5))
        for name in ("reply_at", "edited_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, utc(value))
        if self.reply is not None:
            object.__setattr__(self, "reply", clean_text(self.reply, TEXT_LIMIT))
        if self.answer_url is not None:
            object.__setattr__(self, "answer_url", clean_text(self.answer_url, URL_LIMIT))


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
    review: Review | None = None  # set for a review of the business (stars, reply), None for a post

    def __post_init__(self) -> None:
        """Normalise at the edge, for every source alike: no surrogate, NUL or over-long field
        ever reaches the store, the models or the rules (``clean_text``)."""
        created = self.created_at
        if created.tzinfo is not UTC:  # ``utc`` returns an aware UTC value itself
            object.__setattr__(self, "created_at", utc(created))
        # Every post read back from the store passes here (a backtest: a million), and nearly all are
        # clean: all fields at once in one search and one length test, field by field only when not.
        values = [("" if v is None else v) for v in _TEXT_FIELDS(self)]
        try:
            clean = _UNWANTED.search("".join(values)) is None and not any(map(gt, map(len, values), _TEXT_LIMITS))
        except TypeError:  # not text: left to the field-by-field test below, as before
            clean = False
        if not clean:
            for name, limit in FIELD_LIMITS.items():
                value = getattr(self, name)
                if isinstance(value, str):
                    cleaned = clean_text(value, limit)
                    if cleaned is not value:
                        object.__setattr__(self, name, cleaned)
        reach, engagement = self.author_reach, self.engagement
        if isinstance(reach, int) and not 0 <= reach <= COUNT_LIMIT:
            object.__setattr__(self, "author_reach", min(max(reach, 0), COUNT_LIMIT))
        if isinstance(engagement, int) and not 0 <= engagement <= COUNT_LIMIT:
            object.__setattr__(self, "engagement", min(max(engagement, 0), COUNT_LIMIT))

    @classmethod
    def from_store(cls, *values: Any) -> Mention:
        """A mention from a row the store wrote, its fields in declaration order: trusted, not cleaned again.

        Every row in ``mentions`` was built by this class (``__post_init__`` cleaned it) before it was
        written, and the store hands times back as aware UTC (``store.tables.UTCDateTime``), so the clean-up
        would find nothing to do; a backtest reads a million rows, and the clean-up cost 2 µs of the 3.4 a
        row took to build (here: 0.8 µs in all). Only ``store.mentions`` calls this, and only with values
        read from its own rows; anything from outside (a source, a file, a test) goes through the constructor.
        """
        self = object.__new__(cls)
        for set_field, value in zip(_MENTION_SETTERS, values, strict=True):
            set_field(self, value)
        return self


# Each field's slot, set directly (what ``object.__setattr__`` ends up doing, at half the cost per field).
_MENTION_SETTERS = tuple(getattr(Mention, f.name).__set__ for f in fields(Mention))


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
    group_by: str = "brand"  # the rule's ``group_by``: how long an open incident keeps this key (escalation.grouping)
    # The rule matched again inside its ``realert`` pause: the posts join the open incident of the same key
    # (a burst keeps collecting), but a follow-up never opens an incident nor calls anyone (nor is stored, so
    # it carries no reason: ``reason`` empty, ``detail`` None).
    follow_up: bool = False
    # The reason as facts (``monitor.reasons``), which each reader sees in their language; ``reason`` is the
    # same in English. None for the worker's own signals (a source down, a broken file): their words are shown.
    detail: Reason | None = None


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
    reason_data: Mapping[str, Any] | None = None  # ``reason`` as facts (``monitor.reasons``); None on older rows


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
    note_data: Mapping[str, Any] | None = None  # the engine's note as facts (``monitor.notes``); None: as written


@dataclass(frozen=True, slots=True)
class PostSummary:
    """One post as a notification carries it: what a receiver shows, nothing more."""

    id: int
    source: str
    text: str  # "" once erased or purged (``monitor.privacy``)
    created_at: datetime
    url: str | None = None
    author: str | None = None  # handle without '@'
    reach: int = 0
    engagement: int = 0
    language: str | None = None
    negative: float | None = None  # None: not scored
    # A review of the business (``Review``): its stars, the business's public reply, where to answer it.
    rating: int | None = None
    reply: str | None = None
    answer_url: str | None = None


@dataclass(frozen=True, slots=True)
class PersonRef:
    """A responder as a notification names them (``escalation.yaml``'s id, name and addresses)."""

    id: str
    name: str
    slack: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class GuidelineText:
    """The response guideline repeated to the people about to answer."""

    holding_statement: str  # the guideline's first (or only) text: what older rows and readers show
    who_may_answer: str
    never_say: tuple[str, ...] = ()
    # The holding statement per language ('nl', 'fr', 'en'), in the order the guideline gives them;
    # empty when the guideline has one text for every language.
    holding_statements: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class AlertPayload:
    """What a notification says about its incident, fixed when it was queued.

    Written by the escalation engine, stored as JSON in the outbox, read by every
    receiver. ``to_json`` writes the format stored since the first release and
    ``from_json`` reads any row written since (fields it does not know are ignored,
    fields missing from older or privacy-scrubbed rows take their defaults), so the
    rows already queued in a store still render after an upgrade.

    The fields after ``timezone`` belong to some kinds only: ``level``,
    ``ack_deadline`` and ``recipients`` to the ones that call people, ``new_mentions``
    to ``joined``, ``actor`` and ``note`` to changes made by a person,
    ``snoozed_until`` to ``snoozed``.
    """

    incident_id: int
    brand: str
    rule: str
    severity: Severity
    reason: str
    state: IncidentState | None = None
    policy: str | None = None
    opened_at: datetime | None = None
    mention_count: int | None = None  # None: as many as the posts shown
    top_mentions: tuple[PostSummary, ...] = ()  # widest reach first
    guideline: GuidelineText | None = None
    timezone: str = "UTC"
    level: int | None = None
    locale: str = "en"  # the team's language (``escalation.yaml``'s ``locale:``); a DM uses its reader's
    ack_deadline: datetime | None = None
    recipients: tuple[PersonRef, ...] | None = None
    new_mentions: tuple[PostSummary, ...] | None = None
    actor: str | None = None
    note: str | None = None
    snoozed_until: datetime | None = None
    # ``reason`` as facts (``monitor.reasons``), rendered in each reader's language; None on older rows and
    # the worker's own alerts, which show ``reason`` as stored. Kept as stored JSON: a newer release's round-trips.
    reason_data: Mapping[str, Any] | None = None
    note_data: Mapping[str, Any] | None = None  # ``note`` as facts (``monitor.notes``) when the engine wrote it

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "incident_id": self.incident_id,
            "brand": self.brand,
            "rule": self.rule,
            "severity": self.severity.value,
            "state": self.state.value if self.state is not None else None,
            "reason": self.reason,
            "policy": self.policy,
            "opened_at": _iso(self.opened_at),
            "mention_count": self.mention_count,
            "top_mentions": [_post_json(m) for m in self.top_mentions],
            "guideline": None if self.guideline is None else {
                "holding_statement": self.guideline.holding_statement,
                "who_may_answer": self.guideline.who_may_answer,
                "never_say": list(self.guideline.never_say),
                **({"holding_statements": dict(self.guideline.holding_statements)}
                   if self.guideline.holding_statements else {}),
            },
            "timezone": self.timezone,
        }
        if self.locale != "en":
            out["locale"] = self.locale
        # Kind-specific fields appear only where they were set, as they always have.
        if self.level is not None:
            out["level"] = self.level
        if self.ack_deadline is not None:
            out["ack_deadline"] = self.ack_deadline.isoformat()
        if self.recipients is not None:
            out["recipients"] = [{"id": r.id, "name": r.name, "slack": r.slack, "email": r.email}
                                 for r in self.recipients]
        if self.new_mentions is not None:
            out["new_mentions"] = [_post_json(m) for m in self.new_mentions]
        for name in ("actor", "note"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.snoozed_until is not None:
            out["snoozed_until"] = self.snoozed_until.isoformat()
        if self.reason_data is not None:
            out["reason_data"] = dict(self.reason_data)
        if self.note_data is not None:
            out["note_data"] = dict(self.note_data)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertPayload:
        """Read a stored payload; a row without the incident's identity is a ``ValueError`` naming the field."""
        missing = [k for k in ("incident_id", "brand", "rule", "severity", "reason") if data.get(k) is None]
        if missing:
            raise ValueError(f"notification payload lacks {', '.join(missing)}")
        g = data.get("guideline")
        people = data.get("recipients")
        new = data.get("new_mentions")
        state = data.get("state")
        count = data.get("mention_count")
        level = data.get("level")
        return cls(
            incident_id=int(data["incident_id"]),
            brand=str(data["brand"]),
            rule=str(data["rule"]),
            severity=Severity(data["severity"]),
            reason=str(data["reason"]),
            state=IncidentState(state) if state else None,
            policy=_str(data.get("policy")),
            opened_at=_time(data.get("opened_at")),
            mention_count=int(count) if count is not None else None,
            top_mentions=_posts(data.get("top_mentions")),
            guideline=GuidelineText(str(g.get("holding_statement", "")), str(g.get("who_may_answer", "")),
                                    tuple(str(x) for x in g.get("never_say") or ()),
                                    tuple((str(k), str(v)) for k, v in (g.get("holding_statements") or {}).items()))
            if isinstance(g, Mapping) and g else None,
            timezone=str(data.get("timezone") or "UTC"),
            locale=str(data.get("locale") or "en"),
            level=int(level) if level is not None else None,
            ack_deadline=_time(data.get("ack_deadline")),
            recipients=None if people is None else tuple(
                PersonRef(str(r["id"]), str(r.get("name") or r["id"]), _str(r.get("slack")), _str(r.get("email")))
                for r in people if isinstance(r, Mapping)),
            new_mentions=None if new is None else _posts(new),
            actor=_str(data.get("actor")),
            note=_str(data.get("note")),
            snoozed_until=_time(data.get("snoozed_until")),
            reason_data=data["reason_data"] if isinstance(data.get("reason_data"), Mapping) else None,
            note_data=data["note_data"] if isinstance(data.get("note_data"), Mapping) else None,
        )


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _str(value: Any) -> str | None:
    return str(value) if value is not None else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _post_json(m: PostSummary) -> dict[str, Any]:
    return {"id": m.id, "source": m.source, "url": m.url, "author": m.author, "reach": m.reach,
            "engagement": m.engagement, "language": m.language, "text": m.text,
            "created_at": m.created_at.isoformat(), "negative": m.negative,
            **({"rating": m.rating, "reply": m.reply, "answer_url": m.answer_url} if m.rating is not None else {})}


def _posts(items: Any) -> tuple[PostSummary, ...]:
    return tuple(
        PostSummary(id=int(m["id"]), source=str(m["source"]), text=str(m.get("text") or ""),
                    created_at=datetime.fromisoformat(m["created_at"]), url=m.get("url") or None,
                    author=m.get("author") or None, reach=int(m.get("reach") or 0),
                    engagement=int(m.get("engagement") or 0), language=m.get("language") or None,
                    negative=float(m["negative"]) if m.get("negative") is not None else None,
                    rating=int(m["rating"]) if m.get("rating") is not None else None,
                    reply=m.get("reply") or None, answer_url=m.get("answer_url") or None)
        for m in items or () if isinstance(m, Mapping))


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to deliver, as stored in the outbox before it is sent."""

    id: int
    incident_id: int
    kind: str  # "alert", "escalation", "update", "resolved", ...
    recipients: tuple[str, ...]
    channel: str | None
    payload: AlertPayload
    created_at: datetime
    # Send attempts started before this one: > 0 means an earlier try may have reached the
    # receiver before a crash, so a receiver that can look up its own messages should check first.
    attempts: int = 0
