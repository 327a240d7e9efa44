"""Slack delivery and buttons against a local Slack (``tests/slack_emulator.py``) with the real SDK clients.

What a responder sees, one message per incident kept current, who may press the
buttons, and delivery exactly once through rate limits, outages and a crash.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ruamel.yaml import YAML
from sqlalchemy import Engine, func, select

from monitor.clock import FakeClock
from monitor.escalation import ActionResult, EscalationConfig, EscalationEngine
from monitor.escalation.snooze import SNOOZES
from monitor.models import AlertPayload, IncidentState, Notification, SentimentScores, Severity, Signal
from monitor.notify import ConsoleNotifier, DeliveryError, deliver_pending
from monitor.notify.factory import build_action_listener, build_notifier
from monitor.notify.render import view
from monitor.notify.slack import (
    EVENT_TYPE,
    BlockActionHandler,
    RetryPolicy,
    SlackActionListener,
    SlackNotifier,
    SlackRef,
    handle_block_action,
    make_client,
)
from monitor.notify.slack.directory import SlackDirectory
from monitor.settings import Settings
from monitor.store import audit, outbox, transaction
from monitor.store import incidents as repo
from monitor.store import mentions as mention_repo
from monitor.store.tables import incident_events
from monitor.store.tables import outbox as outbox_table
from monitor.yamlconfig import parse
from tests.conftest import ROOT, make_mention
from tests.slack_emulator import APP_TOKEN, BOT_TOKEN, METHOD_SCOPES, SlackEmulator, wait_until

ZONE = ZoneInfo("Europe/Brussels")
T0 = datetime(2026, 11, 18, 10, 0, tzinfo=ZONE).astimezone(UTC)  # a Wednesday, business hours
FIXTURE = ROOT / "tests" / "fixtures" / "slack" / "block_actions.json"
MANIFEST = ROOT / "slack-app-manifest.yaml"

CONFIG = """
timezone: Europe/Brussels
business_hours: {days: [mon, tue, wed, thu, fri], start: "08:00", end: "20:00"}
grouping: {window: 6h}
responders:
  sofie: {name: Sofie Peeters, slack: U0SOFIE01}
  karim: {name: Karim El Amrani, email: karim@lumora.example}
  oncall: {name: On call, slack: U0ONCALL1, role: on_call}
  lotte: {name: Lotte Maes, slack: U0LOTTE01, role: legal}
policies:
  - name: critical
    match: {severity: [critical]}
    after_hours: page
    on_call: [oncall]
    levels:
      - {notify: [sofie], channel: "#reputation-alerts", ack_within: 15m}
      - {notify: [karim], ack_within: 30m}
  - name: legal
    match: {rules: [lawsuit]}
    levels:
      - {notify: [lotte], ack_within: 1h}
guidelines:
  - holding_statement: We are looking into it and will reply within the hour.
    who_may_answer: Sofie (press office)
    never_say: [no comment, it is the customer's fault]
"""
LONG_POST = ("Lumora cut our power in the middle of winter <!channel> and nobody answers the phone. "
             + "Three days without heating, two kids at home, and still no reply from anyone at all. " * 4)


def manifest_scopes() -> list[str]:
    return list(YAML(typ="safe").load(MANIFEST.read_text(encoding="utf-8"))["oauth_config"]["scopes"]["bot"])


@pytest.fixture
def config(tmp_path: Path) -> EscalationConfig:
    path = tmp_path / "escalation.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return parse(EscalationConfig, path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[SlackEmulator]:
    # The bot gets exactly the manifest's scopes: a call the manifest does not allow fails here too.
    emulator = SlackEmulator(clock=clock.now, scopes=manifest_scopes())
    emulator.add_channel("reputation-alerts", "C0ALERTS01")
    emulator.add_channel("general", "C0GENERAL1")
    emulator.add_user("U0SOFIE01", name="Sofie Peeters")
    emulator.add_user("U0KARIM01", email="karim@lumora.example", name="Karim El Amrani")
    emulator.add_user("U0ONCALL1", name="On call")
    emulator.add_user("U0LOTTE01", name="Lotte Maes")
    emulator.add_user("U0VISITOR", name="Someone else")
    with emulator:
        yield emulator


class Waits(list[float]):
    """Records the waits asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def retry(waits: Waits) -> RetryPolicy:
    return RetryPolicy(backoff=0.001, sleep=waits, timeout=5)


def notifier_for(slack: SlackEmulator, engine: Engine, config: EscalationConfig, clock: FakeClock,
                 retry: RetryPolicy) -> SlackNotifier:
    client = make_client(BOT_TOKEN, base_url=slack.base_url, retry=retry)
    return SlackNotifier(client, engine, config, clock=clock, retry=retry)


@pytest.fixture
def notifier(slack: SlackEmulator, engine: Engine, config: EscalationConfig, clock: FakeClock,
             retry: RetryPolicy) -> SlackNotifier:
    return notifier_for(slack, engine, config, clock, retry)


@pytest.fixture
def esc(config: EscalationConfig) -> EscalationEngine:
    return EscalationEngine(config)


def seed(engine: Engine, i: int, at: datetime, *, text: str = "Lumora is terrible", reach: int = 100,
         negative: float = 0.9, author: str | None = None, language: str = "en") -> int:
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", [make_mention(i, text=text, at=at, reach=reach, author=author,
                                                          language=language)], None, at)
        [stored] = mention_repo.get_mentions(conn, [i])
        rest = 1 - negative
        mention_repo.save_scores(conn, [(stored.id, SentimentScores(negative, rest * 0.6, rest * 0.4))],
                                 "test-model", "1", at)
        return stored.id


