"""Who is who in Slack: responder ids <-> Slack user ids, channel names -> ids, DM channels.

``escalation.yaml`` names people by responder id with either a Slack user id or
an e-mail address, and channels by name. Slack wants ids everywhere (``chat.update``
and ``conversations.history`` refuse names, and a name can be renamed), so this
resolves them once and caches the answers: a person given by e-mail costs one
``users.lookupByEmail`` per process, not one per alert.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient

from monitor.escalation.schema import EscalationConfig, Responder
from monitor.notify.base import DeliveryError
from monitor.notify.slack.blocks import escape
from monitor.notify.slack.client import ADVICE, CLIENT_ERRORS, delivery_error, error_code

log = logging.getLogger(__name__)
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
NOT_FOUND_TTL = 3600.0  # an e-mail unknown to Slack is asked again after an hour (people join)


class SlackDirectory:
    def __init__(self, client: WebClient, config: EscalationConfig, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.config = config
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._by_email: dict[str, tuple[str | None, float]] = {}  # email -> (user id or None, when asked)
        self._channels: dict[str, str] = {}  # name without '#' -> id
        self._dms: dict[str, str] = {}  # user id -> DM channel id

    # --- people -----------------------------------------------------------------------------------
    def responder(self, responder_id: str) -> Responder | None:
        return self.config.responders.get(responder_id)

    def user_id(self, responder_id: str) -> str | None:
        """The Slack user id of a responder, looking up an e-mail address once; None if unknown.

        Raises a recoverable ``DeliveryError`` when Slack cannot be asked right now.
        """
        person = self.config.responders.get(responder_id)
        if person is None:
            return None
        if person.slack:
            return person.slack
        if not person.email:
            return None
        return self._lookup_email(person.email)

    def _lookup_email(self, email: str) -> str | None:
        key = email.lower()
        with self._lock:
            cached = self._by_email.get(key)
        if cached is not None and (cached[0] is not None or self._monotonic() - cached[1] < NOT_FOUND_TTL):
            return cached[0]
        try:
            user = self.client.users_lookupByEmail(email=email)["user"]
            found: str | None = str(user["id"])
        except CLIENT_ERRORS as exc:
            if error_code(exc) != "users_not_found":
                raise delivery_error(exc, "users.lookupByEmail") from exc
            log.warning("no Slack user has the e-mail address of a responder (%s)", _mask(email))
            found = None
        with self._lock:
            self._by_email[key] = (found, self._monotonic())
        return found

    def responder_for(self, user_id: str) -> str | None:
        """The responder id of whoever has this Slack user id (e-mail addresses are resolved as needed)."""
        for rid, person in self.config.responders.items():
            if person.slack == user_id:
                return rid
        for rid, person in self.config.responders.items():
            if not person.slack and person.email:
                try:
                    if self._lookup_email(person.email) == user_id:
                        return rid
                except DeliveryError:
                    log.warning("could not ask Slack who responder %s is", rid)
        return None

    def mention(self, responder_id: str) -> str:
        """How an alert names a responder: ``<@U…>`` (Slack shows the current display name), else the name."""
        if responder_id == "system":
            return "the monitor (automatic)"
        person = self.config.responders.get(responder_id)
        try:
            uid = self.user_id(responder_id)
        except DeliveryError:
            uid = None
        if uid:
            return f"<@{uid}>"
        return escape(person.name if person else responder_id)

    def name(self, responder_id: str) -> str:
        person = self.config.responders.get(responder_id)
        return person.name if person else responder_id

    # --- conversations ------------------------------------------------------------------------------
    def channel_id(self, channel: str) -> str:
        """``#reputation-alerts`` or ``C0123…`` -> the channel id (``conversations.list`` once per name)."""
        return channel_id(self.client, channel, self._channels, self._lock)

    def dm_channel(self, user_id: str) -> str:
        """The DM channel with a user (``conversations.open`` once per user)."""
        with self._lock:
            known = self._dms.get(user_id)
        if known:
            return known
        try:
            opened = str(self.client.conversations_open(users=user_id)["channel"]["id"])
        except CLIENT_ERRORS as exc:
            raise delivery_error(exc, "conversations.open") from exc
        with self._lock:
            self._dms[user_id] = opened
        return opened


def _mask(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}…@{domain}"


def channel_id(client: WebClient, channel: str, known_ids: dict[str, str], lock: threading.Lock) -> str:
    """``#reputation-alerts`` or ``C0123…`` -> the channel id, through ``conversations.list`` once per name
    (``known_ids`` caches name -> id under ``lock``); the alerts' directory and the digest poster share it."""
    channel = channel.strip()
    if CHANNEL_ID.match(channel):
        return channel
    name = channel.lstrip("#")
    with lock:
        known = known_ids.get(name)
    if known:
        return known
    cursor: str | None = None
    try:
        while True:
            page = client.conversations_list(types="public_channel,private_channel",
                                             exclude_archived=False, limit=1000, cursor=cursor)
            for c in page.get("channels") or []:
                if c.get("is_archived"):
                    if str(c["name"]) == name:
                        raise DeliveryError(f"Slack channel #{name} is_archived", recoverable=False,
                                            advice=ADVICE["is_archived"])
                    continue
                with lock:
                    known_ids[str(c["name"])] = str(c["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            with lock:
                known = known_ids.get(name)
            if known or not cursor:
                break
    except CLIENT_ERRORS as exc:
        raise delivery_error(exc, "conversations.list") from exc
    if not known:
        raise DeliveryError(f"Slack channel #{name} not found (for a private channel, invite the app first)",
                            recoverable=False, advice=ADVICE["channel_not_found"])
    return known
