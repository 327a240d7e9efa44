"""The backtest groups signals into the incidents the worker would open: same rule, same result.

The live side is the real ``EscalationEngine.ingest`` on a migrated SQLite store;
the backtest side is ``detect.backtest.group_signal``. Hypothesis generates signal
streams (brands, rules, conversations, single posts and volume windows, posts
shared between signals, hours of spread) and both must partition them the same way.
No tick runs, so the worker closes nothing; the streams stay well inside the day
after which the backtest counts an unanswered incident as expired.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select

from monitor.detect.backtest import RuleReport, group_signal
from monitor.detect.engine import RuleEngine
from monitor.detect.schema import Rule
from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.escalation.grouping import Join, SimulatedIncidents, decide
from monitor.models import Severity, Signal
from monitor.store import create_store_engine, migrate, transaction
from monitor.store import mentions as mention_repo
from monitor.store import tables as t
from monitor.yamlconfig import parse
from tests.conftest import ALWAYS_OPEN_ESCALATION, make_mention, scored

T0 = datetime(2026, 11, 18, 6, 0, tzinfo=UTC)
POSTS = 12  # a small pool, so that signals share posts often
WINDOW = timedelta(hours=1)  # ALWAYS_OPEN_ESCALATION's grouping window
ZONE = ZoneInfo("Europe/Brussels")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One migrated SQLite store for every example; each example empties the incident tables."""
    engine = create_store_engine(f"sqlite:///{tmp_path_factory.mktemp('grouping') / 'test.db'}")
    migrate(engine)
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", [make_mention(i, at=T0) for i in range(1, POSTS + 1)], None, T0)
        assert sorted(m.id for m in mention_repo.get_mentions(conn, range(1, POSTS + 1))) == list(
            range(1, POSTS + 1))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def escalation(tmp_path_factory: pytest.TempPathFactory) -> EscalationEngine:
    path = tmp_path_factory.mktemp("grouping-config") / "escalation.yaml"
    path.write_text(ALWAYS_OPEN_ESCALATION, encoding="utf-8")
    config = parse(EscalationConfig, path)
    assert config.grouping.window == WINDOW
    return EscalationEngine(config)


GROUP_BY = {"burst": "brand", "reach": "conversation", "engagement": "source"}  # one per rule, as in a rule file


@st.composite
def signals(draw: st.DrawFn) -> Signal:
    kind = draw(st.sampled_from(["mention", "window"]))
    brand = draw(st.sampled_from(["Lumora", "Velt"]))
    size = 1 if kind == "mention" else draw(st.integers(2, 5))
    ids = draw(st.lists(st.integers(1, POSTS), min_size=size, max_size=size))
    rule = draw(st.sampled_from(["burst", "reach", "engagement"]))
    group = draw(st.sampled_from([brand, f"{brand}:conv1", f"{brand}:conv2"]))
    return Signal(rule=rule, severity=Severity.WARNING, brand=brand, group_key=group, reason=f"{rule} fired",
                  fired_at=T0 + timedelta(minutes=draw(st.integers(0, 12 * 60))), mention_ids=tuple(ids),
                  kind=kind, group_by=GROUP_BY[rule], follow_up=draw(st.sampled_from([False, False, False, True])))


def streams() -> st.SearchStrategy[list[Signal]]:
    return st.lists(signals(), min_size=1, max_size=25).map(lambda s: sorted(s, key=lambda x: x.fired_at))


def _canonical(labels: list[int], members: dict[int, set[int]]) -> tuple[list[int], list[frozenset[int]]]:
    """Relabel incidents by first appearance: (incident of each signal, posts of each incident)."""
    order: dict[int, int] = {}
    for label in labels:
        order.setdefault(label, len(order))
    return [order[x] for x in labels], [frozenset(members[x]) for x in order]


def live(store: Engine, escalation: EscalationEngine, stream: list[Signal]) -> tuple[list[int], list[frozenset[int]]]:
    """(incident of each firing, posts of each incident); follow-ups show only in the posts they add."""
    with transaction(store) as conn:
        for table in (t.outbox, t.incident_events, t.incident_mentions, t.signals, t.incidents):
            conn.execute(delete(table))
    for signal in stream:  # one transaction per signal, as the worker's passes commit
        with transaction(store) as conn:
            escalation.ingest(conn, [signal], signal.fired_at)
    with transaction(store) as conn:
        labels = [int(i) for i in conn.execute(select(t.signals.c.incident_id).order_by(t.signals.c.id)).scalars()]
        members: dict[int, set[int]] = {}
        for incident_id, mention_id in conn.execute(select(t.incident_mentions.c.incident_id,
                                                           t.incident_mentions.c.mention_id)):
            members.setdefault(int(incident_id), set()).add(int(mention_id))
    assert len(labels) == sum(not s.follow_up for s in stream)  # a follow-up is no firing: no signals row
    return _canonical(labels, members)