def open_incident(engine: Engine, esc: EscalationEngine, at: datetime = T0, rule: str = "negative-reach") -> int:
    mid = seed(engine, 1, at, text=LONG_POST, reach=12_300, negative=0.923, author="anna_b", language="nl")
    signal = Signal(rule=rule, severity=Severity.CRITICAL, brand="Lumora", group_key="Lumora",
                    reason="a post with 12,300 followers, 92% negative", fired_at=at, mention_ids=(mid,))
    with transaction(engine) as conn:
        [iid] = esc.ingest(conn, [signal], at)
    return iid


def join(engine: Engine, esc: EscalationEngine, i: int, at: datetime, rule: str = "negative-reach") -> None:
    mid = seed(engine, i, at, text=f"Still no power, day {i}", reach=50 * i, negative=0.8, author=f"user{i}")
    signal = Signal(rule=rule, severity=Severity.CRITICAL, brand="Lumora", group_key="Lumora",
                    reason="another angry post", fired_at=at, mention_ids=(mid,))
    with transaction(engine) as conn:
        assert esc.ingest(conn, [signal], at) == []


def deliver(engine: Engine, notifier: Any, clock: FakeClock) -> int:
    return deliver_pending(engine, notifier, clock.now())


def outbox_rows(engine: Engine) -> list[dict[str, Any]]:
    with transaction(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(select(outbox_table).order_by(outbox_table.c.id))]


def click(payload_user: str, action_id: str, incident_id: int, channel: str = "C0ALERTS01",
          ts: str = "1795000000.000001") -> dict[str, Any]:
    """Slack's real block_actions payload (the recorded fixture) for one button press."""
    payload: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    payload["user"]["id"] = payload_user
    payload["channel"]["id"] = payload["container"]["channel_id"] = channel
    payload["container"]["message_ts"] = payload["message"]["ts"] = ts
    payload["actions"][0].update(action_id=action_id, value=str(incident_id))
    return payload


def choose(payload_user: str, card: list[dict[str, Any]], minutes: int, channel: str = "C0ALERTS01",
           ts: str = "1795000000.000001", forged_value: str | None = None) -> dict[str, Any]:
    """Slack's block_actions payload for a choice in the card's snooze menu (a ``static_select``), built from the
    menu the card shows: Slack sends the chosen option back as ``selected_option``. ``forged_value`` replaces the
    option's value, as a tampered payload would."""
    [menu] = [e for b in card if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "incident_snooze"]
    [option] = [o for o in menu["options"] if o["value"].endswith(f":{minutes}")]
    option = copy.deepcopy(option) | ({"value": forged_value} if forged_value is not None else {})
    payload = click(payload_user, "incident_snooze", 0, channel=channel, ts=ts)
    payload["message"]["blocks"] = copy.deepcopy(card)
    payload["actions"] = [{"type": "static_select", "action_id": menu["action_id"], "block_id": "incident_actions",
                           "selected_option": option, "placeholder": menu["placeholder"],
                           "action_ts": "1795000060.123456"}]
    return payload


def handler(engine: Engine, esc: EscalationEngine, notifier: SlackNotifier, clock: FakeClock) -> BlockActionHandler:
    return BlockActionHandler(engine=engine, escalation=esc, client=notifier.client, directory=notifier.directory,
                              clock=clock)


# --- what the alert says ------------------------------------------------------------------------------
def test_the_alert_says_everything_a_responder_needs(engine: Engine, esc: EscalationEngine, slack: SlackEmulator,
                                                     notifier: SlackNotifier, clock: FakeClock) -> None:
    iid = open_incident(engine, esc)
    clock.advance(timedelta(minutes=2))
    assert deliver(engine, notifier, clock) == 1

    [post] = slack.ok_calls("chat.postMessage")[:1]
    assert post.params["channel"] == "C0ALERTS01"  # "#reputation-alerts" resolved to its id
    assert post.params["metadata"] == {"event_type": EVENT_TYPE, "event_payload": {
        "incident_id": iid, "notification_id": 1, "dedupe": "1:channel"}}
    assert post.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    [message] = slack.messages("C0ALERTS01")
    text = message.block_text()
    assert message.text == f"[NEW INCIDENT] #{iid} CRITICAL · Lumora · rule negative-reach"
    for part in [
        "Lumora cut our power in the middle of winter &lt;!channel&gt;",  # shortened, escaped: pings nobody
        "<https://x.com/u/status/1|Open the post on X>",  # a link to it
        "@anna_b", "12,300 followers", "· X ·", "· nl ·",  # author, reach, source, language
        "negative 92%",  # sentiment with its score
        "`negative-reach`", "a post with 12,300 followers, 92% negative",  # the rule and why
        "*Level 1* → <@U0SOFIE01>",  # the level and who is called
        "*13 min left* to acknowledge",  # time left before the next level (15 min deadline, sent 2 min later)
        "We are looking into it and will reply within the hour.", "Sofie (press office)",
        "no comment; it is the customer's fault",  # the response guideline
    ]:
        assert part in text, part
    assert "<!channel>" not in text
    assert "…" in text and len(LONG_POST) > 280
    deadline = int((T0 + timedelta(minutes=15)).timestamp())
    assert f"<!date^{deadline}^" in text and "|Wed 18 Nov 10:15 (Brussels time)>" in text  # each reader's own time zone
    [actions] = [b for b in message.blocks if b["type"] == "actions"]
    assert [(e["action_id"], e.get("value")) for e in actions["elements"]] == [
        ("incident_ack", str(iid)), ("incident_resolve", str(iid)), ("incident_false_positive", str(iid)),
        ("incident_snooze", None)]
    # Snooze is a menu of the console's lengths, each option naming the incident and its minutes.
    menu = actions["elements"][-1]
    assert (menu["type"], menu["placeholder"]["text"]) == ("static_select", "Snooze for…")
    assert [(o["text"]["text"], o["value"]) for o in menu["options"]] == [
        ("30 minutes", f"{iid}:30"), ("1 hour", f"{iid}:60"), ("2 hours", f"{iid}:120"), ("4 hours", f"{iid}:240"),
        ("8 hours", f"{iid}:480"), ("24 hours", f"{iid}:1440")]

    # The person called gets it by DM too, with the same buttons.
    assert [c.params["users"] for c in slack.ok_calls("conversations.open")] == ["U0SOFIE01"]
    dm = slack.dm_channel_of("U0SOFIE01")
    assert dm is not None
    [dm_message] = slack.messages(dm.id)
    assert "You are called at level 1" in dm_message.block_text()
    assert any(b["type"] == "actions" for b in dm_message.blocks)
    # deliver_pending stored where the incident's message is.
    assert outbox_rows(engine)[0]["external_ref"] == f"C0ALERTS01:{message.ts}"


