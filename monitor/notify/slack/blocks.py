"""Block Kit layouts for an incident: the card, its thread lines, the buttons.

Pure functions of a notification's payload (plus "now" for the time left), built
from ``monitor.notify.render.view`` so Slack and the console say the same thing.
The card is one message per incident that ``chat.update`` keeps current, so it
always shows the *current* state: who is called and until when while it waits,
who acknowledged or closed it afterwards, and only the buttons that still apply.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.models import AlertPayload
from monitor.notify.render import AlertView, PostView, view

Block = dict[str, Any]
Who = Callable[[str], str]  # responder id -> mrkdwn (a <@U…> mention or an escaped name)

ACK = "incident_ack"
RESOLVE = "incident_resolve"
FALSE_POSITIVE = "incident_false_positive"
SNOOZE = "incident_snooze"
ACTION_IDS = (ACK, RESOLVE, FALSE_POSITIVE, SNOOZE)
POST_FEEDBACK = "post_feedback"  # the "…" menu on each post: what the model got wrong about it
FEEDBACK_OPTIONS = (("not_negative", "Not negative"), ("wrong_language", "Wrong language"),
                    ("not_about_us", "Not about us"), ("negative", "Negative: alert was right"))
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
CLOSED_WORDS = {"resolved": "Resolved", "false_positive": "Marked as a false positive", "expired": "Expired"}

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
HEADER_MAX = 150
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


def slack_date(when: dt.datetime, fallback: str) -> str:
    """A time every reader sees in their own zone; ``fallback`` (the team's zone) where Slack cannot."""
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{escape(fallback)}>"


def duration_words(delta: dt.timedelta) -> str:
    minutes = max(0, round(delta.total_seconds() / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest:02d} min" if rest else f"{hours} h"
    return f"{hours // 24} days {hours % 24} h"


def _section(text: str, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, TEXT_MAX)}}
    if block_id:
        block["block_id"] = block_id
    return block


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, TEXT_MAX)}]}


def _button(action_id: str, label: str, incident_id: int, style: str | None = None,
            confirm: tuple[str, str, str] | None = None) -> Block:
    button: Block = {"type": "button", "action_id": action_id, "value": str(incident_id),
                     "text": {"type": "plain_text", "text": label, "emoji": True}}
    if style:
        button["style"] = style
    if confirm:
        title, text, yes = confirm
        button["confirm"] = {"title": {"type": "plain_text", "text": title},
                             "text": {"type": "mrkdwn", "text": text},
                             "confirm": {"type": "plain_text", "text": yes},
                             "deny": {"type": "plain_text", "text": "Cancel"}}
    return button


