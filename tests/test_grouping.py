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
from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.escalation.grouping import Join, SimulatedIncidents, decide
from monitor.models import Severity, Signal
from monitor.store import create_store_engine, migrate, transaction
from monitor.store import mentions as mention_repo
from monitor.store import tables as t
from monitor.yamlconfig import parse
from tests.conftest import ALWAYS_OPEN_ESCALATION, make_mention

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
                  kind=kind)


def streams() -> st.SearchStrategy[list[Signal]]:
    return st.lists(signals(), min_size=1, max_size=25).map(lambda s: sorted(s, key=lambda x: x.fired_at))


def _canonical(labels: list[int], members: dict[int, set[int]]) -> tuple[list[int], list[frozenset[int]]]:
    """Relabel incidents by first appearance: (incident of each signal, posts of each incident)."""
    order: dict[int, int] = {}
    for label in labels:
        order.setdefault(label, len(order))
    return [order[x] for x in labels], [frozenset(members[x]) for x in order]


def live(store: Engine, escalation: EscalationEngine, stream: list[Signal]) -> tuple[list[int], list[frozenset[int]]]:
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
    assert len(labels) == len(stream)
    return _canonical(labels, members)


def simulated(stream: list[Signal]) -> tuple[list[int], list[frozenset[int]]]:
    incidents = SimulatedIncidents()
    reports = {r: RuleReport(r, "warning") for r in ("burst", "reach", "engagement")}
    labels = [group_signal(s, reports[s.rule], incidents, WINDOW, ZONE).id for s in stream]
    assert sum(r.incidents for r in reports.values()) == len(incidents.incidents)
    return _canonical(labels, {i.id: i.mention_ids for i in incidents.incidents})


@settings(max_examples=200, deadline=None)
@given(stream=streams())
def test_backtest_and_worker_open_the_same_incidents(store: Engine, escalation: EscalationEngine,
                                                     stream: list[Signal]) -> None:
    assert simulated(stream) == live(store, escalation, stream)


def _signal(minute: int, ids: tuple[int, ...], *, rule: str = "reach", kind: str = "mention",
            group: str = "Lumora") -> Signal:
    return Signal(rule=rule, severity=Severity.WARNING, brand="Lumora", group_key=group, reason="r",
                  fired_at=T0 + timedelta(minutes=minute), mention_ids=ids, kind=kind)


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
    again = _signal(23 * 60, (1,), rule="engagement")
    assert decide(again, incidents, WINDOW).how is Join.MERGED
    late = _signal(24 * 60, (1,), rule="engagement")
    decision = decide(late, incidents, WINDOW)
    assert decision.how is Join.NEW and incidents.apply(decision, late).id != first.id