def test_console_and_slack_render_the_same_parts(engine: Engine, esc: EscalationEngine, slack: SlackEmulator,
                                                 notifier: SlackNotifier, clock: FakeClock) -> None:
    """README "Setting up Slack": "Without `SLACK_BOT_TOKEN`, alerts are printed to the console with the same
    content"."""
    import io

    open_incident(engine, esc)
    with transaction(engine) as conn:
        [n] = outbox.pending(conn)
    out = io.StringIO()
    ConsoleNotifier(out).send(n)  # the console keeps working without Slack, same content
    notifier.send(n)
    slack_text = slack.messages("C0ALERTS01")[0].block_text().replace("&lt;", "<").replace("&gt;", ">")
    console_text = out.getvalue()
    v = view(n.kind, n.payload)
    assert v.guideline is not None
    shared = [v.reason, v.rule, v.guideline.holding_statement, v.guideline.who_may_answer,
              *v.guideline.never_say, *(p.text for p in v.posts), *(p.details for p in v.posts)]
    for piece in shared:
        assert piece in slack_text and piece in console_text, piece


# --- one message per incident ------------------------------------------------------------------------
def test_one_message_per_incident_threads_and_updates(engine: Engine, esc: EscalationEngine, slack: SlackEmulator,
                                                      notifier: SlackNotifier, clock: FakeClock) -> None:
    """README "Setting up Slack": "Each incident is **one channel message**, kept current with `chat.update`"."""
    iid = open_incident(engine, esc)
    deliver(engine, notifier, clock)
    [anchor] = slack.messages("C0ALERTS01")

    # A later post joins: a reply in the thread, not a new message in the channel.
    clock.advance(timedelta(minutes=5))
    join(engine, esc, 2, clock.now())
    deliver(engine, notifier, clock)
    assert slack.messages("C0ALERTS01") == [anchor]
    [joined] = slack.replies("C0ALERTS01", anchor.ts)
    assert "*1 more post* joined" in joined.block_text() and "Still no power, day 2" in joined.block_text()
    assert slack.ok_calls("chat.postMessage")[-1].params["thread_ts"] == anchor.ts
    # ... and the card's count and top posts follow, still showing who is called.
    assert "Incident #1 · 2 posts" in anchor.block_text() and "@user2 · 100 followers" in anchor.block_text()
    assert "*Level 1* → <@U0SOFIE01>" in anchor.block_text() and anchor.updates == 1

    # Nobody acknowledges: level 2 is called; the card says so, the thread logs it, Karim gets a DM.
    clock.set(T0 + timedelta(minutes=15))
    with transaction(engine) as conn:
        esc.tick(conn, clock.now())
    deliver(engine, notifier, clock)
    update = slack.ok_calls("chat.update")[-1]
    assert (update.params["channel"], update.params["ts"]) == ("C0ALERTS01", anchor.ts)
    assert "Escalated to *Level 2* → <@U0KARIM01>" in anchor.block_text()  # e-mail resolved to the user
    assert "*30 min left*" in anchor.block_text()
    karim_dm = slack.dm_channel_of("U0KARIM01")
    assert karim_dm is not None and "level 2" in slack.messages(karim_dm.id)[0].block_text()

    # Karim acknowledges from his DM: the card shows it; only the closing buttons remain.
    outcomes = handler(engine, esc, notifier, clock)(click("U0KARIM01", "incident_ack", iid, channel=karim_dm.id))
    assert [o.result for o in outcomes] == [ActionResult.APPLIED]
    deliver(engine, notifier, clock)
    assert "*Acknowledged* by <@U0KARIM01>" in anchor.block_text()
    [actions] = [b for b in anchor.blocks if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == ["incident_resolve", "incident_false_positive"]

    # Resolved: the card is final (no buttons), and everyone who was called hears it by DM.
    clock.advance(timedelta(hours=1))
    handler(engine, esc, notifier, clock)(click("U0SOFIE01", "incident_resolve", iid))
    deliver(engine, notifier, clock)
    assert "*Resolved* by <@U0SOFIE01>" in anchor.block_text()
    assert not [b for b in anchor.blocks if b["type"] == "actions"]
    assert anchor.updates == 4
    assert slack.messages("C0ALERTS01") == [anchor]  # still one message in the channel
    thread = [m.block_text() for m in slack.replies("C0ALERTS01", anchor.ts)]
    assert len(thread) == 4
    assert "Escalated to *Level 2*" in thread[1] and "Acknowledged" in thread[2] and "Resolved" in thread[3]
    sofie_dm = slack.dm_channel_of("U0SOFIE01")
    assert sofie_dm is not None and "Resolved" in slack.messages(sofie_dm.id)[-1].block_text()
    assert "Resolved" in slack.messages(karim_dm.id)[-1].block_text()
    # Karim's e-mail was looked up once, however many messages named him.
    assert len(slack.ok_calls("users.lookupByEmail")) == 1
    assert all(r["external_ref"] == f"C0ALERTS01:{anchor.ts}" for r in outbox_rows(engine))


def test_snooze_holds_back_the_next_level_for_an_hour(engine: Engine, esc: EscalationEngine,
                                                      slack: SlackEmulator, notifier: SlackNotifier,
                                                      clock: FakeClock) -> None:
    iid = open_incident(engine, esc)
    deliver(engine, notifier, clock)
    clock.advance(timedelta(minutes=10))
    h = handler(engine, esc, notifier, clock)
    card = slack.messages("C0ALERTS01")[0].blocks
    [first] = h(choose("U0SOFIE01", card, 60))
    [again] = h(choose("U0SOFIE01", card, 60))  # a double choice changes nothing more
    assert first.reply == f"Incident #{iid} snoozed for 1 hour: no escalation before Wed 18 Nov 11:10 (Brussels time)."
    assert (first.result, again.result) == (ActionResult.APPLIED, ActionResult.ALREADY)
    assert "will not escalate before Wed 18 Nov 11:10 (Brussels time) anyway" in again.reply
    with transaction(engine) as conn:
        row = repo.get(conn, iid)
        assert row is not None and row.next_action_at == T0 + timedelta(minutes=70)
        assert "snoozed: no escalation before Wed 18 Nov 11:10 CET" in [e.note for e in repo.events(conn, iid)]
    deliver(engine, notifier, clock)
    [anchor] = slack.messages("C0ALERTS01")
    assert "*Snoozed* by <@U0SOFIE01>" in anchor.block_text() and "(1 h from now)" in anchor.block_text()
    with transaction(engine) as conn:
        assert esc.tick(conn, T0 + timedelta(minutes=15)) == 0  # the old deadline passes quietly
        assert esc.tick(conn, T0 + timedelta(minutes=70)) == 1  # then level 2 is called
    assert [r["kind"] for r in outbox_rows(engine)] == ["alert", "snoozed", "escalation"]


# --- who may press the buttons ---------------------------------------------------------------------
@pytest.mark.parametrize("user", ["U0VISITOR", "U0LOTTE01"])  # not a responder; a responder of another policy
def test_a_click_by_someone_outside_the_policy_is_refused(engine: Engine, esc: EscalationEngine,
                                                          slack: SlackEmulator, notifier: SlackNotifier,
                                                          clock: FakeClock, user: str) -> None:
    """README "Setting up Slack": "Only responders of the incident's policy may press the buttons; others get a private
    refusal".
    """
    iid = open_incident(engine, esc)
    deliver(engine, notifier, clock)
    before = (outbox_rows(engine), _events(engine))
    [outcome] = handler(engine, esc, notifier, clock)(click(user, "incident_resolve", iid))
    assert outcome.result is None and not outcome.applied
    [ephemeral] = slack.ephemerals
    assert ephemeral["user"] == user and ephemeral["channel"] == "C0ALERTS01"
    assert "Only the people on the escalation policy `critical`" in ephemeral["text"]
    assert (outbox_rows(engine), _events(engine)) == before
    with transaction(engine) as conn:
        row = repo.get(conn, iid)
        assert row is not None and row.state is IncidentState.NOTIFIED
        [entry] = audit.for_incident(conn, iid)  # the refusal is on the incident's record
    assert (entry.channel, entry.action, entry.outcome) == ("slack", "resolve", "refused") and user in entry.detail


def test_the_on_call_person_may_act(engine: Engine, esc: EscalationEngine, slack: SlackEmulator,
                                    notifier: SlackNotifier, clock: FakeClock) -> None:
    iid = open_incident(engine, esc)
    [outcome] = handler(engine, esc, notifier, clock)(click("U0ONCALL1", "incident_ack", iid))
    assert outcome.result is ActionResult.APPLIED and outcome.responder == "oncall"
    with transaction(engine) as conn:
        [entry] = audit.for_incident(conn, iid)
    assert (entry.actor, entry.channel, entry.action, entry.outcome) == ("oncall", "slack", "acknowledge", "done")


def _next_actions(engine: Engine, *incident_ids: int) -> list[datetime | None]:
    with transaction(engine) as conn:
        rows = [repo.get(conn, i) for i in incident_ids]
    return [r.next_action_at if r else None for r in rows]


def _events(engine: Engine) -> int:
    with transaction(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(incident_events)).scalar_one())


