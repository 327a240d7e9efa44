"""Several workers on one store: a click racing a tick, one scoring backlog, one outbox for two senders.

Two engines on one database stand for two worker processes: each has its own connection
pool, its own ``EscalationEngine``, Slack client and caches, and no lock in common. Threads
released together by a barrier make them act at the same moment. PostgreSQL is the store
several workers share; on SQLite the same tests are one worker's threads (the Slack
listener's and the scheduler's), which no in-process lock serialises any more either.
"""

from __future__ import annotations

import io
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from monitor.app import build_pipeline
from monitor.clock import FakeClock
from monitor.escalation import ActionResult, EscalationConfig, EscalationEngine
from monitor.models import IncidentState, SentimentScores, Severity, Signal
from monitor.notify import ConsoleNotifier, deliver_pending
from monitor.notify.slack import BlockActionHandler, RetryPolicy, SlackNotifier, make_client
from monitor.settings import Settings
from monitor.store import create_store_engine, outbox, transaction
from monitor.store import incidents as repo
from monitor.store import mentions as mention_repo
from monitor.store.tables import outbox as outbox_table
from monitor.store.tables import signals
from monitor.yamlconfig import parse
from tests.conftest import ROOT, make_mention
from tests.slack_emulator import BOT_TOKEN, SlackEmulator
from tests.test_slack import choose, click

ZONE = ZoneInfo("Europe/Brussels")
T0 = datetime(2026, 11, 18, 11, 0, tzinfo=ZONE).astimezone(UTC)
CHANNEL = "C0ALERTS01"
CONFIG = """
timezone: Europe/Brussels
business_hours: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
grouping: {window: 1h}
responders:
  sofie: {name: Sofie Peeters, slack: U0SOFIE01}
  karim: {name: Karim El Amrani, slack: U0KARIM01}
policies:
  - name: critical
    after_hours: page
    on_call: [sofie]  # may press the buttons; channel-only levels keep each repetition to a few Slack calls
    levels:
      - {channel: "#reputation-alerts", ack_within: 15m}
      - {channel: "#reputation-alerts", ack_within: 30m}
"""
# What the channel's card says once the click's change is delivered, by the click.
CARD = {"incident_ack": "*Acknowledged* by <@U0SOFIE01>", "incident_resolve": "*Resolved* by <@U0SOFIE01>",
        "incident_false_positive": "*Marked as a false positive* by <@U0SOFIE01>",
        "incident_snooze": "*Snoozed* by <@U0SOFIE01>"}
FINAL = {"incident_ack": IncidentState.ACKNOWLEDGED, "incident_resolve": IncidentState.RESOLVED,
         "incident_false_positive": IncidentState.FALSE_POSITIVE, "incident_snooze": IncidentState.NOTIFIED}


@pytest.fixture
def second(engine: Engine) -> Iterator[Engine]:
    """The other worker's engine on the same database."""
    other = create_store_engine(engine.url.render_as_string(hide_password=False))
    yield other
    other.dispose()


@pytest.fixture
def config(tmp_path: Path) -> EscalationConfig:
    path = tmp_path / "escalation.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return parse(EscalationConfig, path)


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(clock=clock.now)
    emulator.add_channel("reputation-alerts", CHANNEL)
    emulator.add_user("U0SOFIE01", name="Sofie Peeters")
    emulator.add_user("U0KARIM01", name="Karim El Amrani")
    with emulator:
        yield emulator


def slack_notifier(slack: SlackEmulator, engine: Engine, config: EscalationConfig, clock: FakeClock) -> SlackNotifier:
    retry = RetryPolicy(backoff=0.001, sleep=lambda _: None, timeout=5)
    return SlackNotifier(make_client(BOT_TOKEN, base_url=slack.base_url, retry=retry), engine, config, clock=clock,
                         retry=retry)


