"""What an alert says, independent of where it is shown.

The console notifier and Slack's Block Kit both render from these plain parts
(``view`` / ``post_view``), so the two can never disagree on the content of an
alert: a field added here shows up in both, a wording fixed here is fixed in both.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from monitor.links import web_link
from monitor.models import AlertPayload, PersonRef, PostSummary
from monitor.sources.registry import display_name
from monitor.text import shorten

TITLES = {
    "alert": "NEW INCIDENT",
    "escalation": "ESCALATED",
    "joined": "MORE POSTS",
    "acknowledged": "ACKNOWLEDGED",
    "reminder": "REMINDER",
    "snoozed": "SNOOZED",
    "resolved": "RESOLVED",
    "false_positive": "FALSE POSITIVE",
    "expired": "EXPIRED",
}
# Kinds that bring an incident to a level: the first call (level 1) and each escalation to the next.
LEVEL_KINDS = ("alert", "escalation")
# Kinds that call people: they say who is called and until when they have to acknowledge. A reminder
# calls the people of the level already reached again, so it calls without reaching a level.
CALLING_KINDS = (*LEVEL_KINDS, "reminder")
# Kinds that report what a person did.
ACTOR_KINDS = ("acknowledged", "resolved", "false_positive")
# Kinds where the response guideline is repeated (the people reading them are about to respond).
GUIDELINE_KINDS = ("alert", "escalation")
MAX_POSTS = 3
POST_TEXT_LIMIT = 280  # characters of a post quoted in an alert


def local_time(when: dt.datetime, zone: str) -> str:
    return when.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M")


def headline(kind: str, p: AlertPayload) -> str:
    title = TITLES.get(kind, kind.upper())
    return f"[{title}] #{p.incident_id} {p.severity.value.upper()} · {p.brand} · rule {p.rule}"


@dataclass(frozen=True, slots=True)
class PostView:
    """One post as every receiver shows it."""

    text: str  # whitespace collapsed, shortened
    url: str | None
    author: str | None  # handle without '@'
    reach: int
    source: str  # display name, e.g. "X"
    language: str  # "?" when unknown
    negative: float | None
    posted: str  # local time, e.g. "Wed 18 Nov 10:00"
    mention_id: int | None = None  # for per-post feedback (Slack's menu, ``monitor label --id``)
    rating: int | None = None  # a review of the business: its stars
    reply: str | None = None  # the business's public reply to it, if any
    answer_url: str | None = None  # where to answer it on the platform

    @property
    def who(self) -> str:
        return f"@{self.author}" if self.author else "unknown author"

    @property
    def score(self) -> str:
        return f"negative {self.negative:.0%}" if self.negative is not None else "not scored"

    @property
    def details(self) -> str:
        if self.rating is not None:  # a review: its stars; its reach is the platform's weight, not followers
            return (f"{stars(self.rating)} {self.rating}/5 · {self.who} · review on {self.source} · {self.language}"
                    f" · {self.score} · {self.posted}")
        return f"{self.who} · {self.reach:,} followers · {self.source} · {self.language} · {self.score} · {self.posted}"

    @property
    def review_lines(self) -> tuple[str, ...]:
        """The business's reply (or that there is none yet) and where to answer: empty for a post."""
        if self.rating is None:
            return ()
        reply = f"Our reply: “{shorten(self.reply, POST_TEXT_LIMIT)}”" if self.reply else "Not answered yet"
        return (reply,) + ((f"Answer it on {self.source}: {self.answer_url}",) if self.answer_url else ())


def stars(rating: int) -> str:
    """'★☆☆☆☆' for one star of five."""
    return "★" * rating + "☆" * (5 - rating)