def test_a_double_click_is_applied_once(engine: Engine, esc: EscalationEngine, slack: SlackEmulator,
                                        notifier: SlackNotifier, clock: FakeClock) -> None:
    iid = open_incident(engine, esc)
    deliver(engine, notifier, clock)
    h = handler(engine, esc, notifier, clock)
    payload = click("U0SOFIE01", "incident_ack", iid)
    results: list[ActionResult | None] = []
    barrier = threading.Barrier(4)

    def press() -> None:
        barrier.wait()
        results.extend(o.result for o in h(copy.deepcopy(payload)))

    threads = [threading.Thread(target=press) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(r.value for r in results if r) == ["already", "already", "already", "applied"]
    texts = sorted(e["text"] for e in slack.ephemerals)
    assert texts.count(f"Incident #{iid} was already acknowledged by Sofie Peeters.") == 3
    with transaction(engine) as conn:
        assert [e.to_state for e in repo.events(conn, iid)].count("acknowledged") == 1
    assert [r["kind"] for r in outbox_rows(engine)] == ["alert", "acknowledged"]
    # And a click after it was resolved is answered, not applied.
    h(click("U0SOFIE01", "incident_resolve", iid))
    [late] = h(click("U0SOFIE01", "incident_false_positive", iid))
    assert late.result is ActionResult.ALREADY
    assert late.reply == f"Incident #{iid} was already resolved by Sofie Peeters."


@contextmanager
def socket_listener(engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier,
                    clock: FakeClock) -> Iterator[threading.Event]:
    """A Socket Mode listener on the emulator, connected; the event is set once an applied click's
    notifications are delivered (what the worker does: run the outbox at once)."""
    delivered = threading.Event()

    def deliver_now() -> None:
        deliver(engine, notifier, clock)
        delivered.set()

    listener = SlackActionListener(APP_TOKEN, notifier.client, BlockActionHandler(
        engine=engine, escalation=esc, client=notifier.client, directory=notifier.directory, clock=clock,
        on_applied=deliver_now), ping_interval=1)
    listener.start()
    try:
        assert slack.socket_mode.wait_for_connection()
        yield delivered
    finally:
        listener.stop()


def test_clicks_arrive_over_socket_mode(engine: Engine, esc: EscalationEngine, slack: SlackEmulator,
                                        notifier: SlackNotifier, clock: FakeClock) -> None:
    iid = open_incident(engine, esc)
    deliver(engine, notifier, clock)
    [anchor] = slack.messages("C0ALERTS01")
    with socket_listener(engine, esc, slack, notifier, clock) as delivered:
        envelope = slack.push_interactive(click("U0SOFIE01", "incident_ack", iid, ts=anchor.ts))
        assert slack.wait_for_ack(envelope)
        assert delivered.wait(5)
    open_call = slack.calls("apps.connections.open")[0]
    assert open_call.headers["Authorization"] == f"Bearer {APP_TOKEN}"
    assert "*Acknowledged* by <@U0SOFIE01>" in anchor.block_text()
    assert wait_until(lambda: len(slack.ephemerals) == 1)
    assert slack.ephemerals[0]["text"].startswith(f"You acknowledged incident #{iid}")


def test_snooze_for_four_hours_from_the_cards_menu_over_socket_mode(engine: Engine, esc: EscalationEngine,
                                                                   slack: SlackEmulator, notifier: SlackNotifier,
                                                                   clock: FakeClock) -> None:
    """README "Setting up Slack": "The card's *Snooze for…* menu offers the same lengths as the console (30 minutes,
    1, 2, 4, 8 or 24 hours); the incident is snoozed for the length chosen and the audit log says which".

    "I'm on it, give me 4 hours": the choice travels as Slack sends it, over Socket Mode.
    """
    iid = open_incident(engine, esc)
    deliver(engine, notifier, clock)
    [anchor] = slack.messages("C0ALERTS01")
    [menu] = [e for b in anchor.blocks if b["type"] == "actions" for e in b["elements"]
              if e["action_id"] == "incident_snooze"]
    assert [int(o["value"].split(":")[1]) for o in menu["options"]] == list(SNOOZES)  # the console's, one list
    assert all(len(o["text"]["text"]) <= 75 and len(o["value"]) <= 150 for o in menu["options"])  # Slack's limits
    clock.advance(timedelta(minutes=10))
    with socket_listener(engine, esc, slack, notifier, clock) as delivered:
        envelope = slack.push_interactive(choose("U0SOFIE01", anchor.blocks, 240, ts=anchor.ts))
        assert slack.wait_for_ack(envelope)
        assert delivered.wait(30)
    until = clock.now() + timedelta(hours=4)
    with transaction(engine) as conn:
        row = repo.get(conn, iid)
        assert row is not None and row.next_action_at == until
        [entry] = audit.for_incident(conn, iid)
    assert (entry.actor, entry.channel, entry.action, entry.outcome) == ("sofie", "slack", "snooze", "done")
    assert "for 4 hours" in (entry.detail or "")
    # The card says so (and keeps its menu: nobody has acknowledged yet); the chooser is told until when.
    text = anchor.block_text()
    assert "*Snoozed* by <@U0SOFIE01>" in text and "(4 h from now)" in text
    assert "Wed 18 Nov 14:10 (Brussels time)" in text
    assert any(e["action_id"] == "incident_snooze" for b in anchor.blocks if b["type"] == "actions"
               for e in b["elements"])
    assert wait_until(lambda: len(slack.ephemerals) == 1, timeout=30)
    assert slack.ephemerals[0]["text"] == (f"Incident #{iid} snoozed for 4 hours: no escalation before "
                                           "Wed 18 Nov 14:10 (Brussels time).")
    with transaction(engine) as conn:
        assert esc.tick(conn, until - timedelta(minutes=1)) == 0  # level 2 waits the four hours
        assert esc.tick(conn, until) == 1


def test_a_snooze_button_on_a_card_posted_before_the_menu_still_means_one_hour(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier,
        clock: FakeClock) -> None:
    """Cards already in Slack keep their old "Snooze 1 h" button until updated: its click (a ``button`` action whose
    value is the incident alone) still snoozes for the hour it promised."""
    iid = open_incident(engine, esc)
    deliver(engine, notifier, clock)
    payload = click("U0SOFIE01", "incident_snooze", iid)
    assert payload["actions"][0]["type"] == "button" and "selected_option" not in payload["actions"][0]
    [outcome] = handler(engine, esc, notifier, clock)(payload)
    assert outcome.applied and outcome.reply.startswith(f"Incident #{iid} snoozed for 1 hour:")
    with transaction(engine) as conn:
        row = repo.get(conn, iid)
        assert row is not None and row.next_action_at == clock.now() + timedelta(hours=1)
        [entry] = audit.for_incident(conn, iid)
    assert entry.outcome == "done" and "for 1 hour" in (entry.detail or "")


@pytest.mark.parametrize("forged", ["{iid}:99999", "{iid}:7", "{iid}:-60", "{other}:240", "4 hours", ""])
def test_a_forged_snooze_value_is_refused_and_audited(engine: Engine, esc: EscalationEngine,
                                                      slack: SlackEmulator, notifier: SlackNotifier,
                                                      clock: FakeClock, forged: str) -> None:
    """README "Setting up Slack": "A menu value naming any other length is refused and audited".

    Slack only sends the options the card offered, so such a value is a tampered payload: a length not offered,
    another policy's incident (Sofie is not on `legal`), or no incident at all. Nothing changes; the record says so.
    """
    iid = open_incident(engine, esc)
    mid = seed(engine, 2, T0, text="Lumora will hear from our lawyer")
    with transaction(engine) as conn:  # an incident of the `legal` policy, which Sofie is not on
        [other] = esc.ingest(conn, [Signal(rule="lawsuit", severity=Severity.WARNING, brand="Lumora",
                                           group_key="Lumora legal", reason="a lawsuit", fired_at=T0,
                                           mention_ids=(mid,))], T0)
    deliver(engine, notifier, clock)
    card = slack.messages("C0ALERTS01")[0].blocks
    before = (outbox_rows(engine), _events(engine), _next_actions(engine, iid, other))
    value = forged.format(iid=iid, other=other)
    [outcome] = handler(engine, esc, notifier, clock)(choose("U0SOFIE01", card, 240, forged_value=value))
    assert outcome.result is None and not outcome.applied
    assert (outbox_rows(engine), _events(engine), _next_actions(engine, iid, other)) == before
    [ephemeral] = slack.ephemerals
    with transaction(engine) as conn:
        [entry] = audit.recent(conn)
    assert (entry.actor, entry.channel, entry.action, entry.outcome) == ("sofie", "slack", "snooze", "refused")
    assert "U0SOFIE01" in (entry.detail or "")
    if forged.startswith("{iid}"):
        assert entry.incident_id == iid and ephemeral["text"] == "Choose one of the snooze lengths offered."
    elif forged.startswith("{other}"):
        assert entry.incident_id == other and "Only the people on the escalation policy `legal`" in ephemeral["text"]
    else:
        assert entry.incident_id is None and "does not name an incident" in ephemeral["text"]


# --- exactly once ------------------------------------------------------------------------------------
def test_rate_limits_and_server_errors_are_survived(engine: Engine, esc: EscalationEngine, slack: SlackEmulator,
                                                    notifier: SlackNotifier, clock: FakeClock,
                                                    waits: Waits) -> None:
    """README "Setting up Slack": "A 429 asking for up to 2 s is waited out; a longer `Retry-After` defers the
    notification in the outbox rather than stalling the worker".
    """
    open_incident(engine, esc)
    slack.fail("chat.postMessage", status=429, retry_after=2)
    slack.fail("conversations.list", status=503, times=2)
    slack.drop("conversations.open")
    slack.fail("chat.postMessage", status=500)  # then not posted, and no clear answer either
    assert deliver(engine, notifier, clock) == 1
    assert 2.0 in waits  # Retry-After honoured (recorded, not slept)
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 500, 200, 200]  # channel x3, DM
    assert [c.status for c in slack.calls("conversations.list")] == [503, 503, 200]
    dm = slack.dm_channel_of("U0SOFIE01")
    assert dm is not None
    assert len(slack.messages("C0ALERTS01")) == 1 and len(slack.messages(dm.id)) == 1
    # Before repeating the post that got a 500, the notifier looked whether it had gone through.
    assert [c.params["channel"] for c in slack.calls("conversations.history")] == ["C0ALERTS01"]

    # A 500 on chat.update is retried by the client (updating twice is harmless).
    slack.fail("chat.update", status=500, times=2)
    clock.advance(timedelta(minutes=1))
    [row] = outbox_rows(engine)
    with transaction(engine) as conn:
        esc.acknowledge(conn, row["incident_id"], "sofie", clock.now())
    assert deliver(engine, notifier, clock) == 1
    assert [c.status for c in slack.calls("chat.update")] == [500, 500, 200]