def together(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions on their own threads, released at the same instant; their results, in order."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)
    errors: list[BaseException] = []

    def run(i: int, action: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = action()
        except BaseException as exc:  # reported by the test, not lost on a thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def open_incident(engine: Engine, esc: EscalationEngine, i: int, at: datetime) -> int:
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", [make_mention(i, text=f"Lumora cut our power, day {i}", at=at,
                                                          reach=20_000)], None, at)
        [stored] = mention_repo.get_mentions(conn, [i])
        mention_repo.save_scores(conn, [(stored.id, SentimentScores(0.9, 0.05, 0.05))], "m", "1", at)
        signal = Signal(rule="negative-high-reach", severity=Severity.CRITICAL, brand="Lumora", group_key=f"c{i}",
                        reason="a post with 20,000 followers", fired_at=at, mention_ids=(stored.id,))
        [iid] = esc.ingest(conn, [signal], at)
    return iid


def drain(senders: Sequence[tuple[Engine, SlackNotifier, str]], now: datetime) -> None:
    """Both workers deliver at once, until the outbox is empty."""
    for _ in range(10):
        together(*[lambda e=e, n=n, c=c: deliver_pending(e, n, now, claimant=c) for e, n, c in senders])
        with transaction(senders[0][0]) as conn:
            if not outbox.backlog(conn):
                return
    raise AssertionError("the outbox did not drain")


def check_timeline(engine: Engine, iid: int) -> None:
    """Every change starts from the state the one before it left: nobody acted on a state that was gone."""
    with transaction(engine) as conn:
        incident = repo.get(conn, iid)
        events = repo.events(conn, iid)
    assert incident is not None
    for before, after in itertools.pairwise(events):
        assert after.from_state == before.to_state, [(e.from_state, e.to_state, e.note) for e in events]
        assert after.level >= before.level
    assert events[-1].to_state == incident.state.value and events[-1].level == incident.level
    assert [e.note for e in events].count("level 2 notified: #reputation-alerts") <= 1


@pytest.mark.slow
def test_a_click_racing_a_tick_on_another_worker_ends_in_one_state(
        engine: Engine, second: Engine, config: EscalationConfig, clock: FakeClock, slack: SlackEmulator) -> None:
    """README "Running several workers": "A button click racing an escalation tick, on one worker or two, is applied
    one after the other".

    200 times: a responder's button (the Slack handler's own code path) on worker A and an escalation tick
    on worker B, at the same moment, on an incident whose level-1 deadline has passed.

    On SQLite (one worker, but a click and a tick still race on two threads of it) 50 times: the
    database's write lock orders them the same way, and the CI budget goes to the PostgreSQL run."""
    reps = 200 if engine.dialect.name == "postgresql" else 50
    clock.set(T0)
    esc_a, esc_b = EscalationEngine(config), EscalationEngine(config)
    slack_a, slack_b = (slack_notifier(slack, engine, config, clock), slack_notifier(slack, second, config, clock))
    handler = BlockActionHandler(engine=engine, escalation=esc_a, client=slack_a.client, directory=slack_a.directory,
                                 clock=clock)
    senders = [(engine, slack_a, "worker-a"), (second, slack_b, "worker-b")]
    orders: Counter[str] = Counter()
    for i in range(1, reps + 1):
        action = list(CARD)[i % 4]
        iid = open_incident(engine, esc_a, i, clock.now())
        deliver_pending(engine, slack_a, clock.now(), claimant="worker-a")  # the card the click comes from
        clock.advance(timedelta(minutes=20))  # level 1's 15 minutes are over: the tick escalates
        now = clock.now()

        def tick(now: datetime = now) -> int:
            with transaction(second) as conn:  # what Pipeline.tick does, on worker B
                return esc_b.tick(conn, now)

        if action == "incident_snooze":  # the card's menu, 4 hours chosen
            with transaction(engine) as conn:
                card_ref = outbox.external_ref(conn, iid)
            assert card_ref is not None
            payload = choose("U0SOFIE01", slack.message(CHANNEL, card_ref.split(":", 1)[1]).blocks, 240)
        else:
            payload = click("U0SOFIE01", action, iid)
        [outcomes, _] = together(lambda payload=payload: handler(payload), tick)
        assert [o.result for o in outcomes] == [ActionResult.APPLIED], (i, action)
        drain(senders, now)

        check_timeline(engine, iid)
        with transaction(engine) as conn:
            incident = repo.get(conn, iid)
            kinds = [str(k) for k in conn.execute(select(outbox_table.c.kind).where(
                outbox_table.c.incident_id == iid).order_by(outbox_table.c.id)).scalars()]
            ref = outbox.external_ref(conn, iid)
        assert incident is not None and incident.state is FINAL[action], (i, action, incident)
        escalated = kinds.count("escalation")
        assert escalated <= 1 and incident.level == 1 + escalated, (i, kinds)
        if action == "incident_snooze":
            assert incident.next_action_at == now + timedelta(hours=4)
        orders["tick first" if escalated else "click first"] += 1
        # The channel shows it: one card for the incident, saying what the click did.
        assert ref is not None
        card = slack.message(CHANNEL, ref.split(":", 1)[1]).block_text()
        assert CARD[action] in card, (i, action, card)
    with transaction(engine) as conn:
        statuses = set(conn.execute(select(outbox_table.c.status)).scalars())
    assert statuses <= {"sent", "superseded"}  # (an older incident's call overtaken by its closing)
    cards = [m for m in slack.messages(CHANNEL) if m.metadata and m.thread_ts is None]
    assert len(cards) == reps  # one card each, none twice
    assert set(orders) <= {"tick first", "click first"} and sum(orders.values()) == reps


