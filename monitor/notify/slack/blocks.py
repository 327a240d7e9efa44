"""Block Kit layouts for an incident: the card, its thread lines, the buttons.

Pure functions of a notification's payload (plus "now" for the time left), built
from ``monitor.notify.render.view`` so Slack and the console say the same thing.
The card is one message per incident that ``chat.update`` keeps current, so it
always shows the *current* state: who is called and until when while it waits,
who acknowledged or closed it afterwards, and only the buttons that still apply.
Every function takes the reader's ``locale`` (None: the team's, from the payload):
the channel's card speaks the team's language, a DM its reader's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.escalation.snooze import SNOOZES
from monitor.i18n import N_, Translator
from monitor.models import AlertPayload
from monitor.notify.render import AlertView, PostView, view

Block = dict[str, Any]
Who = Callable[[str], str]  # responder id -> mrkdwn (a <@U…> mention or an escaped name)

ACK = "incident_ack"
RESOLVE = "incident_resolve"
FALSE_POSITIVE = "incident_false_positive"
SNOOZE = "incident_snooze"  # a menu of the offered lengths; each option's value is "<incident id>:<minutes>"
ACTION_IDS = (ACK, RESOLVE, FALSE_POSITIVE, SNOOZE)
POST_FEEDBACK = "post_feedback"  # the "…" menu on each post: what the model got wrong about it
FEEDBACK_OPTIONS = (("not_negative", N_("Not negative")), ("wrong_language", N_("Wrong language")),
                    ("not_about_us", N_("Not about us")), ("negative", N_("Negative: alert was right")))
ACTIONS_BLOCK = "incident_actions"

EMOJI = {
    "alert": ":rotating_light:",
    "escalation": ":rotating_light:",
    "reminder": ":alarm_clock:",
    "joined": ":heavy_plus_sign:",
    "acknowledged": ":eyes:",
    "snoozed": ":zzz:",
    "resolved": ":white_check_mark:",
    "false_positive": ":white_circle:",
    "expired": ":hourglass:",
}
WAITING = ("alert", "escalation", "snoozed")  # nobody has acknowledged yet: every button applies
HANDLING = ("acknowledged", "reminder")  # someone is on it: only closing buttons apply
CLOSED = ("resolved", "false_positive", "expired")
CLOSED_WORDS = {"resolved": N_("Resolved"), "false_positive": N_("Marked as a false positive"),
                "expired": N_("Expired")}

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
HEADER_MAX = 150
OPTION_TEXT_MAX = 75
TEXT_MAX = 3000
FALLBACK_MAX = 3000


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """``text`` is the notification / screen-reader fallback; ``blocks`` what Slack shows."""

    text: str
    blocks: list[Block]


def escape(text: str) -> str:
    """Slack mrkdwn control characters: a post saying ``<!channel>`` must not ping a channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _link(url: str, label: str) -> str:
    safe = url.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C").replace(" ", "%20")
    return f"<{safe}|{escape(label)}>"


def slack_date(when: dt.datetime, t: Translator) -> str:
    """A time every reader sees in their own zone; the team's zone, named, where Slack cannot."""
    shown = t._("{date} at {time}", date="{date_short_pretty}", time="{time}")
    return f"<!date^{int(when.timestamp())}^{shown}|{escape(t.datetime_zone(when))}>"


def duration_words(delta: dt.timedelta, t: Translator) -> str:
    """Time left or passed, to the minute: '12 min', '1 h 05 min', '2 days 3 h'."""
    return t.duration(dt.timedelta(minutes=max(0, round(delta.total_seconds() / 60))))


def _section(text: str, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, TEXT_MAX)}}
    if block_id:
        block["block_id"] = block_id
    return block


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, TEXT_MAX)}]}


def _button(action_id: str, label: str, incident_id: int, style: str | None = None,
            confirm: tuple[str, str, str, str] | None = None) -> Block:
    button: Block = {"type": "button", "action_id": action_id, "value": str(incident_id),
                     "text": {"type": "plain_text", "text": label, "emoji": True}}
    if style:
        button["style"] = style
    if confirm:
        title, text, yes, no = confirm
        button["confirm"] = {"title": {"type": "plain_text", "text": title},
                             "text": {"type": "mrkdwn", "text": text},
                             "confirm": {"type": "plain_text", "text": yes},
                             "deny": {"type": "plain_text", "text": no}}
    return button