def post_view(m: PostSummary, zone: str) -> PostView:
    return PostView(
        text=shorten(m.text, POST_TEXT_LIMIT),
        url=web_link(m.url),
        author=m.author or None,
        reach=m.reach,
        source=display_name(m.source),
        language=m.language or "?",
        negative=m.negative,
        posted=local_time(m.created_at, zone),
        mention_id=m.id,
        rating=m.rating,
        reply=m.reply,
        answer_url=web_link(m.answer_url),
    )


def post_lines(m: PostSummary, zone: str) -> list[str]:
    v = post_view(m, zone)
    return [f"“{v.text}”", v.details, f"{v.url or '(no link)'}"]


@dataclass(frozen=True, slots=True)
class GuidelineView:
    holding_statement: str
    who_may_answer: str
    never_say: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AlertView:
    """Everything a receiver may show about one notification, already decided.

    ``show_*`` say which parts belong to this kind of message, so that a receiver
    never re-derives the rules (and never shows a guideline the console hides).
    """

    kind: str
    title: str
    headline: str
    incident_id: int
    severity: str
    brand: str
    rule: str
    reason: str
    zone: str
    level: int
    recipients: tuple[PersonRef, ...]
    ack_deadline: dt.datetime | None
    actor: str | None
    note: str | None
    posts: tuple[PostView, ...]  # at most MAX_POSTS
    mention_count: int
    guideline: GuidelineView | None
    snoozed_until: dt.datetime | None
    show_calling: bool
    show_actor: bool
    show_guideline: bool

    def local(self, when: dt.datetime) -> str:
        return when.astimezone(ZoneInfo(self.zone)).strftime("%a %d %b %H:%M")


def view(kind: str, p: AlertPayload) -> AlertView:
    posts = p.new_mentions or p.top_mentions
    g = p.guideline
    return AlertView(
        kind=kind,
        title=TITLES.get(kind, kind.upper()),
        headline=headline(kind, p),
        incident_id=p.incident_id,
        severity=p.severity.value,
        brand=p.brand,
        rule=p.rule,
        reason=p.reason,
        zone=p.timezone,
        level=p.level if p.level is not None else 1,
        recipients=p.recipients or (),
        ack_deadline=p.ack_deadline,
        actor=p.actor or None,
        note=p.note or None,
        posts=tuple(post_view(m, p.timezone) for m in posts[:MAX_POSTS]),
        mention_count=p.mention_count if p.mention_count is not None else len(posts),
        guideline=GuidelineView(g.holding_statement, g.who_may_answer, g.never_say) if g else None,
        snoozed_until=p.snoozed_until,
        show_calling=kind in CALLING_KINDS,
        show_actor=kind in ACTOR_KINDS and bool(p.actor),
        show_guideline=bool(g) and kind in GUIDELINE_KINDS,
    )


def lines(kind: str, p: AlertPayload) -> list[str]:
    v = view(kind, p)
    out = [v.headline, f"Why: {v.reason}"]
    if v.show_calling:
        names = ", ".join(r.name for r in v.recipients) or "(channel only)"
        out.append(f"Level {v.level} → {names}")
        if v.ack_deadline is not None:
            out.append(f"Acknowledge before {v.local(v.ack_deadline)} or the next level is called")
    if v.show_actor:
        out.append(f"By: {v.actor}" + (f" — {v.note}" if v.note else ""))
    if kind == "snoozed" and v.snoozed_until is not None:
        out.append(f"Snoozed by {v.actor or '?'}: no escalation before {v.local(v.snoozed_until)}")
    if v.posts:
        out.append(f"Posts ({v.mention_count} in this incident):")
        for post in v.posts:
            out.extend("  " + line for line in (f"“{post.text}”", post.details, f"{post.url or '(no link)'}",
                                                *post.review_lines))
    if v.show_guideline and v.guideline is not None:
        out.append(f"Holding statement: {v.guideline.holding_statement}")
        out.append(f"Who may answer: {v.guideline.who_may_answer}")
        if v.guideline.never_say:
            out.append("Never say: " + "; ".join(v.guideline.never_say))
    return out
