"""The Slack receiver: one message per incident, kept current, and DMs to whoever is called.

* ``alert``: the incident card in the channel (the level's channel, else the
  default channel) and in a DM to each person called. The channel message is the
  incident's *anchor*: its reference (``<channel id>:<ts>``) is what ``send``
  returns and the outbox stores.
* ``joined``: a reply in the anchor's thread, so the channel keeps one message per incident.
* ``escalation``, ``acknowledged``, ``snoozed``, ``resolved``, ``false_positive``,
  ``expired``: ``chat.update`` of the anchor, so the channel shows the current state
  at a glance, plus a line in the thread as the timeline; new people called (and,
  on closing, everyone who was called) hear it by DM.
* ``reminder``: a thread line and a DM to whoever acknowledged.

Exactly once: every message carries metadata naming the notification and the part
of it (channel, thread, DM to whom). When the outbox says an earlier try may have
reached Slack (``attempts > 0``), and before repeating a post that failed with no
clear answer, the notifier looks for that metadata in the conversation first and
returns the message it finds instead of posting again.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from slack_sdk import WebClient
from sqlalchemy import Engine

from monitor.clock import Clock, SystemClock
from monitor.escalation.schema import EscalationConfig
from monitor.i18n import translator
from monitor.models import Notification
from monitor.notify.base import DeliveryError, Fence, WithFallback
from monitor.notify.slack import blocks
from monitor.notify.slack.client import CLIENT_ERRORS, RetryPolicy, delivery_error, is_ambiguous
from monitor.notify.slack.directory import SlackDirectory
from monitor.notify.status import DeliveryStatus
from monitor.store import outbox, transaction

log = logging.getLogger(__name__)
EVENT_TYPE = "monitor_notification"
STATE_KINDS = ("acknowledged", "snoozed", "resolved", "false_positive", "expired")
CLOSING_KINDS = ("resolved", "false_positive", "expired")
LOOKUP_PAGES = 10  # conversations.history pages (200 messages each) searched for an earlier try


@dataclass(frozen=True, slots=True)
class SlackRef:
    """Where a message is: Slack needs the channel id as well as the ts to update or thread on it."""

    channel: str
    ts: str

    _PATTERN = re.compile(r"^([CDG][A-Z0-9]+):(\d+\.\d+)$")

    def __str__(self) -> str:
        return f"{self.channel}:{self.ts}"

    @classmethod
    def parse(cls, ref: str | None) -> SlackRef | None:
        match = cls._PATTERN.match(ref or "")
        return cls(match.group(1), match.group(2)) if match else None


class SlackNotifier:
    """Implements ``monitor.notify.Notifier`` for Slack.

    Needs the store's ``Engine`` to find an incident's anchor message (recorded by
    the outbox when the alert was sent) and the escalation config to turn responder
    ids into Slack users.
    """

    via = "slack"

    def __init__(self, client: WebClient, engine: Engine, config: EscalationConfig, *,
                 default_channel: str | None = None, clock: Clock | None = None,
                 retry: RetryPolicy | None = None, directory: SlackDirectory | None = None,
                 lookup_margin: dt.timedelta = dt.timedelta(minutes=10)) -> None:
        self.client = client
        self.engine = engine
        self.config = config
        self.default_channel = default_channel
        self.clock = clock or SystemClock()
        self.retry = retry or RetryPolicy()
        self.directory = directory or SlackDirectory(client, config)
        # Slack's clock and ours may disagree a little; the lookup starts this much earlier.
        self.lookup_margin = lookup_margin
        self.status = DeliveryStatus(self.clock.now, engine, lambda: self.config.timezone)
        self.fallback: WithFallback | None = None  # the e-mail path (``monitor.notify.email``), if configured
        self._sending = threading.local()  # the claim (``Fence``) of the notification this thread is sending

    def fallback_pass(self, engine: Engine, now: dt.datetime) -> int:
        """``base.WithFallback``: e-mail what Slack has not delivered in time (nothing without a fallback)."""
        return self.fallback.fallback_pass(engine, now) if self.fallback is not None else 0

    # --- deliver_pending reports each attempt here (base.DeliveryObserver) -----------------------------
    def delivered(self, notification: Notification) -> None:
        self.status.delivered(notification)

    def failed(self, notification: Notification, error: DeliveryError) -> None:
        self.status.failed(notification, error)


    def use_config(self, config: EscalationConfig) -> None:
        """A reloaded escalation.yaml: new responders are found, removed ones are no longer messaged, and
        blocked notifications are due again now (a corrected channel applies to them: ``_channel_of``)."""
        self.config = config
        self.directory.config = config
        with transaction(self.engine) as conn:
            released = outbox.release_blocked(conn)
        if released:
            log.info("escalation.yaml reloaded: %d blocked notification(s) will be tried again now", released)

    def _channel_of(self, n: Notification) -> str | None:
        """Where a level call's card goes, by the escalation.yaml in force *now*, not the one that queued it:
        a channel corrected (and reloaded) while a card waited blocked applies to that card.

        The level's own channel as the file names it now; for a level without one (or a policy or level no
        longer in the file), what was stored (``catchup.present`` gives a card-less incident its first channel).
        """
        level = n.payload.level or 1
        policy = next((p for p in self.config.policies if p.name == n.payload.policy), None)
        if n.kind not in ("alert", "escalation") or policy is None or level > len(policy.levels):
            return n.channel
        return policy.levels[level - 1].channel or n.channel

    def _own_channel(self, n: Notification) -> bool:
        """The level names a channel of its own (else its card's channel is level 1's)."""
        level = n.payload.level or 1
        policy = next((p for p in self.config.policies if p.name == n.payload.policy), None)
        if policy is None or level > len(policy.levels):
            return n.kind == "alert"
        return policy.levels[level - 1].channel is not None
    def verify(self) -> str:
        """Check the token at startup (``auth.test``): "bot <user id> in <team>", or a ``DeliveryError``.

        Lets ``monitor run`` / ``monitor check`` fail fast on a revoked or mistyped token
        instead of discovering it at the first alert.
        """
        try:
            who = self.client.auth_test()
        except CLIENT_ERRORS as exc:
            raise delivery_error(exc, "auth.test") from exc
        return f"bot {who.get('user_id')} in {who.get('team')}"

    # --- Notifier ---------------------------------------------------------------------------------
    def send_fenced(self, notification: Notification, fence: Fence) -> str | None:
        """``base.Fenced``: ``send``, with the sender's claim renewed right before each post (``ClaimLost``
        when another worker took it over) and a look in Slack first whenever it had lapsed."""
        self._sending.fence = fence
        try:
            return self.send(notification)
        finally:
            self._sending.fence = None

    def send(self, notification: Notification) -> str | None:
        try:
            ref = self._dispatch(notification)
        except DeliveryError:
            raise
        except CLIENT_ERRORS as exc:
            raise delivery_error(exc, f"notification {notification.id} ({notification.kind})") from exc
        return str(ref) if ref else None

    def _dispatch(self, n: Notification) -> SlackRef | None:
        if n.kind == "alert":
            return self._new_incident_message(n)
        if n.kind == "joined":
            return self._joined(n)
        if n.kind == "escalation" or n.kind in STATE_KINDS or n.kind == "reminder":
            return self._change(n)
        anchor = self._anchor(n.incident_id)
        if anchor is None:
            log.warning("notification %d of unknown kind %r has no incident message to go with", n.id, n.kind)
            return None
        self._post_once(n, "thread", anchor.channel, self._line(n), thread_ts=anchor.ts)
        return anchor

    # --- kinds ------------------------------------------------------------------------------------
    def _new_incident_message(self, n: Notification) -> SlackRef:
        """Post the card in the channel and DM it to the people called; the first message is the anchor."""
        errors: list[DeliveryError] = []
        anchor = None
        refused: DeliveryError | None = None
        channel = self._channel_of(n) or self.default_channel
        if channel:
            try:
                anchor = self._post_once(n, "channel", self.directory.channel_id(channel), self._card(n))
            except DeliveryError as exc:
                errors.append(exc)
                refused = exc
        dms = self._dm(n, lambda rid: self._card(n, intro=self._intro(n, rid), locale=self.config.locale_of(rid)),
                       errors)
        if refused is not None and not refused.recoverable and (self._own_channel(n) or not dms):
            # The people called have their DMs, but the team's channel has no card: not delivered. The
            # outbox blocks it; once the channel is fixed, the retry finds the DMs and posts the card.
            # A later level without a channel of its own has reached its people: the card is the
            # blocked alert's to post, so it counts as delivered (the refusal is logged by _settle).
            raise refused
        return self._settle(n, anchor or (dms[0] if dms else None), errors)

    def _joined(self, n: Notification) -> SlackRef | None:
        """New posts: a thread reply, and the card's post count and top posts brought up to date."""
        anchor = self._anchor(n.incident_id)
        if anchor is None:
            channel = self._channel_of(n) or self.default_channel
            if not channel:
                log.warning("incident %d has no Slack message to add posts to; skipped", n.incident_id)
                return None
            return self._post_once(n, "channel", self.directory.channel_id(channel), blocks.joined(n.payload))
        errors: list[DeliveryError] = []
        try:
            self._post_once(n, "thread", anchor.channel, blocks.joined(n.payload), thread_ts=anchor.ts)
        except DeliveryError as exc:
            errors.append(exc)
        current = self._current_card(n)
        if current is not None:
            try:
                self._update(anchor, current)
            except DeliveryError as exc:
                errors.append(exc)
        return self._settle(n, anchor, errors)

    def _current_card(self, n: Notification) -> blocks.SlackMessage | None:
        """The card as the incident's last state change drew it, with this notification's posts and count."""
        with transaction(self.engine) as conn:
            last = outbox.last_sent(conn, n.incident_id, ("alert", "escalation", *STATE_KINDS))
        if last is None:
            return None
        payload = replace(last.payload, top_mentions=n.payload.top_mentions,
                          mention_count=n.payload.mention_count or 0)
        return blocks.card(last.kind, payload, who=self.directory.mention, now=self.clock.now(),
                           recipients=last.recipients)

    def _change(self, n: Notification) -> SlackRef:
        """Escalation, acknowledgement, snooze, closing, reminder: update the card, log it in the thread."""
        anchor = self._anchor(n.incident_id)
        if anchor is None:
            # The incident never reached Slack (e.g. alerted before Slack was set up): start its message now.
            return self._new_incident_message(n)
        errors: list[DeliveryError] = []
        if n.kind != "reminder":
            try:
                self._update(anchor, self._card(n))
            except DeliveryError as exc:
                errors.append(exc)
        try:
            self._post_once(n, "thread", anchor.channel, self._line(n), thread_ts=anchor.ts)
        except DeliveryError as exc:
            errors.append(exc)
        own = self._channel_of(n) if n.kind == "escalation" else None
        if own:
            try:
                channel = self.directory.channel_id(own)
                if channel != anchor.channel:  # this level has a channel of its own
                    self._post_once(n, "channel", channel, self._card(n))
            except DeliveryError as exc:
                errors.append(exc)
        if n.kind in ("escalation", "reminder"):
            self._dm(n, lambda rid: self._card(n, intro=self._intro(n, rid), locale=self.config.locale_of(rid)),
                     errors)
        elif n.kind in CLOSING_KINDS:
            self._dm(n, lambda rid: self._line(n, locale=self.config.locale_of(rid)), errors)
        return self._settle(n, anchor, errors)

    # --- pieces -----------------------------------------------------------------------------------
    def _card(self, n: Notification, intro: str | None = None, locale: str | None = None) -> blocks.SlackMessage:
        return blocks.card(n.kind, n.payload, who=self.directory.mention, now=self.clock.now(),
                           recipients=n.recipients, intro=intro, locale=locale)

    def _line(self, n: Notification, locale: str | None = None) -> blocks.SlackMessage:
        return blocks.thread_line(n.kind, n.payload, who=self.directory.mention, now=self.clock.now(),
                                  recipients=n.recipients, locale=locale)

    def _intro(self, n: Notification, rid: str) -> str | None:
        """The first line of a DM: why this person is getting it, in their language."""
        t = translator(self.config.locale_of(rid), n.payload.timezone)
        if n.kind == "reminder":
            return t._("Reminder: you acknowledged this incident. Resolve it once it is handled.")
        if n.kind in ("alert", "escalation"):
            return t._("You are called at level {level} for this incident.", level=n.payload.level or 1)
        return None

    def _dm(self, n: Notification, build: Callable[[str], blocks.SlackMessage],
            errors: list[DeliveryError]) -> list[SlackRef]:
        """DM each recipient; a person Slack does not know is logged and skipped, not retried forever."""
        sent = []
        for rid in n.recipients:
            try:
                user = self.directory.user_id(rid)
                if user is None:
                    log.warning("responder %r has no Slack user: not messaged about incident %d", rid,
                                n.incident_id)
                    continue
                sent.append(self._post_once(n, f"dm:{rid}", self.directory.dm_channel(user), build(rid)))
            except DeliveryError as exc:
                errors.append(exc)
        return sent

    def _settle(self, n: Notification, anchor: SlackRef | None, errors: list[DeliveryError]) -> SlackRef:
        """Decide what a partly delivered notification means for the outbox.

        Any recoverable failure: raise it, so the outbox tries again (the parts that
        did go out are found by their metadata, not sent twice). Only refusals: if
        something reached Slack, log them and call it delivered; if nothing did, raise.
        """
        for exc in errors:
            if exc.recoverable:
                raise exc
        if anchor is None:
            raise errors[0] if errors else DeliveryError(
                f"notification {n.id}: no channel and no Slack user to deliver to", recoverable=False)
        for exc in errors:
            log.error("notification %d (%s) partly refused by Slack: %s", n.id, n.kind, exc)
        return anchor

    def _anchor(self, incident_id: int) -> SlackRef | None:
        """The incident's channel message: the alert's reference, else the first Slack message it has."""
        with transaction(self.engine) as conn:
            ref = SlackRef.parse(outbox.external_ref(conn, incident_id, "alert"))
            if ref is not None:
                return ref
            for candidate in outbox.sent_external_refs(conn, incident_id):
                ref = SlackRef.parse(candidate)
                if ref is not None:
                    return ref
        return None

    def _update(self, anchor: SlackRef, message: blocks.SlackMessage) -> None:
        try:
            self.client.chat_update(channel=anchor.channel, ts=anchor.ts, text=message.text, blocks=message.blocks)
        except CLIENT_ERRORS as exc:
            raise delivery_error(exc, "chat.update") from exc

    # --- exactly once -----------------------------------------------------------------------------
    def _post_once(self, n: Notification, part: str, channel: str, message: blocks.SlackMessage, *,
                   thread_ts: str | None = None) -> SlackRef:
        """Post unless this part of this notification is already in the conversation.

        ``chat.postMessage`` is not retried by the client (see ``client.py``): after a
        5xx or a dropped connection Slack may have posted, so we look before repeating.
        """
        dedupe = f"{n.id}:{part}"
        metadata = {"event_type": EVENT_TYPE,
                    "event_payload": {"incident_id": n.incident_id, "notification_id": n.id, "dedupe": dedupe}}
        fence: Fence | None = getattr(self._sending, "fence", None)
        look = n.attempts > 0 or (fence is not None and fence.lapsed)
        attempt = 0
        while True:
            if fence is not None and fence.before_post():
                look = True  # frozen or slow past the claim: someone may have posted meanwhile
            if look:
                found = self._find(n, dedupe, channel, thread_ts)
                if found is not None:
                    log.info("notification %d: %s was already posted by an earlier try; not posting again",
                             n.id, part)
                    return found
                if fence is not None and fence.before_post():
                    continue  # the claim lapsed during the look: look again
            try:
                response = self.client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks,
                                                        metadata=metadata, thread_ts=thread_ts,
                                                        unfurl_links=False, unfurl_media=False)
                return SlackRef(str(response["channel"]), str(response["ts"]))
            except CLIENT_ERRORS as exc:
                if not is_ambiguous(exc) or attempt >= self.retry.server_error_retries:
                    raise delivery_error(exc, "chat.postMessage") from exc
                log.warning("notification %d: chat.postMessage failed (%s), checking and retrying", n.id,
                            type(exc).__name__)
                self.retry.sleep(self.retry.backoff_for(attempt))
                attempt += 1
                look = True

    def _find(self, n: Notification, dedupe: str, channel: str, thread_ts: str | None) -> SlackRef | None:
        oldest = f"{(n.created_at - self.lookup_margin).timestamp():.6f}"
        cursor: str | None = None
        try:
            for _ in range(LOOKUP_PAGES):
                if thread_ts:
                    page = self.client.conversations_replies(channel=channel, ts=thread_ts, oldest=oldest,
                                                             include_all_metadata=True, limit=200, cursor=cursor)
                else:
                    page = self.client.conversations_history(channel=channel, oldest=oldest,
                                                             include_all_metadata=True, limit=200, cursor=cursor)
                for message in page.get("messages") or []:
                    meta = message.get("metadata") or {}
                    if (meta.get("event_type") == EVENT_TYPE
                            and (meta.get("event_payload") or {}).get("dedupe") == dedupe):
                        return SlackRef(channel, str(message["ts"]))
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
        except CLIENT_ERRORS as exc:
            raise delivery_error(exc, "looking for an earlier try") from exc
        return None