def simulated(stream: list[Signal]) -> tuple[list[int], list[frozenset[int]]]:
    incidents = SimulatedIncidents()
    reports = {r: RuleReport(r, "warning") for r in ("burst", "reach", "engagement")}
    labels = []
    for s in stream:
        incident = group_signal(s, reports[s.rule], incidents, WINDOW, ZONE)
        if not s.follow_up:
            assert incident is not None
            labels.append(incident.id)
    assert sum(r.incidents for r in reports.values()) == len(incidents.incidents)
    return _canonical(labels, {i.id: i.mention_ids for i in incidents.incidents})


@settings(max_examples=200, deadline=None)
@given(stream=streams())
def test_backtest_and_worker_open_the_same_incidents(store: Engine, escalation: EscalationEngine,
                                                     stream: list[Signal]) -> None:
    assert simulated(stream) == live(store, escalation, stream)


def _signal(minute: float, ids: tuple[int, ...], *, rule: str = "reach", kind: str = "mention",
            group: str = "Lumora", group_by: str = "brand", follow_up: bool = False) -> Signal:
    return Signal(rule=rule, severity=Severity.WARNING, brand="Lumora", group_key=group, reason="r",
                  fired_at=T0 + timedelta(minutes=minute), mention_ids=ids, kind=kind, group_by=group_by,
                  follow_up=follow_up)


def test_posts_spread_over_two_incidents_are_news_to_both(store: Engine, escalation: EscalationEngine) -> None:
    """The rule the backtest used to get wrong: each post held by *some* incident is not a merge."""
    stream = [_signal(0, (1,), group="Lumora:a"), _signal(5, (2,), group="Lumora:b"),
              _signal(10, (1, 2), rule="engagement", group="Lumora:c")]
    expected = ([0, 1, 2], [frozenset({1}), frozenset({2}), frozenset({1, 2})])
    assert simulated(stream) == expected
    assert live(store, escalation, stream) == expected


def test_a_merge_keeps_the_incident_active_for_its_key(store: Engine, escalation: EscalationEngine) -> None:
    """A merged or inhibited signal brings new posts and a newer post time, on both sides."""
    stream = [_signal(0, (1, 2), rule="burst", kind="window"), _signal(50, (3,)),
              _signal(100, (4, 5), rule="burst", kind="window")]
    assert simulated(stream) == ([0, 0, 0], [frozenset({1, 2, 3, 4, 5})])
    assert live(store, escalation, stream) == simulated(stream)


def test_the_backtest_closes_an_unanswered_incident_after_a_quiet_day() -> None:
    incidents = SimulatedIncidents()
    first = incidents.apply(decide(_signal(0, (1,)), incidents, WINDOW), _signal(0, (1,)))
    assert first is not None
    again = _signal(23 * 60, (1,), rule="engagement")
    assert decide(again, incidents, WINDOW).how is Join.MERGED
    late = _signal(24 * 60, (1,), rule="engagement")
    decision = decide(late, incidents, WINDOW)
    joined = incidents.apply(decision, late)
    assert decision.how is Join.NEW and joined is not None and joined.id != first.id


# --- the boundaries of "current", per group_by ---------------------------------------------------------------


def both(store: Engine, escalation: EscalationEngine, stream: list[Signal]) -> tuple[list[int], list[frozenset[int]]]:
    """The partition both sides agree on (asserted), for a test to compare with what a responder expects."""
    result = simulated(stream)
    assert live(store, escalation, stream) == result
    return result


@pytest.mark.parametrize("group_by", ["brand", "source"])
def test_brand_and_source_groups_join_within_the_window_inclusive(store: Engine, escalation: EscalationEngine,
                                                                  group_by: str) -> None:
    at_edge = [_signal(0, (1,), group_by=group_by), _signal(60, (2,), group_by=group_by)]
    assert both(store, escalation, at_edge) == ([0, 0], [frozenset({1, 2})])
    past_edge = [_signal(0, (1,), group_by=group_by), _signal(60 + 1 / 60, (2,), group_by=group_by)]
    assert both(store, escalation, past_edge) == ([0, 1], [frozenset({1}), frozenset({2})])


def test_a_conversation_stays_one_incident_while_it_is_open(store: Engine, escalation: EscalationEngine) -> None:
    """The issue's case: a reply ten hours later, far past the window, while the first is acknowledged."""
    first, reply = (_signal(0, (1,), group="Lumora:t1", group_by="conversation"),
                    _signal(600, (2,), group="Lumora:t1", group_by="conversation"))
    assert both(store, escalation, [first, reply]) == ([0, 0], [frozenset({1, 2})])
    # Live, with the incident acknowledged in between, then resolved: the next post is a new story.
    live(store, escalation, [first])
    with transaction(store) as conn:
        [iid] = conn.execute(select(t.incidents.c.id)).scalars()
        escalation.acknowledge(conn, iid, "sofie", first.fired_at + timedelta(minutes=5))
        escalation.ingest(conn, [reply], reply.fired_at)
        assert set(conn.execute(select(t.incident_mentions.c.mention_id))
                   .scalars()) == {1, 2}
        assert conn.execute(select(t.incidents.c.id)).scalars().all() == [iid]
        escalation.resolve(conn, iid, "sofie", reply.fired_at + timedelta(minutes=5))
        later = _signal(700, (3,), group="Lumora:t1", group_by="conversation")
        escalation.ingest(conn, [later], later.fired_at)
        assert len(conn.execute(select(t.incidents.c.id)).scalars().all()) == 2


