"""Button clicks: who may act, applying each action once, and the Socket Mode connection.

Clicks arrive over Socket Mode (an outbound WebSocket), so the worker needs no
public URL. Each click is acknowledged to Slack at once (Slack wants that within
three seconds), then checked and applied:

* the clicking Slack user must be a responder named in the incident's policy (any
  level or on-call); anyone else is told so privately and nothing changes;
* the snooze menu's choice arrives as ``selected_option.value`` ("<incident>:<minutes>"):
  only the lengths offered (``escalation.snooze.SNOOZES``, the console's too) are
  accepted; any other value is refused and audited, like a click from outside the policy;
* the state check and the change happen in one transaction, on the incident's row
  locked in the store (``EscalationEngine``), so a double click, two people clicking
  together, or a click racing an escalation tick on another worker, applies once; the
  later click is told politely what already happened ("already acknowledged by Sofie
  Peeters"). No in-process lock is needed: any worker may receive any click;
* the resulting "acknowledged"/"resolved" notification goes through the outbox like
  every other, so the channel message is updated by ``deliver_pending``
  (``on_applied`` lets the worker run delivery right away instead of on its next pass).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor.clock import Clock
from monitor.escalation import ActionResult, EscalationConfig, EscalationEngine
from monitor.escalation.schema import Policy
from monitor.escalation.snooze import DEFAULT_MINUTES, SNOOZES, snooze_length
from monitor.i18n import N_, Translator, translator
from monitor.models import IncidentState
from monitor.notify.slack.blocks import ACK, ACTION_IDS, FALSE_POSITIVE, POST_FEEDBACK, RESOLVE, SNOOZE
from monitor.notify.slack.client import CLIENT_ERRORS
from monitor.notify.slack.directory import SlackDirectory
from monitor.store import audit as audit_repo
from monitor.store import incidents as repo
from monitor.store import transaction

log = logging.getLogger(__name__)

# The audit's names for the buttons, the same as the console's (``store.audit``).
AUDIT_ACTIONS = {ACK: "acknowledge", RESOLVE: "resolve", FALSE_POSITIVE: "false_positive", SNOOZE: "snooze"}
CLOSED_WORDS = {"resolved": N_("Incident #{id} was already resolved{by}."),
                "false_positive": N_("Incident #{id} was already marked as a false positive{by}."),
                "expired": N_("Incident #{id} had already expired{by}.")}


@dataclass(frozen=True, slots=True)
class ClickOutcome:
    """What one click did; ``result`` is None when it was refused before reaching the engine."""

    action_id: str
    incident_id: int | None
    slack_user: str
    responder: str | None
    result: ActionResult | None
    reply: str  # what the clicking person was told (ephemeral)

    @property
    def applied(self) -> bool:
        return self.result is ActionResult.APPLIED


def policy_members(config: EscalationConfig, policy_name: str) -> set[str]:
    """Everyone a policy may call: every level and the on-call list."""
    policy = _policy(config, policy_name)
    return {who for level in policy.levels for who in level.notify} | set(policy.on_call)


def _policy(config: EscalationConfig, name: str) -> Policy:
    # Same fallback as the engine: a policy renamed since the incident opened means the last one.
    return next((p for p in config.policies if p.name == name), config.policies[-1])


def handle_block_action(payload: Mapping[str, Any], *, engine: Engine, escalation: EscalationEngine,
                        client: WebClient, directory: SlackDirectory, clock: Clock,
                        on_applied: Callable[[], None] | None = None,
                        lock: AbstractContextManager[Any] | None = None) -> list[ClickOutcome]:
    """Apply the buttons of a Slack ``block_actions`` payload; tell the clicker what happened.

    Returns one outcome per incident button in the payload (other actions are ignored).
    ``lock``: held around each click, for a caller with in-process state of its own to
    protect; none is needed against ticks or other clicks (the store's row lock does that).
    """
    if payload.get("type") != "block_actions":
        return []
    user = str(payload["user"]["id"])
    channel = (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get("channel_id")
    outcomes = []
    for action in payload.get("actions") or []:
        action_id = str(action.get("action_id", ""))
        if action_id == POST_FEEDBACK:
            from monitor.notify.slack.feedback import post_feedback

            clicker = directory.responder_for(user)
            config = escalation.config
            reply = post_feedback(action, user, engine=engine, directory=directory, now=clock.now(),
                                  t=translator(config.locale_of(clicker) if clicker else config.locale,
                                               config.timezone))
            if channel:
                _tell(client, str(channel), user, reply)
            continue
        if action_id not in ACTION_IDS:
            continue
        try:
            outcome = _click(action_id, action, user, engine=engine, escalation=escalation,
                             directory=directory, now=clock.now(),
                             lock=lock if lock is not None else contextlib.nullcontext())
        except SQLAlchemyError:
            log.exception("button %s by %s could not be saved", action_id, user)
            said = translator(escalation.config.locale, escalation.config.timezone)
            outcome = ClickOutcome(action_id, None, user, None, None, said._(
                "Sorry, that could not be saved just now. Nothing changed; please try again."))
        log.info("button %s on incident %s by %s (%s): %s", action_id, outcome.incident_id, user,
                 outcome.responder or "not a responder", outcome.result or "refused")
        outcomes.append(outcome)
        if channel:
            _tell(client, str(channel), user, outcome.reply)
    if on_applied is not None and any(o.applied for o in outcomes):
        on_applied()
    return outcomes


def _target(action_id: str, action: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """The incident a click names and, for a snooze, the minutes asked for (None where unreadable).

    The snooze menu sends ``selected_option.value`` = "<incident>:<minutes>"; a card posted
    before the menu existed still has a "Snooze 1 h" button whose value is the incident alone.
    The minutes are returned as sent: whether they are offered is checked by the caller.
    """
    selected = action.get("selected_option")
    if action_id == SNOOZE and (selected is not None or action.get("type") != "button"):
        incident_text, _, minutes_text = str((selected or {}).get("value") or "").partition(":")
        try:
            return int(incident_text), int(minutes_text)
        except ValueError:
            return None, None
    try:
        return int(str(action.get("value"))), DEFAULT_MINUTES if action_id == SNOOZE else None
    except (TypeError, ValueError):
        return None, None


def _click(action_id: str, action: Mapping[str, Any], user: str, *, engine: Engine, escalation: EscalationEngine,
           directory: SlackDirectory, now: dt.datetime, lock: AbstractContextManager[Any]) -> ClickOutcome:
    responder = directory.responder_for(user)
    config = escalation.config
    t = translator(config.locale_of(responder) if responder else config.locale, config.timezone)  # the clicker's
    incident_id, minutes = _target(action_id, action)
    if incident_id is None:
        if action_id == SNOOZE:  # a forged or damaged menu value: on the record, though it names no incident
            with transaction(engine) as conn:
                audit_repo.record(conn, at=now, actor=responder or user, channel="slack", action="snooze",
                                  outcome="refused", detail=f"Slack user {user}: unreadable snooze value "
                                  f"{str((action.get('selected_option') or {}).get('value'))[:60]!r}")
            return ClickOutcome(action_id, None, user, responder, None,
                                t._("This menu does not name an incident and a snooze length. Nothing was changed."))
        return ClickOutcome(action_id, None, user, None, None, t._("This button does not name an incident."))
    with lock, transaction(engine) as conn:
        row = repo.get(conn, incident_id)
        if row is None:
            return ClickOutcome(action_id, incident_id, user, responder, ActionResult.NOT_FOUND,
                                t._("Incident #{id} no longer exists.", id=incident_id))
        members = policy_members(escalation.config, row.policy)

        def audit(outcome: audit_repo.Outcome, detail: str) -> None:
            audit_repo.record(conn, at=now, actor=responder or user, channel="slack",
                              action=AUDIT_ACTIONS[action_id], outcome=outcome, incident_id=incident_id,
                              detail=f"Slack user {user}: {detail}")
        if responder is None or responder not in members:
            audit("refused", f"not on policy {row.policy}")
            return ClickOutcome(action_id, incident_id, user, responder, None, t._(
                "Only the people on the escalation policy {policy} can act on incident #{id}. Nothing was changed.",
                policy=f"`{row.policy}`", id=incident_id))
        until = now
        if action_id == SNOOZE:
            if minutes not in SNOOZES:
                audit("refused", f"{minutes} minutes is not one of the snooze lengths offered")
                return ClickOutcome(action_id, incident_id, user, responder, None,
                                    t._("Choose one of the snooze lengths offered."))
            until = now + snooze_length(minutes)
        if action_id == ACK:
            result = escalation.acknowledge(conn, incident_id, responder, now)
        elif action_id == RESOLVE:
            result = escalation.resolve(conn, incident_id, responder, now)
        elif action_id == FALSE_POSITIVE:
            result = escalation.resolve(conn, incident_id, responder, now, false_positive=True)
            if result is ActionResult.APPLIED:  # one post: that post was not negative, unless they say otherwise
                from monitor.store.feedback import imply_from_false_positive

                imply_from_false_positive(conn, incident_id, responder, now, "slack")
        else:
            result = escalation.snooze(conn, incident_id, responder, until, now)
        length = SNOOZES[minutes] if action_id == SNOOZE and minutes is not None else None
        if result is ActionResult.APPLIED:
            reply = _done(action_id, incident_id, until, t, length)
        else:
            reply = _already(conn, action_id, incident_id, directory, t)
        # The length in English, as the console writes it ("for 4 hours"); the reply in the clicker's words.
        audit("done" if result is ActionResult.APPLIED else "refused", f"for {length}: {reply}" if length else reply)
    return ClickOutcome(action_id, incident_id, user, responder, result, reply)


def _done(action_id: str, incident_id: int, until: dt.datetime, t: Translator, length: str | None) -> str:
    """What the clicker is told, in their language; times in the team's zone, named."""
    if action_id == ACK:
        return t._("You acknowledged incident #{id}: nobody else will be called. Resolve it once it is handled.",
                   id=incident_id)
    if action_id == RESOLVE:
        return t._("You resolved incident #{id}.", id=incident_id)
    if action_id == FALSE_POSITIVE:
        return t._("You marked incident #{id} as a false positive.", id=incident_id)
    return t._("Incident #{id} snoozed for {length}: no escalation before {time}.", id=incident_id,
               length=t._(length or SNOOZES[DEFAULT_MINUTES]), time=t.datetime_zone(until))


def _already(conn: Connection, action_id: str, incident_id: int, directory: SlackDirectory, t: Translator) -> str:
    """Explain politely why a click changed nothing: someone (maybe the clicker) got there first."""
    row = repo.get(conn, incident_id)
    assert row is not None
    state = row.state
    if state.is_closed:
        by = next((e.actor for e in reversed(repo.events(conn, incident_id)) if e.to_state == state.value), None)
        who = " " + t._("by {who}", who=directory.name(by)) if by and by != "system" else ""
        if state.value in CLOSED_WORDS:
            return t._(CLOSED_WORDS[state.value]).format(id=incident_id, by=who)
        return t._("Incident #{id} is {state}: nothing to do.", id=incident_id, state=state.value)
    if state is IncidentState.ACKNOWLEDGED:
        who = directory.name(row.acknowledged_by) if row.acknowledged_by else t._("someone")
        return t._("Incident #{id} was already acknowledged by {who}.", id=incident_id, who=who)
    if action_id == SNOOZE:
        if state is IncidentState.OPEN:
            return t._("Incident #{id} has not been sent out yet: nothing to snooze.", id=incident_id)
        if row.next_action_at is None:
            return t._("Every level of incident #{id} has already been called: nothing left to snooze.",
                       id=incident_id)
        return t._("Incident #{id} will not escalate before {time} anyway.", id=incident_id,
                   time=t.datetime_zone(row.next_action_at))
    return t._("Incident #{id} is {state}: nothing to do.", id=incident_id, state=t._(state.value))


def _tell(client: WebClient, channel: str, user: str, text: str) -> None:
    """An ephemeral reply: only the clicker sees it, so a refusal embarrasses no one."""
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    except CLIENT_ERRORS as exc:
        log.warning("could not reply to a button click: %s", type(exc).__name__)


@dataclass(slots=True)
class BlockActionHandler:
    """``handle_block_action`` with its dependencies bound, for the listener."""

    engine: Engine
    escalation: EscalationEngine
    client: WebClient
    directory: SlackDirectory
    clock: Clock
    on_applied: Callable[[], None] | None = None
    lock: AbstractContextManager[Any] | None = None

    def __call__(self, payload: Mapping[str, Any]) -> list[ClickOutcome]:
        return handle_block_action(payload, engine=self.engine, escalation=self.escalation, client=self.client,
                                   directory=self.directory, clock=self.clock,
                                   on_applied=self.on_applied, lock=self.lock)


class SlackActionListener:
    """Receives button clicks over Socket Mode (plain ``slack_sdk``, no extra dependency).

    ``start`` returns at once: a background thread opens the connection
    (``apps.connections.open`` with the app-level token, then a WebSocket) and,
    when that fails (Slack down, a wrong token), tries again with a growing wait
    (``backoff`` doubling up to ``max_backoff``). Nothing here can stop the worker:
    without the buttons, alerts still go out, and ``on_status`` hears what is
    wrong (for ``/healthz``). Once connected, the SDK reconnects by itself when
    Slack rotates or drops the connection. ``stop`` closes it.
    """

    def __init__(self, app_token: str, web_client: WebClient, handler: Callable[[Mapping[str, Any]], object], *,
                 ping_interval: float = 5.0, backoff: float = 2.0, max_backoff: float = 300.0,
                 on_status: Callable[[str | None], None] | None = None) -> None:
        self._app_token = app_token
        self.web_client = web_client
        self.handler = handler
        self.ping_interval = ping_interval
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.on_status = on_status
        self.problem: str | None = "buttons offline: Socket Mode not connected yet"
        self._client: SocketModeClient | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected()

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._connect_until_done, name="slack-socket-mode", daemon=True)
        self._thread.start()

    def _connect_until_done(self) -> None:
        wait = self.backoff
        failures = 0
        while not self._stopping.is_set():
            client = SocketModeClient(app_token=self._app_token, web_client=self.web_client,
                                      ping_interval=self.ping_interval)
            client.socket_mode_request_listeners.append(self._on_request)
            try:
                client.connect()
            except Exception as exc:  # any failure to connect is retried, never raised into the worker
                failures += 1
                client.close()
                reason = _connect_failure(exc)
                self._report(f"buttons offline: Socket Mode cannot connect ({reason}); retrying in {wait:.0f} s")
                log.error("Slack buttons offline (alerts still go out): Socket Mode cannot connect: %s; "
                          "try %d, next in %.0f s", reason, failures, wait)
                if self._stopping.wait(wait):
                    return
                wait = min(wait * 2, self.max_backoff)
                continue
            self._client = client
            if self._stopping.is_set():  # stop() came while connecting
                client.close()
                return
            self._report(None)
            log.info("Slack buttons online (Socket Mode connected)")
            return

    def _report(self, problem: str | None) -> None:
        self.problem = problem
        if self.on_status is not None:
            self.on_status(problem)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _on_request(self, client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        # Acknowledge first: Slack shows the user an error if the ack takes more than 3 s.
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if request.type != "interactive" or request.payload.get("type") != "block_actions":
            return
        try:
            self.handler(request.payload)
        except Exception:  # one bad click must not stop the listener
            log.exception("a button click could not be handled")


def _connect_failure(exc: BaseException) -> str:
    """Why Socket Mode did not connect, in words, without the token (``redact`` scrubs what Slack echoes)."""
    from monitor.notify.slack.client import ADVICE, error_code
    from monitor.redact import redact

    code = error_code(exc)
    if code in ("invalid_auth", "not_authed", "not_allowed_token_type"):
        return (f"Slack answered {code}: SLACK_APP_TOKEN must be the app-level token (xapp-) with "
                "connections:write")
    if code:
        return f"Slack answered {code}" + (f": {ADVICE[code]}" if code in ADVICE else "")
    return redact(f"{type(exc).__name__}: {exc}", limit=200)