def test_two_delivery_loops_send_each_notification_once(
        engine: Engine, second: Engine, config: EscalationConfig, clock: FakeClock, slack: SlackEmulator) -> None:
    """README "Running several workers": "Each one is claimed (a conditional UPDATE) before it is sent, so exactly one
    worker sends it".
    """
    clock.set(T0)
    esc = EscalationEngine(config)
    for i in range(1, 31):
        open_incident(engine, esc, i, clock.now())
    senders = [(engine, slack_notifier(slack, engine, config, clock), "worker-a"),
               (second, slack_notifier(slack, second, config, clock), "worker-b")]
    sent = together(*[lambda e=e, n=n, c=c: deliver_pending(e, n, clock.now(), claimant=c) for e, n, c in senders])
    drain(senders, clock.now())
    cards = [m for m in slack.messages(CHANNEL) if m.metadata and m.thread_ts is None]
    assert sorted(m.metadata["event_payload"]["incident_id"] for m in cards) == list(range(1, 31))
    assert len(slack.ok_calls("chat.postMessage")) == 30  # nobody posted one a second time
    with transaction(engine) as conn:
        rows = conn.execute(select(outbox_table.c.status, outbox_table.c.attempts, outbox_table.c.claimed_by)).all()
    assert [(r.status, r.attempts, r.claimed_by) for r in rows] == [("sent", 1, None)] * 30
    assert sum(sent) <= 30


def test_a_claim_is_taken_once_and_again_when_it_lapses(engine: Engine, second: Engine, clock: FakeClock,
                                                       config: EscalationConfig) -> None:
    now = clock.now()
    open_incident(engine, EscalationEngine(config), 1, now)
    with transaction(engine) as conn:
        [n] = outbox.pending(conn)
    claims = together(*[lambda e=e, w=w: _claim(e, n.id, w, now) for e, w in ((engine, "a"), (second, "b"))])
    assert sorted(claims, key=str) == [0, None]  # one of them has it, with 0 attempts so far
    winner = "a" if claims[0] == 0 else "b"
    loser = "b" if winner == "a" else "a"
    assert _claim(engine, n.id, loser, now + timedelta(minutes=2)) is None  # still held
    assert _claim(engine, n.id, winner, now) == 0  # its own (a restarted worker of the same id)
    assert _claim(engine, n.id, loser, now + outbox.CLAIM_TTL) == 0  # the holder died: taken again
    with transaction(engine) as conn:
        outbox.mark_sent(conn, n.id, now, "C:1")
    assert _claim(second, n.id, winner, now + timedelta(hours=1)) is None  # sent: nothing to claim


def _claim(engine: Engine, notification_id: int, who: str, now: datetime) -> int | None:
    with transaction(engine) as conn:
        claimed = outbox.claim(conn, notification_id, who, now)
        return None if claimed is None else claimed.attempts


class CountingModel:
    """Weights-free, and it remembers every text it was asked to score (from either worker)."""

    name = "counting"
    version = "1"

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> list[SentimentScores]:
        time.sleep(0.005)  # a model takes time: the other worker gets a chance to claim meanwhile
        with self._lock:
            self.seen.extend(texts)
        return [SentimentScores(0.9, 0.05, 0.05) for _ in texts]