def buttons(kind: str, incident_id: int, t: Translator) -> Block | None:
    """The buttons that still make sense in this state; none once the incident is closed."""
    if kind not in WAITING and kind not in HANDLING:
        return None
    elements = []
    if kind in WAITING:
        elements.append(_button(ACK, t._("Acknowledge"), incident_id, style="primary"))
    elements.append(_button(RESOLVE, t._("Resolve"), incident_id))
    elements.append(_button(FALSE_POSITIVE, t._("False positive"), incident_id, confirm=(
        t._("Mark as a false positive?"),
        t._("Incident #{id} will be closed and nobody else will be called.", id=incident_id),
        t._("False positive"), t._("Cancel"))))
    if kind in WAITING:
        elements.append(snooze_menu(incident_id, t))
    return {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": elements}


def snooze_value(incident_id: int, minutes: int) -> str:
    """What a snooze option sends back: the incident and the length, checked again when it arrives."""
    return f"{incident_id}:{minutes}"


def snooze_menu(incident_id: int, t: Translator) -> Block:
    """"Snooze for…": the lengths the console offers too (``escalation.snooze``), in the reader's words.

    A ``static_select`` rather than an ``overflow``: an overflow holds at most five options and
    shows only "…", while this one says what it does before it is opened.
    """
    options = [{"text": {"type": "plain_text", "text": _clip(t._(words), OPTION_TEXT_MAX), "emoji": True},
                "value": snooze_value(incident_id, minutes)}
               for minutes, words in SNOOZES.items()]
    return {"type": "static_select", "action_id": SNOOZE, "options": options,
            "placeholder": {"type": "plain_text", "text": _clip(t._("Snooze for") + "…", OPTION_TEXT_MAX),
                            "emoji": True}}


def post_blocks(post: PostView, t: Translator) -> list[Block]:
    """The post itself (quoted, shortened, linked) and who said it, where, how negative."""
    text = f"> {escape(post.text)}"
    if post.url:
        text += "\n" + _link(post.url, post.open_label)
    section = _section(text)
    if post.mention_id is not None:
        section["accessory"] = feedback_menu(post.mention_id, t)
    return [section, _context(escape(post.details)), *(_context(escape(line)) for line in post.review_lines)]


def feedback_menu(mention_id: int, t: Translator) -> Block:
    """The post's menu: each choice is stored as this person's label on this post (``store.feedback``)."""
    return {"type": "overflow", "action_id": POST_FEEDBACK,
            "options": [{"text": {"type": "plain_text", "text": t._(words)}, "value": f"{mention_id}:{label}"}
                        for label, words in FEEDBACK_OPTIONS]}


def _deadline_line(v: AlertView, now: dt.datetime) -> str | None:
    if v.ack_deadline is None:
        return None
    t = v.t
    when = slack_date(v.ack_deadline, t)
    left = v.ack_deadline - now
    if left.total_seconds() <= 0:
        return ":hourglass: " + t._("The time to acknowledge ran out {when}: the next level is being called.",
                                    when=when)
    return ":hourglass_flowing_sand: " + t._("*{left} left* to acknowledge — by {when}, then the next level is "
                                             "called.", left=duration_words(left, t), when=when)


def status_text(kind: str, p: AlertPayload, *, who: Who, now: dt.datetime,
                recipients: Sequence[str] = (), locale: str | None = None) -> str:
    """The line that tells the channel at a glance where the incident stands."""
    v = view(kind, p, locale)
    t = v.t
    actor = who(v.actor) if v.actor else t._("someone")
    if kind in ("alert", "escalation"):
        called = ", ".join(who(r.id) for r in v.recipients) or t._("the channel")
        if kind == "escalation":
            lines = [t._("Escalated to *Level {level}* → {called}", level=v.level, called=called)]
        else:
            lines = [t._("*Level {level}* → {called}", level=v.level, called=called)]
        deadline = _deadline_line(v, now)
        if deadline:
            lines.append(deadline)
        return "\n".join(lines)
    if kind == "snoozed":
        until = v.snoozed_until or v.ack_deadline
        if until is None:
            return ":zzz: " + t._("*Snoozed* by {actor}", actor=actor)
        return ":zzz: " + t._("*Snoozed* by {actor}: no escalation before {when} ({left} from now).", actor=actor,
                              when=slack_date(until, t), left=duration_words(until - now, t))
    if kind == "acknowledged":
        return ":eyes: " + t._("*Acknowledged* by {actor}: escalation stopped. Resolve when it is handled.",
                               actor=actor)
    if kind == "reminder":
        holder = ", ".join(who(r) for r in recipients) or t._("someone")
        return ":alarm_clock: " + t._("*Still open*: acknowledged by {holder} but not resolved yet.", holder=holder)
    if kind in CLOSED:
        note = f" — {escape(v.note)}" if v.note else ""
        return f"{EMOJI[kind]} " + t._("*{closed}* by {actor}", closed=t._(CLOSED_WORDS[kind]), actor=actor) + note
    return f"*{escape(v.title.capitalize())}*"


def card(kind: str, p: AlertPayload, *, who: Who, now: dt.datetime, recipients: Sequence[str] = (),
         intro: str | None = None, locale: str | None = None) -> SlackMessage:
    """The incident's one message, as it should look after a notification of this kind."""
    v = view(kind, p, locale)
    t = v.t
    blocks: list[Block] = []
    title = f"{EMOJI.get(kind, ':bell:')} {v.title} · #{v.incident_id} {v.severity.upper()} · {v.brand}"
    blocks.append({"type": "header", "text": {"type": "plain_text", "text": _clip(title, HEADER_MAX), "emoji": True}})
    if intro:
        blocks.append(_context(intro))
    blocks.append(_section(t._("*Why:* {reason}", reason=escape(v.reason)) + "\n"
                           + t._("*Rule:* {rule}", rule=f"`{escape(v.rule)}`"), block_id="incident_reason"))
    blocks.append(_section(status_text(kind, p, who=who, now=now, recipients=recipients, locale=locale),
                           block_id="incident_status"))
    for post in v.posts:
        blocks.extend(post_blocks(post, t))
    if v.mention_count > len(v.posts) and v.posts:
        blocks.append(_context(t._("{shown} of {count} posts shown, widest reach first.", shown=len(v.posts),
                                   count=t.number(v.mention_count))))
    open_states = kind in WAITING or kind in HANDLING
    if v.guideline is not None and open_states:
        g = v.guideline
        lines = [f"*{escape(label)}:* {escape(text)}" for label, text in g.statements]
        lines.append(t._("*Who may answer:* {who}", who=escape(g.who_may_answer)))
        if g.never_say:
            lines.append(t._("*Never say:* {items}", items="; ".join(escape(x) for x in g.never_say)))
        blocks.append(_section("\n".join(lines), block_id="incident_guideline"))
    actions = buttons(kind, v.incident_id, t)
    if actions:
        blocks.append(actions)
    footer = t.ngettext("Incident #{id} · {n} post · policy {policy}", "Incident #{id} · {n} posts · policy {policy}",
                        v.mention_count, id=v.incident_id, policy=f"`{escape(p.policy or '?')}`")
    if p.opened_at is not None:
        footer += " · " + t._("opened {when}", when=slack_date(p.opened_at, t))
    blocks.append(_context(footer))
    return SlackMessage(text=_clip(escape(v.headline), FALLBACK_MAX), blocks=blocks)


def thread_line(kind: str, p: AlertPayload, *, who: Who, now: dt.datetime,
                recipients: Sequence[str] = (), locale: str | None = None) -> SlackMessage:
    """A short line in the incident's thread (and in DMs) recording a change: the timeline."""
    v = view(kind, p, locale)
    text = status_text(kind, p, who=who, now=now, recipients=recipients, locale=locale)
    if kind not in ("alert", "escalation"):
        text = text if text.startswith(":") else f"{EMOJI.get(kind, ':bell:')} {text}"
    else:
        text = f"{EMOJI[kind]} {text}"
    line = v.t._("Incident #{id} ({brand}, {rule}): {text}", id=v.incident_id, brand=escape(v.brand),
                 rule=f"`{escape(v.rule)}`", text=text)
    return SlackMessage(text=_clip(escape(v.headline), FALLBACK_MAX), blocks=[_section(line)])


def joined(p: AlertPayload, locale: str | None = None) -> SlackMessage:
    """More posts joined the incident: a thread reply, so the channel keeps one message per incident."""
    v = view("joined", p, locale)
    t = v.t
    new = len(p.new_mentions or ())
    head = t.ngettext("*{n} more post* joined — {count} in this incident now.",
                      "*{n} more posts* joined — {count} in this incident now.", new, count=t.number(v.mention_count))
    blocks = [_section(f"{EMOJI['joined']} {head}\n" + t._("*Why:* {reason}", reason=escape(v.reason)))]
    for post in v.posts:
        blocks.extend(post_blocks(post, t))
    if new > len(v.posts):
        blocks.append(_context(t._("{shown} of the {count} new posts shown.", shown=len(v.posts), count=new)))
    return SlackMessage(text=_clip(escape(v.headline), FALLBACK_MAX), blocks=blocks)