def buttons(kind: str, incident_id: int) -> Block | None:
    """The buttons that still make sense in this state; none once the incident is closed."""
    if kind not in WAITING and kind not in HANDLING:
        return None
    elements = []
    if kind in WAITING:
        elements.append(_button(ACK, "Acknowledge", incident_id, style="primary"))
    elements.append(_button(RESOLVE, "Resolve", incident_id))
    elements.append(_button(FALSE_POSITIVE, "False positive", incident_id, confirm=(
        "Mark as a false positive?", f"Incident #{incident_id} will be closed and nobody else will be called.",
        "False positive")))
    if kind in WAITING:
        elements.append(_button(SNOOZE, "Snooze 1 h", incident_id))
    return {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": elements}


def post_blocks(post: PostView) -> list[Block]:
    """The post itself (quoted, shortened, linked) and who said it, where, how negative."""
    text = f"> {escape(post.text)}"
    if post.url:
        text += "\n" + _link(post.url, f"Open the post on {post.source}")
    section = _section(text)
    if post.mention_id is not None:
        section["accessory"] = feedback_menu(post.mention_id)
    return [section, _context(escape(post.details)), *(_context(escape(line)) for line in post.review_lines)]


def feedback_menu(mention_id: int) -> Block:
    """The post's menu: each choice is stored as this person's label on this post (``store.feedback``)."""
    return {"type": "overflow", "action_id": POST_FEEDBACK,
            "options": [{"text": {"type": "plain_text", "text": words}, "value": f"{mention_id}:{label}"}
                        for label, words in FEEDBACK_OPTIONS]}


def _deadline_line(v: AlertView, now: dt.datetime) -> str | None:
    if v.ack_deadline is None:
        return None
    when = slack_date(v.ack_deadline, v.local(v.ack_deadline))
    left = v.ack_deadline - now
    if left.total_seconds() <= 0:
        return f":hourglass: The time to acknowledge ran out {when}: the next level is being called."
    return f":hourglass_flowing_sand: *{duration_words(left)} left* to acknowledge — by {when}, " \
           f"then the next level is called."


def status_text(kind: str, p: AlertPayload, *, who: Who, now: dt.datetime,
                recipients: Sequence[str] = ()) -> str:
    """The line that tells the channel at a glance where the incident stands."""
    v = view(kind, p)
    actor = who(v.actor) if v.actor else "someone"
    if kind in ("alert", "escalation"):
        called = ", ".join(who(r.id) for r in v.recipients) or "the channel"
        prefix = "Escalated to " if kind == "escalation" else ""
        lines = [f"{prefix}*Level {v.level}* → {called}"]
        deadline = _deadline_line(v, now)
        if deadline:
            lines.append(deadline)
        return "\n".join(lines)
    if kind == "snoozed":
        until = v.snoozed_until or v.ack_deadline
        if until is None:
            return f":zzz: *Snoozed* by {actor}"
        return (f":zzz: *Snoozed* by {actor}: no escalation before {slack_date(until, v.local(until))} "
                f"({duration_words(until - now)} from now).")
    if kind == "acknowledged":
        return f":eyes: *Acknowledged* by {actor}: escalation stopped. Resolve when it is handled."
    if kind == "reminder":
        holder = ", ".join(who(r) for r in recipients) or "someone"
        return f":alarm_clock: *Still open*: acknowledged by {holder} but not resolved yet."
    if kind in CLOSED:
        note = f" — {escape(v.note)}" if v.note else ""
        return f"{EMOJI[kind]} *{CLOSED_WORDS[kind]}* by {actor}{note}"
    return f"*{escape(v.title.capitalize())}*"


def card(kind: str, p: AlertPayload, *, who: Who, now: dt.datetime, recipients: Sequence[str] = (),
         intro: str | None = None) -> SlackMessage:
    """The incident's one message, as it should look after a notification of this kind."""
    v = view(kind, p)
    blocks: list[Block] = []
    title = f"{EMOJI.get(kind, ':bell:')} {v.title} · #{v.incident_id} {v.severity.upper()} · {v.brand}"
    blocks.append({"type": "header", "text": {"type": "plain_text", "text": _clip(title, HEADER_MAX), "emoji": True}})
    if intro:
        blocks.append(_context(intro))
    blocks.append(_section(f"*Why:* {escape(v.reason)}\n*Rule:* `{escape(v.rule)}`", block_id="incident_reason"))
    blocks.append(_section(status_text(kind, p, who=who, now=now, recipients=recipients),
                           block_id="incident_status"))
    for post in v.posts:
        blocks.extend(post_blocks(post))
    if v.mention_count > len(v.posts) and v.posts:
        blocks.append(_context(f"{len(v.posts)} of {v.mention_count} posts shown, widest reach first."))
    open_states = kind in WAITING or kind in HANDLING
    if v.guideline is not None and open_states:
        g = v.guideline
        text = (f"*Holding statement:* {escape(g.holding_statement)}\n"
                f"*Who may answer:* {escape(g.who_may_answer)}")
        if g.never_say:
            text += "\n*Never say:* " + "; ".join(escape(x) for x in g.never_say)
        blocks.append(_section(text, block_id="incident_guideline"))
    actions = buttons(kind, v.incident_id)
    if actions:
        blocks.append(actions)
    footer = f"Incident #{v.incident_id} · {v.mention_count} post(s) · policy `{escape(p.policy or '?')}`"
    if p.opened_at is not None:
        footer += f" · opened {slack_date(p.opened_at, v.local(p.opened_at))}"
    blocks.append(_context(footer))
    return SlackMessage(text=_clip(escape(v.headline), FALLBACK_MAX), blocks=blocks)


def thread_line(kind: str, p: AlertPayload, *, who: Who, now: dt.datetime,
                recipients: Sequence[str] = ()) -> SlackMessage:
    """A short line in the incident's thread (and in DMs) recording a change: the timeline."""
    v = view(kind, p)
    text = status_text(kind, p, who=who, now=now, recipients=recipients)
    if kind not in ("alert", "escalation"):
        text = text if text.startswith(":") else f"{EMOJI.get(kind, ':bell:')} {text}"
    else:
        text = f"{EMOJI[kind]} {text}"
    line = f"Incident #{v.incident_id} ({escape(v.brand)}, `{escape(v.rule)}`): {text}"
    return SlackMessage(text=_clip(escape(v.headline), FALLBACK_MAX), blocks=[_section(line)])


def joined(p: AlertPayload) -> SlackMessage:
    """More posts joined the incident: a thread reply, so the channel keeps one message per incident."""
    v = view("joined", p)
    new = len(p.new_mentions or ())
    blocks = [_section(f"{EMOJI['joined']} *{new} more post(s)* joined — {v.mention_count} in this incident now.\n"
                       f"*Why:* {escape(v.reason)}")]
    for post in v.posts:
        blocks.extend(post_blocks(post))
    if new > len(v.posts):
        blocks.append(_context(f"{len(v.posts)} of the {new} new posts shown."))
    return SlackMessage(text=_clip(escape(v.headline), FALLBACK_MAX), blocks=blocks)