def test_another_conversation_is_another_incident(store: Engine, escalation: EscalationEngine) -> None:
    stream = [_signal(0, (1,), group="Lumora:t1", group_by="conversation"),
              _signal(5, (2,), group="Lumora:t2", group_by="conversation")]
    assert both(store, escalation, stream) == ([0, 1], [frozenset({1}), frozenset({2})])


def test_a_follow_up_joins_quietly_and_never_opens(store: Engine, escalation: EscalationEngine) -> None:
    burst = _signal(0, (1, 2, 3), rule="burst", kind="window")
    ninth = _signal(20, (1, 2, 3, 4), rule="burst", kind="window", follow_up=True)
    assert both(store, escalation, [burst, ninth]) == ([0], [frozenset({1, 2, 3, 4})])
    with transaction(store) as conn:
        kinds = conn.execute(select(t.outbox.c.kind)).scalars().all()
        assert "joined" not in kinds and len(conn.execute(select(t.signals.c.id)).all()) == 1
    # Alone, or past the window of a brand-wide incident, a follow-up is dropped: nothing opens.
    alone = [_signal(0, (5,), rule="burst", kind="window", follow_up=True)]
    assert both(store, escalation, alone) == ([], [])
    late = [burst, _signal(61, (4,), rule="burst", kind="window", follow_up=True)]
    assert both(store, escalation, late) == ([0], [frozenset({1, 2, 3})])
    incidents = SimulatedIncidents()
    assert decide(alone[0], incidents, WINDOW).how is Join.DROPPED and incidents.apply(
        decide(alone[0], incidents, WINDOW), alone[0]) is None


def test_a_burst_keeps_collecting_posts_after_it_fires(store: Engine, escalation: EscalationEngine) -> None:
    """Nine negative posts in an hour, the rule fires at eight: the incident shows nine (backtest and worker)."""
    rule = Rule.model_validate({"name": "burst", "severity": "warning", "when": {"negative_above": 0.5},
                                "frequency": {"count": 8, "within": "1h"}, "group_by": "brand", "realert": "3h"})
    posts = [scored(make_mention(i, at=T0 + timedelta(minutes=6 * i)), 0.9) for i in range(1, 10)]
    detector = RuleEngine([rule])
    stream = [s for p in posts for s in detector.process(p, follow_ups=True)]
    assert [s.follow_up for s in stream] == [False, True]
    assert both(store, escalation, stream) == ([0], [frozenset(range(1, 10))])
    plain = RuleEngine([rule])  # without follow_ups a held-back firing stays silent, as before
    assert [len(plain.process(p)) for p in posts] == [0] * 7 + [1, 0] and plain.suppressed["burst"] == 1


def test_a_burst_keeps_every_post_however_its_window_slides() -> None:
    """The backtest indexes only what follows the last window it took (``_beyond_held``): a window that
    slides, one with a late post in the middle, one with posts of elsewhere and a repeat all leave the
    incident holding exactly the union of their posts, each findable by ``holding_all``."""
    incidents = SimulatedIncidents()
    window = timedelta(hours=6)
    streams = [
        _signal(0, (1, 2, 3), rule="burst", kind="window"),
        _signal(1, (1, 2, 3, 4), rule="burst", kind="window", follow_up=True),  # grows
        _signal(2, (2, 3, 4, 5), rule="burst", kind="window", follow_up=True),  # slides
        _signal(3, (3, 9, 4, 5, 6), rule="burst", kind="window", follow_up=True),  # a late post in the middle
        _signal(4, (3, 9, 4, 5, 6), rule="burst", kind="window", follow_up=True),  # the same again
        _signal(5, (40, 41, 6, 7), rule="burst", kind="window", follow_up=True),  # posts of elsewhere first
        _signal(6, (7,), rule="burst", kind="window", follow_up=True),
        _signal(7, (8, 7), rule="burst", kind="window", follow_up=True),  # out of order
    ]
    union: set[int] = set()
    for s in streams:
        incidents.apply(decide(s, incidents, window), s)
        union |= set(s.mention_ids)
        [incident] = incidents.incidents
        assert incident.mention_ids == union
        for mention_id in union:
            assert incidents.holding_all((mention_id,), s.fired_at) is incident
