"""Redraw an incident's Slack messages from the store: after ``monitor forget`` rewrote what they quote.

An erasure rewrites the outbox payloads (the person's text, link and handle
become ``[erased]``), but the messages Slack already shows were drawn from the
old ones. This draws them again, the way the notifier first drew them, and
``chat.update``s them in place:

* the incident's channel card, from the last delivered state notification;
* each message of ours in the card's thread (found by the metadata every
  message carries), from the notification that posted it.

A message someone already deleted in Slack (or a channel since archived or
gone) is counted as gone, not as an error: there is nothing left to erase
there. Any other refusal is counted as failed, with Slack's reason, for a
person to follow up. Direct messages are not redrawn: the notifier keeps no
reference to them (their channel ids are per person), so the report says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from monitor.notify.slack import blocks
from monitor.notify.slack.client import CLIENT_ERRORS, error_code
from monitor.notify.slack.notifier import EVENT_TYPE, STATE_KINDS, SlackNotifier, SlackRef
from monitor.store import outbox, transaction
from monitor.store import privacy as privacy_repo

log = logging.getLogger(__name__)

GONE = frozenset({"message_not_found", "thread_not_found", "channel_not_found", "is_archived"})
PAGES = 20  # of 200 replies: a thread longer than 4,000 messages is not a thread anyone reads


@dataclass(slots=True)
class Redrawn:
    """What a redraw did, over every incident it was given."""

    updated: int = 0
    gone: int = 0
    failed: list[str] = field(default_factory=list)  # "#12: not_in_channel"

    def lines(self) -> list[str]:
        out = [f"{self.updated:>7}  Slack messages already posted updated (chat.update)",
               f"{self.gone:>7}  Slack messages already deleted in Slack (nothing left to update)"]
        out += [f"{'':>7}  could not update a Slack message of incident {f}" for f in self.failed]
        return out


def _anchor(incident_id: int, notifier: SlackNotifier) -> SlackRef | None:
    with transaction(notifier.engine) as conn:
        ref = SlackRef.parse(outbox.external_ref(conn, incident_id, "alert"))
        if ref is not None:
            return ref
        return next((r for r in map(SlackRef.parse, outbox.sent_external_refs(conn, incident_id)) if r), None)


def _update(notifier: SlackNotifier, incident_id: int, ref: SlackRef, message: blocks.SlackMessage,
            result: Redrawn) -> bool:
    """One ``chat.update``; False when the message (or its channel) is gone."""
    try:
        notifier.client.chat_update(channel=ref.channel, ts=ref.ts, text=message.text, blocks=message.blocks)
    except CLIENT_ERRORS as exc:
        code = error_code(exc)
        if code in GONE:
            result.gone += 1
            return False
        result.failed.append(f"#{incident_id}: {code or type(exc).__name__}")
        return True
    result.updated += 1
    return True


def redraw_incident(notifier: SlackNotifier, incident_id: int, result: Redrawn) -> None:
    """Redraw the channel card and our thread messages of one incident from the (rewritten) store."""
    anchor = _anchor(incident_id, notifier)
    with transaction(notifier.engine) as conn:
        last = outbox.last_sent(conn, incident_id, ("alert", "escalation", *STATE_KINDS))
    if anchor is None or last is None:
        return  # never reached Slack
    now, who = notifier.clock.now(), notifier.directory.mention
    card = blocks.card(last.kind, last.payload, who=who, now=now, recipients=last.recipients)
    if not _update(notifier, incident_id, anchor, card, result):
        return  # the card is gone, and its thread with it
    cursor: str | None = None
    for _ in range(PAGES):
        try:
            page = notifier.client.conversations_replies(channel=anchor.channel, ts=anchor.ts, limit=200,
                                                         include_all_metadata=True, cursor=cursor)
        except CLIENT_ERRORS as exc:
            result.failed.append(f"#{incident_id}: reading its thread: {error_code(exc) or type(exc).__name__}")
            return
        for message in page.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") != EVENT_TYPE or message.get("ts") == anchor.ts \
                    or not str(payload.get("dedupe", "")).endswith(":thread"):
                continue
            with transaction(notifier.engine) as conn:
                n = privacy_repo.sent_notification(conn, int(payload.get("notification_id", 0)))
            if n is None:
                continue
            drawn = (blocks.joined(n.payload) if n.kind == "joined"
                     else blocks.thread_line(n.kind, n.payload, who=who, now=now, recipients=n.recipients))
            _update(notifier, incident_id, SlackRef(anchor.channel, str(message["ts"])), drawn, result)
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            break
