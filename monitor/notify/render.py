"""What an alert says, independent of where it is shown.

The console notifier and Slack's Block Kit both render from these plain parts
(``view`` / ``post_view``), so the two can never disagree on the content of an
alert: a field added here shows up in both, a wording fixed here is fixed in both.
Every word goes through the reader's translator (``monitor.i18n``): the team's
``locale`` for the channel, a responder's own for their DM or e-mail, and every
time in the configured zone, formatted for that language.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from monitor import notes, reasons
from monitor.i18n import N_, Translator, translator
from monitor.links import web_link
from monitor.models import AlertPayload, GuidelineText, PersonRef, PostSummary
from monitor.sources.registry import display_name
from monitor.text import shorten

TITLES = {
    "alert": N_("NEW INCIDENT"),
    "escalation": N_("ESCALATED"),
    "joined": N_("MORE POSTS"),
    "acknowledged": N_("ACKNOWLEDGED"),
    "reminder": N_("REMINDER"),
    "snoozed": N_("SNOOZED"),
    "resolved": N_("RESOLVED"),
    "false_positive": N_("FALSE POSITIVE"),
    "expired": N_("EXPIRED"),
}
SEVERITIES = {"critical": N_("critical"), "warning": N_("warning"), "info": N_("info")}
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


def reader(p: AlertPayload, locale: str | None = None) -> Translator:
    """The translator for one reader of this payload: ``locale`` (a responder's), else the team's."""
    return translator(locale or p.locale, p.timezone)


def title(kind: str, t: Translator) -> str:
    return t._(TITLES[kind]) if kind in TITLES else kind.upper()


def severity_word(severity: str, t: Translator) -> str:
    return t._(SEVERITIES[severity]) if severity in SEVERITIES else severity


def headline(kind: str, p: AlertPayload, t: Translator | None = None) -> str:
    t = t or reader(p)
    return t._("[{title}] #{id} {severity} · {brand} · rule {rule}", title=title(kind, t), id=p.incident_id,
               severity=severity_word(p.severity.value, t).upper(), brand=p.brand, rule=p.rule)


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
    posted: str  # local time in the reader's language, e.g. "wo 18 nov 10:00"
    mention_id: int | None = None  # for per-post feedback (Slack's menu, ``monitor label --id``)
    rating: int | None = None  # a review of the business: its stars
    reply: str | None = None  # the business's public reply to it, if any
    answer_url: str | None = None  # where to answer it on the platform
    who: str = ""  # "@handle" or "unknown author", in the reader's language
    details: str = ""  # who · followers · source · language · score · when (a review: stars instead of followers)
    open_label: str = ""  # "Open the post on X"
    no_link: str = "(no link)"
    review_lines: tuple[str, ...] = ()  # a review: the business's reply (or that there is none yet), where to answer


def stars(rating: int) -> str:
    """'★☆☆☆☆' for one star of five."""
    return "★" * rating + "☆" * (5 - rating)


def review_lines(m: PostSummary, source: str, answer_url: str | None, t: Translator) -> tuple[str, ...]:
    """The business's reply (or that there is none yet) and where to answer: empty for a post."""
    if m.rating is None:
        return ()
    reply = (t._("Our reply: “{reply}”", reply=shorten(m.reply, POST_TEXT_LIMIT)) if m.reply
             else t._("Not answered yet"))
    return (reply,) + ((t._("Answer it on {source}: {url}", source=source, url=answer_url),) if answer_url else ())


def post_view(m: PostSummary, t: Translator) -> PostView:
    source = display_name(m.source)
    who = f"@{m.author}" if m.author else t._("unknown author")
    score = t._("negative {share}", share=t.percent(m.negative)) if m.negative is not None else t._("not scored")
    posted = t.datetime(m.created_at)
    if m.rating is not None:  # a review: its stars; its reach is the platform's weight, not followers
        details = " · ".join([f"{stars(m.rating)} {m.rating}/5", who, t._("review on {source}", source=source),
                              m.language or "?", score, posted])
    else:
        details = " · ".join([who, t.ngettext("{n} follower", "{n} followers", m.reach), source,
                              m.language or "?", score, posted])
    answer_url = web_link(m.answer_url)
    return PostView(
        text=shorten(m.text, POST_TEXT_LIMIT),
        url=web_link(m.url),
        author=m.author or None,
        reach=m.reach,
        source=source,
        language=m.language or "?",
        negative=m.negative,
        posted=posted,
        mention_id=m.id,
        rating=m.rating,
        reply=m.reply,
        answer_url=answer_url,
        who=who,
        details=details,
        open_label=t._("Open the post on {source}", source=source),
        no_link=t._("(no link)"),
        review_lines=review_lines(m, source, answer_url, t),
    )


@dataclass(frozen=True, slots=True)
class GuidelineView:
    holding_statement: str  # the one to post: in the language of the incident's posts when the guideline has it
    who_may_answer: str
    never_say: tuple[str, ...]
    # (label, text) for every language the guideline gives, the post's language first; one entry for one text.
    statements: tuple[tuple[str, str], ...] = ()


def post_language(posts: tuple[PostSummary, ...] | list[PostSummary]) -> str | None:
    """The language of the post that matters most (the first, widest reach) that has one."""
    return next((m.language for m in posts if m.language), None)


def statements_in_order(g: GuidelineText, language: str | None, t: Translator) -> tuple[tuple[str, str], ...]:
    """The holding statements, the post's language first, then the reader's, then the rest as written.

    Each comes with its label ("Holding statement (Dutch)"); a single text for every language is one entry.
    """
    if not g.holding_statements:
        return ((t._("Holding statement"), g.holding_statement),)
    order = {language: 0, t.language: 1}
    ranked = sorted(g.holding_statements, key=lambda item: order.get(item[0], 2))
    return tuple((t._("Holding statement ({language})", language=t.language_name(lang)), text)
                 for lang, text in ranked)


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
    t: Translator  # the reader's words, dates and numbers

    def local(self, when: dt.datetime) -> str:
        """A time in the team's zone, in the reader's language: 'ma 16 nov 10:05'."""
        return self.t.datetime(when)


def view(kind: str, p: AlertPayload, locale: str | None = None) -> AlertView:
    """What to show, in ``locale`` (a responder's) or else the team's language."""
    t = reader(p, locale)
    posts = p.new_mentions or p.top_mentions
    g = p.guideline
    guideline = None
    if g:
        statements = statements_in_order(g, post_language(posts), t)
        guideline = GuidelineView(statements[0][1], g.who_may_answer, g.never_say, statements)
    return AlertView(
        kind=kind,
        title=title(kind, t),
        headline=headline(kind, p, t),
        incident_id=p.incident_id,
        severity=severity_word(p.severity.value, t),
        brand=p.brand,
        rule=p.rule,
        reason=reasons.text(p.reason_data, p.reason, t),
        zone=p.timezone,
        level=p.level if p.level is not None else 1,
        recipients=p.recipients or (),
        ack_deadline=p.ack_deadline,
        actor=p.actor or None,
        note=notes.text(p.note_data, p.note, t) or None,
        posts=tuple(post_view(m, t) for m in posts[:MAX_POSTS]),
        mention_count=p.mention_count if p.mention_count is not None else len(posts),
        guideline=guideline,
        snoozed_until=p.snoozed_until,
        show_calling=kind in CALLING_KINDS,
        show_actor=kind in ACTOR_KINDS and bool(p.actor),
        show_guideline=bool(g) and kind in GUIDELINE_KINDS,
        t=t,
    )


def lines(kind: str, p: AlertPayload, locale: str | None = None) -> list[str]:
    """The alert as plain lines (console, e-mail), in ``locale`` or else the team's language."""
    v = view(kind, p, locale)
    t = v.t
    out = [v.headline, t._("Why: {reason}", reason=v.reason)]
    if v.show_calling:
        names = ", ".join(r.name for r in v.recipients) or t._("(channel only)")
        out.append(t._("Level {level} → {names}", level=v.level, names=names))
        if v.ack_deadline is not None:
            out.append(t._("Acknowledge before {time} or the next level is called",
                           time=t.datetime_zone(v.ack_deadline)))
    if v.show_actor:
        out.append(t._("By: {actor}", actor=v.actor) + (f" — {v.note}" if v.note else ""))
    if kind == "snoozed" and v.snoozed_until is not None:
        out.append(t._("Snoozed by {actor}: no escalation before {time}", actor=v.actor or "?",
                       time=t.datetime_zone(v.snoozed_until)))
    if v.posts:
        out.append(t._("Posts ({count} in this incident):", count=t.number(v.mention_count)))
        for post in v.posts:
            out.extend("  " + line for line in (f"“{post.text}”", post.details, post.url or post.no_link,
                                                *post.review_lines))
    if v.show_guideline and v.guideline is not None:
        out.extend(f"{label}: {text}" for label, text in v.guideline.statements)
        out.append(t._("Who may answer: {who}", who=v.guideline.who_may_answer))
        if v.guideline.never_say:
            out.append(t._("Never say: {items}", items="; ".join(v.guideline.never_say)))
    return out