def test_two_pipelines_share_a_backlog_and_score_and_detect_each_mention_once(
        engine: Engine, second: Engine, clock: FakeClock) -> None:
    """README "Running several workers": "two workers share a backlog instead of scoring it twice"."""
    settings = Settings(rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml", batch_size=10)
    model = CountingModel()
    pipelines = [build_pipeline(settings, notifier=ConsoleNotifier(io.StringIO()), clock=clock, engine=e,
                                model=model, languages=["en"], worker_id=w)
                 for e, w in ((engine, "worker-a"), (second, "worker-b"))]
    start = clock.now() - timedelta(hours=2)
    posts = [make_mention(i, text=f"Lumora is terrible, complaint {i}", reach=20_000, conversation=f"c{i}",
                          at=start + timedelta(seconds=10 * i)) for i in range(1, 81)]
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", posts, None, clock.now())

    def drain_backlog(pipeline: Any) -> int:
        scored = 0
        while True:
            done = pipeline.classify_pending()
            detected, _, _ = pipeline.detect_pending()
            scored += done
            if not done and not detected:
                return scored

    scored = together(*[lambda p=p: drain_backlog(p) for p in pipelines])
    assert sum(scored) == 80 and all(scored), scored  # shared, not done twice
    assert sorted(Counter(model.seen).values()) == [1] * 80
    with transaction(engine) as conn:
        assert mention_repo.backlog(conn) == (0, 0)
        fired = conn.execute(select(signals.c.mention_ids).where(signals.c.rule == "negative-high-reach")).scalars()
        per_mention = Counter(mid for ids in fired for mid in ids)
        claimed = mention_repo.release_claims_by(conn)
    assert sorted(per_mention.values()) == [1] * 80  # each post through the rules once
    assert claimed == 0  # scoring let every claim go


def test_a_scoring_claim_of_a_dead_worker_lapses(engine: Engine, second: Engine, clock: FakeClock) -> None:
    """README "Running several workers": "A batch claimed by a worker that died is taken again"."""
    now = clock.now()
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", [make_mention(i, text=f"post {i}") for i in range(1, 6)], None, now)
    with transaction(engine) as conn:  # worker A claims three, then dies before scoring them
        held = mention_repo.claim_unscored(conn, 3, worker="a", now=now)
    with transaction(second) as conn:
        rest = mention_repo.claim_unscored(conn, 10, worker="b", now=now)
    assert {r.id for r in held} == {1, 2, 3} and {r.id for r in rest} == {4, 5}
    with transaction(second) as conn:
        assert mention_repo.claim_unscored(conn, 10, worker="c", now=now + timedelta(minutes=1)) == []
        later = mention_repo.claim_unscored(conn, 10, worker="c", now=now + mention_repo.CLAIM_TTL)
    assert {r.id for r in later} == {1, 2, 3, 4, 5}


def test_incident_grouping_is_one_at_a_time(engine: Engine, second: Engine, config: EscalationConfig,
                                            clock: FakeClock) -> None:
    """Two detectors overlapping (a lease hand-over) with the same signal open one incident, not two."""
    now = clock.now()
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", [make_mention(1)], None, now)
    signal = Signal(rule="negative-high-reach", severity=Severity.CRITICAL, brand="Lumora", group_key="c1",
                    reason="r", fired_at=now, mention_ids=(1,))

    def ingest(e: Engine) -> list[int]:
        with transaction(e) as conn:
            return EscalationEngine(config).ingest(conn, [signal], now)

    for _ in range(10):
        opened = together(lambda: ingest(engine), lambda: ingest(second))
        assert sum(len(o) for o in opened) <= 1
    with transaction(engine) as conn:
        assert len(repo.all_incidents(conn)) == 1
        assert list(conn.execute(select(outbox_table.c.kind)).scalars()) == ["alert"]


def test_claim_columns_start_free(engine: Engine) -> None:
    now = datetime(2026, 11, 18, tzinfo=UTC)
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", [make_mention(1)], None, now)
        [row] = mention_repo.claim_unscored(conn, 5, worker="w" * 300, now=now)
        assert row.id == 1
        assert mention_repo.release_claims_by(conn, ["w" * 300]) == 1  # names are cut as they are stored