@pytest.mark.parametrize("fault", ["500", "drop"])
def test_an_answer_lost_after_slack_posted_does_not_double_the_message(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier, clock: FakeClock,
        fault: str) -> None:
    open_incident(engine, esc)
    if fault == "500":
        slack.fail("chat.postMessage", status=502, after_effect=True)
    else:
        slack.drop("chat.postMessage", after_effect=True)
    assert deliver(engine, notifier, clock) == 1
    [message] = slack.messages("C0ALERTS01")
    assert outbox_rows(engine)[0]["external_ref"] == f"C0ALERTS01:{message.ts}"
    assert len(slack.calls("chat.postMessage")) == 2  # the channel post (answer lost) and the DM, no repeat


def test_an_outage_of_any_length_ends_with_each_alert_delivered_once(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier,
        clock: FakeClock) -> None:
    """README "Setting up Slack": "an outage of any length ends with every alert delivered once"."""
    iid = open_incident(engine, esc)
    slack.fail("chat.postMessage", status=500, after_effect=True)  # posted, answer lost...
    slack.fail("conversations.history", status=500, times=7)  # ...and Slack stays down for a while
    slack.fail("conversations.open", status=503, times=3)
    passes = 0
    while outbox_rows(engine)[0]["sent_at"] is None:
        passes += 1
        assert passes < 10
        deliver(engine, notifier, clock)
        clock.advance(timedelta(minutes=1))
    assert passes > 2
    [row] = outbox_rows(engine)
    assert row["attempts"] == passes and row["last_error"] is None
    assert len(slack.messages("C0ALERTS01")) == 1
    dm = slack.dm_channel_of("U0SOFIE01")
    assert dm is not None and len(slack.messages(dm.id)) == 1
    # Later notifications of the incident still find the one message.
    with transaction(engine) as conn:
        esc.resolve(conn, iid, "sofie", clock.now())
    deliver(engine, notifier, clock)
    assert slack.messages("C0ALERTS01")[0].updates == 1


def test_a_crash_before_the_ts_is_recorded_does_not_send_twice(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, config: EscalationConfig,
        clock: FakeClock, retry: RetryPolicy, monkeypatch: pytest.MonkeyPatch) -> None:
    """README "Setting up Slack": "so an alert is posted once even if the worker died between Slack's answer and
    recording it".
    """
    open_incident(engine, esc)
    real_mark_sent = outbox.mark_sent

    def crash(*args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(outbox, "mark_sent", real_mark_sent)  # only once
        raise RuntimeError("killed between the Slack call and recording its ts")

    monkeypatch.setattr(outbox, "mark_sent", crash)
    with pytest.raises(RuntimeError):
        deliver(engine, notifier_for(slack, engine, config, clock, retry), clock)
    [row] = outbox_rows(engine)
    assert row["sent_at"] is None and row["attempts"] == 1
    posted = len(slack.calls("chat.postMessage"))
    assert posted == 2  # channel and DM reached Slack

    # Restart: a new process (new notifier, empty caches) on the same store.
    clock.advance(timedelta(minutes=1))
    assert deliver(engine, notifier_for(slack, engine, config, clock, retry), clock) == 1
    assert len(slack.calls("chat.postMessage")) == posted  # nothing posted again
    [message] = slack.messages("C0ALERTS01")
    assert outbox_rows(engine)[0]["external_ref"] == f"C0ALERTS01:{message.ts}"
    history = slack.calls("conversations.history")
    assert history[0].params["include_all_metadata"] in (True, "1", 1)
    created = row["created_at"].timestamp()
    assert float(history[0].params["oldest"]) < created  # looked back from before the notification


def test_refusals_are_not_retried(engine: Engine, esc: EscalationEngine, slack: SlackEmulator,
                                  notifier: SlackNotifier, clock: FakeClock) -> None:
    open_incident(engine, esc)
    with transaction(engine) as conn:
        [n] = outbox.pending(conn)
    assert notifier.verify() == "bot U0MONITOR1 in Lumora"
    slack.bot_token = "xoxb-revoked"
    with pytest.raises(DeliveryError) as refused:
        notifier.verify()
    with pytest.raises(DeliveryError) as refused:
        notifier.send(n)
    assert not refused.value.recoverable and "invalid_auth" in str(refused.value)
    assert BOT_TOKEN not in str(refused.value)

    slack.bot_token = BOT_TOKEN
    slack.fail("chat.postMessage", status=429, retry_after=120)  # longer than we block: retry next pass
    with pytest.raises(DeliveryError) as later:
        notifier.send(n)
    assert later.value.recoverable

    # A channel the escalation.yaml in force names (a policy of its own here): the notifier follows the file.
    gone = Notification(id=99, incident_id=n.incident_id, kind="alert", recipients=(), channel="#closed-channel",
                        payload=replace(n.payload, policy="a policy no longer in the file"),
                        created_at=n.created_at)
    with pytest.raises(DeliveryError) as missing:
        notifier.send(gone)
    assert not missing.value.recoverable and "#closed-channel not found" in str(missing.value)


def test_a_responder_unknown_to_slack_does_not_block_the_alert(
        engine: Engine, esc: EscalationEngine, slack: SlackEmulator, notifier: SlackNotifier,
        clock: FakeClock) -> None:
    iid = open_incident(engine, esc)
    deliver(engine, notifier, clock)
    slack.users.pop("U0KARIM01")  # Karim's e-mail is not in this workspace
    clock.set(T0 + timedelta(minutes=15))
    with transaction(engine) as conn:
        esc.tick(conn, clock.now())
    assert deliver(engine, notifier, clock) == 1
    [anchor] = slack.messages("C0ALERTS01")
    assert "Escalated to *Level 2* → Karim El Amrani" in anchor.block_text()
    assert slack.ok_calls("conversations.open") and len(slack.ok_calls("conversations.open")) == 1
    assert iid


# --- wiring ------------------------------------------------------------------------------------------
def test_factory_picks_slack_only_with_a_token(engine: Engine, esc: EscalationEngine, config: EscalationConfig,
                                               slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """README "Setting up Slack": "`MONITOR_SLACK_CHANNEL` is the default for levels that name only people, and where
    the weekly digest is posted".
    README "Setting up Slack": "Without `SLACK_BOT_TOKEN`, alerts are printed to the console with the same content".
    """
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "MONITOR_SLACK_CHANNEL"):
        monkeypatch.delenv(name, raising=False)
    console = build_notifier(Settings(), engine, config)
    assert isinstance(console, ConsoleNotifier)
    assert build_action_listener(Settings(), console, esc) is None

    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("MONITOR_SLACK_CHANNEL", "#general")
    notifier = build_notifier(Settings(), engine, config, base_url=slack.base_url)
    assert isinstance(notifier, SlackNotifier) and notifier.default_channel == "#general"
    assert BOT_TOKEN not in repr(Settings())
    assert build_action_listener(Settings(), notifier, esc) is None  # no app token: no buttons
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    assert isinstance(build_action_listener(Settings(), notifier, esc), SlackActionListener)

    # A level with people but no channel falls back to the default channel.
    n = Notification(id=7, incident_id=open_incident(engine, esc), kind="alert", recipients=("karim",),
                     channel=None, payload=replace(_payload(engine), level=2, recipients=()), created_at=T0)
    ref = SlackRef.parse(notifier.send(n))
    assert ref is not None and ref.channel == "C0GENERAL1"


def _payload(engine: Engine) -> AlertPayload:
    with transaction(engine) as conn:
        return outbox.pending(conn)[0].payload


def test_the_manifest_grants_what_the_code_uses() -> None:
    """README "Setting up Slack": "It asks for `chat:write`"."""
    manifest = YAML(typ="safe").load(MANIFEST.read_text(encoding="utf-8"))
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {s for needed in METHOD_SCOPES.values() for s in needed} <= scopes
    assert {"channels:history", "groups:history", "im:history", "groups:read"} <= scopes
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


def test_directory_caches_lookups_and_ignores_other_buttons(engine: Engine, esc: EscalationEngine,
                                                            slack: SlackEmulator, notifier: SlackNotifier,
                                                            config: EscalationConfig, clock: FakeClock) -> None:
    """README "Setting up Slack": "People are given by `slack:` user id or by `email:` (looked up with
    `users.lookupByEmail`, cached)".
    """
    directory = SlackDirectory(notifier.client, config)
    assert directory.responder_for("U0KARIM01") == "karim"
    assert directory.user_id("karim") == "U0KARIM01"
    assert directory.responder_for("U0VISITOR") is None
    assert len(slack.calls("users.lookupByEmail")) == 1
    assert directory.channel_id("#reputation-alerts") == directory.channel_id("reputation-alerts") == "C0ALERTS01"
    assert len(slack.calls("conversations.list")) == 1
    other = click("U0SOFIE01", "some_other_app_button", 1)
    assert handle_block_action(other, engine=engine, escalation=esc, client=notifier.client, directory=directory,
                               clock=clock) == []


def test_a_click_that_cannot_be_saved_is_answered(engine: Engine, esc: EscalationEngine, slack: SlackEmulator,
                                                  notifier: SlackNotifier, clock: FakeClock,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    iid = open_incident(engine, esc)

    def locked(*args: Any, **kwargs: Any) -> ActionResult:
        raise OperationalError("UPDATE incidents", {}, Exception("database is locked"))

    monkeypatch.setattr(esc, "acknowledge", locked)
    [outcome] = handler(engine, esc, notifier, clock)(click("U0SOFIE01", "incident_ack", iid))
    assert outcome.result is None and "please try again" in slack.ephemerals[0]["text"]


# --- languages ---------------------------------------------------------------------------------------------------
def test_the_channel_reads_the_team_language_and_each_person_their_own(
        engine: Engine, slack: SlackEmulator, clock: FakeClock, retry: RetryPolicy, tmp_path: Path) -> None:
    """Team locale French: the channel's card in French; Sofie (nl_BE) gets her DM and her click's answer in Dutch."""
    path = tmp_path / "escalation.yaml"
    path.write_text("locale: fr_BE\n" + CONFIG.replace("sofie: {name: Sofie Peeters, slack: U0SOFIE01}",
                                                       "sofie: {name: Sofie Peeters, slack: U0SOFIE01, locale: nl_BE}"),
                    encoding="utf-8")
    config = parse(EscalationConfig, path)
    esc = EscalationEngine(config)
    notifier = notifier_for(slack, engine, config, clock, retry)
    iid = open_incident(engine, esc)
    clock.advance(timedelta(minutes=2))
    assert deliver(engine, notifier, clock) == 1
    [card] = slack.messages("C0ALERTS01")
    assert card.text == f"[NOUVEL INCIDENT] n° {iid} CRITIQUE · Lumora · règle negative-reach"
    assert "Prendre en charge" in card.block_text() and "*Niveau 1* → <@U0SOFIE01>" in card.block_text()
    assert "|mer. 18 nov. 10:15 (heure de Bruxelles)>" in card.block_text()  # the team's zone, named
    dm = slack.dm_channel_of("U0SOFIE01")
    assert dm is not None
    [dm_message] = slack.messages(dm.id)
    assert "U wordt voor dit incident opgeroepen op niveau 1." in dm_message.block_text()
    assert "Bevestigen" in dm_message.block_text() and "Voorlopige reactie" in dm_message.block_text()
    [outcome] = handler(engine, esc, notifier, clock)(click("U0SOFIE01", "incident_ack", iid))
    assert outcome.reply == (f"U hebt incident #{iid} bevestigd: er wordt niemand anders meer opgeroepen. "
                             "Sluit het af zodra het afgehandeld is.")
