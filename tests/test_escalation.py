"""Escalation with a fake clock: levels, acknowledgement, business hours, DST, grouping, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from monitor.escalation import ActionResult, EscalationConfig, EscalationEngine
from monitor.escalation.plan import plan
from monitor.models import Incident, IncidentState, Severity, Signal
from monitor.store import incidents as repo
from monitor.store import mentions as mention_repo
from monitor.store import outbox, transaction
from monitor.yamlconfig import ConfigInvalid, parse
from tests.conftest import ROOT, make_mention

CONFIG = """
timezone: Europe/Brussels
business_hours: {days: [mon, tue, wed, thu, fri], start: "08:00", end: "20:00", holidays: [2026-12-25]}
grouping: {window: 6h}
responders:
  sofie: {name: Sofie, slack: U0SOFIE01}
  karim: {name: Karim, email: karim@example.com}
  oncall: {name: On call, slack: U0ONCALL1, role: on_call}
policies:
  - name: critical
    match: {severity: [critical]}
    after_hours: page
    on_call: [oncall]
    levels:
      - {notify: [sofie], channel: "#alerts", ack_within: 15m}
      - {notify: [karim], ack_within: 30m}
  - name: normal
    after_hours: wait
    levels:
      - {notify: [sofie], ack_within: 1h}
      - {notify: [karim], ack_within: 1h}
guidelines:
  - holding_statement: We are looking into it.
    who_may_answer: Sofie
"""


@pytest.fixture
def config(tmp_path: Path) -> EscalationConfig:
    path = tmp_path / "escalation.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return parse(EscalationConfig, path)


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo("Europe/Brussels")).astimezone(UTC)


def signal(at: datetime, severity: Severity = Severity.CRITICAL, rule: str = "burst", kind: str = "mention",
           ids: tuple[int, ...] = (1,)) -> Signal:
    return Signal(rule=rule, severity=severity, brand="Lumora", group_key="Lumora", reason="test reason",
                  fired_at=at, mention_ids=ids, kind=kind)


def seed_mentions(engine: Engine, n: int, at: datetime) -> None:
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "x", [make_mention(i, at=at) for i in range(1, n + 1)], None, at)


def queued(engine: Engine) -> list[tuple[str, tuple[str, ...]]]:
    with transaction(engine) as conn:
        return [(n.kind, n.recipients) for n in outbox.pending(conn, 1000)]


def state(engine: Engine, incident_id: int) -> Incident:
    with transaction(engine) as conn:
        row = repo.get(conn, incident_id)
    assert row is not None
    return row


def ingest(engine: Engine, esc: EscalationEngine, sig: Signal, now: datetime) -> list[int]:
    with transaction(engine) as conn:
        return esc.ingest(conn, [sig], now)


def tick(engine: Engine, esc: EscalationEngine, now: datetime) -> int:
    with transaction(engine) as conn:
        return esc.tick(conn, now)


def test_unacknowledged_alert_escalates_after_the_timeout(engine: Engine, config: EscalationConfig) -> None:
    esc = EscalationEngine(config)
    t = local(2026, 11, 18, 10)
    seed_mentions(engine, 1, t)
    [iid] = ingest(engine, esc, signal(t), t)
    assert queued(engine) == [("alert", ("sofie",))]
    assert state(engine, iid).next_action_at == t + timedelta(minutes=15)
    assert tick(engine, esc, t + timedelta(minutes=14, seconds=59)) == 0
    assert tick(engine, esc, t + timedelta(minutes=15)) == 1
    assert queued(engine)[-1] == ("escalation", ("karim",))
    assert state(engine, iid).level == 2
    # Past the last level nothing more is sent; the incident waits for a human...
    tick(engine, esc, t + timedelta(hours=5))
    assert len(queued(engine)) == 2 and state(engine, iid).state is IncidentState.NOTIFIED
    # ...until a day without new posts marks it expired (nobody answered), telling those who were called.
    tick(engine, esc, t + timedelta(days=1))
    assert state(engine, iid).state is IncidentState.EXPIRED
    assert queued(engine)[-1] == ("expired", ("karim", "sofie"))


def test_acknowledgement_stops_escalation(engine: Engine, config: EscalationConfig) -> None:
    esc = EscalationEngine(config)
    t = local(2026, 11, 18, 10)
    seed_mentions(engine, 1, t)
    [iid] = ingest(engine, esc, signal(t), t)
    with transaction(engine) as conn:
        assert esc.acknowledge(conn, iid, "sofie", t + timedelta(minutes=5)) is ActionResult.APPLIED
        assert esc.acknowledge(conn, iid, "sofie", t + timedelta(minutes=6)) is ActionResult.ALREADY
    tick(engine, esc, t + timedelta(hours=3))
    assert [k for k, _ in queued(engine)] == ["alert", "acknowledged"]
    with transaction(engine) as conn:
        assert esc.resolve(conn, iid, "sofie", t + timedelta(hours=4), note="answered") is ActionResult.APPLIED
        assert esc.resolve(conn, iid, "karim", t + timedelta(hours=5)) is ActionResult.ALREADY
        history = [(e.from_state, e.to_state, e.actor) for e in repo.events(conn, iid)]
    assert history[-2:] == [("notified", "acknowledged", "sofie"), ("acknowledged", "resolved", "sofie")]
    assert queued(engine)[-1] == ("resolved", ("sofie",))  # everyone who was called hears it is over


def test_warning_after_hours_waits_for_the_morning(engine: Engine, config: EscalationConfig) -> None:
    esc = EscalationEngine(config)
    t = local(2026, 11, 18, 22, 30)  # Wednesday night
    seed_mentions(engine, 1, t)
    [iid] = ingest(engine, esc, signal(t, Severity.WARNING), t)
    assert queued(engine) == []
    assert state(engine, iid).next_action_at == local(2026, 11, 19, 8)
    assert tick(engine, esc, local(2026, 11, 19, 7, 59)) == 0
    tick(engine, esc, local(2026, 11, 19, 8))
    assert queued(engine) == [("alert", ("sofie",))]


def test_critical_pages_on_call_at_once_at_night(engine: Engine, config: EscalationConfig) -> None:
    esc = EscalationEngine(config)
    t = local(2026, 11, 18, 21, 40)
    seed_mentions(engine, 1, t)
    ingest(engine, esc, signal(t), t)
    assert queued(engine) == [("alert", ("oncall",))]


def test_weekend_and_holiday_are_skipped(config: EscalationConfig) -> None:
    _, steps = plan(config, Severity.WARNING, "Lumora", "r", local(2026, 12, 24, 19, 30))
    # Thursday 24 Dec 19:30 with 1 h to acknowledge: 30 min that evening, then Friday 25th (a holiday)
    # and the weekend pass, so level 1 times out on Monday 28th at 08:30.
    assert steps[0].at == local(2026, 12, 24, 19, 30)
    assert steps[0].ack_deadline == local(2026, 12, 28, 8, 30)


@pytest.mark.parametrize(
    ("start", "first", "deadline"),
    [
        # Friday evening before the spring change (Sun 29 March 2026): Monday 08:00 is CEST (06:00 UTC).
        (local(2026, 3, 27, 21), local(2026, 3, 30, 8), local(2026, 3, 30, 9)),
        # Friday evening before the autumn change (Sun 25 October 2026): Monday 08:00 is CET (07:00 UTC).
        (local(2026, 10, 23, 21), local(2026, 10, 26, 8), local(2026, 10, 26, 9)),
        # Business time carried over the DST weekend: 30 min on Friday, 30 on Monday.
        (local(2026, 3, 27, 19, 30), local(2026, 3, 27, 19, 30), local(2026, 3, 30, 8, 30)),
    ],
)
def test_dst_weekends_in_brussels(config: EscalationConfig, start: datetime, first: datetime,
                                  deadline: datetime) -> None:
    _, steps = plan(config, Severity.WARNING, "Lumora", "r", start)
    assert (steps[0].at, steps[0].ack_deadline) == (first, deadline)
    assert first.astimezone(config.zone).hour in (8, 19)


def test_paging_deadline_across_the_spring_gap_is_real_time(config: EscalationConfig) -> None:
    t = datetime(2026, 3, 29, 0, 50, tzinfo=UTC)  # 01:50 CET; at 02:00 clocks jump to 03:00
    _, steps = plan(config, Severity.CRITICAL, "Lumora", "r", t)
    assert steps[0].ack_deadline - t == timedelta(minutes=15)
    assert steps[0].ack_deadline.astimezone(config.zone).strftime("%H:%M") == "03:05"
    t = datetime(2026, 10, 25, 0, 50, tzinfo=UTC)  # 02:50 CEST; at 03:00 clocks go back to 02:00
    _, steps = plan(config, Severity.CRITICAL, "Lumora", "r", t)
    assert steps[1].ack_deadline - steps[0].at == timedelta(minutes=45)


def test_a_burst_becomes_one_incident(engine: Engine, config: EscalationConfig) -> None:
    esc = EscalationEngine(config)
    t = local(2026, 11, 19, 18)
    seed_mentions(engine, 5, t)
    opened = []
    for i in range(1, 6):
        opened += ingest(engine, esc, signal(t + timedelta(minutes=i), ids=(i,)), t + timedelta(minutes=i))
    assert len(opened) == 1
    with transaction(engine) as conn:
        assert repo.mention_ids(conn, opened[0]) == [1, 2, 3, 4, 5]
    kinds = [k for k, _ in queued(engine)]
    assert kinds.count("alert") == 1 and kinds.count("joined") == 4


def test_after_the_grouping_window_a_new_incident_opens(engine: Engine, config: EscalationConfig) -> None:
    esc = EscalationEngine(config)
    t = local(2026, 11, 19, 10)
    seed_mentions(engine, 2, t)
    assert ingest(engine, esc, signal(t, ids=(1,)), t)
    later = t + timedelta(hours=6, minutes=1)
    assert ingest(engine, esc, signal(later, ids=(2,)), later)


def test_open_volume_incident_inhibits_single_post_alerts(engine: Engine, config: EscalationConfig) -> None:
    esc = EscalationEngine(config)
    t = local(2026, 11, 19, 18)
    seed_mentions(engine, 3, t)
    [spike] = ingest(engine, esc, signal(t, rule="negative-burst", kind="window", ids=(1, 2)), t)
    assert ingest(engine, esc, signal(t, rule="negative-high-reach", ids=(3,)), t) == []
    with transaction(engine) as conn:
        assert 3 in repo.mention_ids(conn, spike)
    assert [k for k, _ in queued(engine)].count("alert") == 1


def test_restart_between_deadlines_continues_exactly(engine: Engine, config: EscalationConfig) -> None:
    t = local(2026, 11, 18, 10)
    seed_mentions(engine, 1, t)
    [iid] = ingest(engine, EscalationEngine(config), signal(t), t)
    # A new engine object (a restarted process) sees the stored deadline and acts once.
    for _ in range(3):
        tick(engine, EscalationEngine(config), t + timedelta(minutes=20))
    assert [k for k, _ in queued(engine)] == ["alert", "escalation"]
    assert state(engine, iid).next_action_at == t + timedelta(minutes=50)


def test_shipped_escalation_file_is_valid() -> None:
    config = parse(EscalationConfig, ROOT / "escalation.yaml")
    assert config.policy_for(Severity.CRITICAL, "Lumora", "x").name == "critical"
    assert config.guideline_for(Severity.CRITICAL, "Lumora", "x") is not None


def test_unknown_responder_is_reported_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(CONFIG.replace("notify: [karim]", "notify: [karin]"), encoding="utf-8")
    with pytest.raises(ConfigInvalid, match="unknown responder 'karin'"):
        parse(EscalationConfig, path)


def test_state_values_are_the_documented_ones() -> None:
    assert {s.value for s in IncidentState} == {"open", "notified", "acknowledged", "resolved", "false_positive",
                                                "expired"}


def run_cli(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from monitor.cli import app

    result = CliRunner().invoke(app, ["escalation", "test", "--escalation", str(ROOT / "escalation.yaml"), *args])
    return result.exit_code, result.output


def test_routing_assertions_hold_for_the_shipped_procedure() -> None:
    code, out = run_cli("--severity", "critical", "--brand", "Lumora", "--at", "2026-11-18 21:40",
                        "--expect", "1=oncall", "--expect", "2=karim,an")
    assert code == 0, out
    assert "1. Wed 18 Nov 21:40  level 1 → On-call communications (oncall)" in out
    code, out = run_cli("--severity", "warning", "--at", "2026-11-20 22:00", "--expect-first-at", "2026-11-23 08:00")
    assert code == 0, out


def test_a_failed_routing_assertion_exits_non_zero() -> None:
    code, out = run_cli("--severity", "critical", "--at", "2026-11-18 10:00", "--expect", "1=oncall")
    assert code == 1
    assert "FAIL: level 1: expected ['oncall'], got ['sofie']" in out


def test_a_second_rule_on_the_same_post_does_not_page_again(engine: Engine, config: EscalationConfig) -> None:
    esc = EscalationEngine(config)
    t = local(2026, 11, 18, 21, 40)
    seed_mentions(engine, 1, t)
    assert ingest(engine, esc, signal(t, rule="negative-high-reach", ids=(1,)), t)
    assert ingest(engine, esc, signal(t, Severity.WARNING, rule="negative-engagement", ids=(1,)), t) == []
    assert [k for k, _ in queued(engine)] == ["alert"]


def test_inhibition_ends_when_the_volume_incident_goes_quiet(engine: Engine, config: EscalationConfig) -> None:
    esc = EscalationEngine(config)
    t = local(2026, 11, 19, 18)
    seed_mentions(engine, 3, t)
    ingest(engine, esc, signal(t, rule="negative-burst", kind="window", ids=(1, 2)), t)
    later = t + timedelta(hours=7)  # past the 6 h grouping window: the storm is over
    assert ingest(engine, esc, signal(later, rule="negative-high-reach", ids=(3,)), later)


def test_silences_mute_brand_rule_or_author_until_they_end(engine: Engine, config: EscalationConfig) -> None:
    from monitor.store import silences

    esc = EscalationEngine(config)
    t = local(2026, 11, 18, 10)
    seed_mentions(engine, 3, t)
    with transaction(engine) as conn:
        silences.add(conn, brand=None, rule=None, author="@USER1", starts_at=t, ends_at=t + timedelta(hours=1),
                     reason="known troll", created_by="an")
        silences.add(conn, brand="Lumora", rule="burst", author=None, starts_at=t, ends_at=t + timedelta(hours=2),
                     reason="maintenance announced", created_by="sofie")
    assert ingest(engine, esc, signal(t, rule="reach", ids=(1,)), t) == []  # author user1 is muted
    assert ingest(engine, esc, signal(t, rule="burst", ids=(2,)), t) == []  # brand + rule muted
    assert ingest(engine, esc, signal(t, rule="reach", ids=(2,)), t)  # another rule, another author: pages
    later = t + timedelta(hours=2)
    assert ingest(engine, esc, signal(later, rule="burst", ids=(3,)), later)  # the silence has ended
    with transaction(engine) as conn, pytest.raises(ValueError, match="needs a brand, a rule or an author"):
        silences.add(conn, brand=None, rule=None, author=None, starts_at=t, ends_at=later, reason="x",
                     created_by="y")


def test_silence_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    monkeypatch.setenv("MONITOR_DB_URL", f"sqlite:///{tmp_path / 's.db'}")
    runner = CliRunner()
    result = runner.invoke(app, ["silence", "add", "--brand", "Lumora", "--for", "2h", "--reason", "storm handled",
                                 "--by", "an"])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["silence", "list"]).output
    assert "#1 [active] brand Lumora" in listed and "storm handled (by an)" in listed
    assert runner.invoke(app, ["silence", "remove", "1", "--by", "els"]).exit_code == 0
    assert runner.invoke(app, ["silence", "add", "--reason", "x", "--by", "y", "--for", "1h"]).exit_code == 1
    # On the record like the console's (the console's audit page lists these rows)
    from monitor.store import audit, create_store_engine

    store = create_store_engine(f"sqlite:///{tmp_path / 's.db'}")
    with store.connect() as conn:
        rows = [(r.actor, r.channel, r.action, r.detail) for r in reversed(audit.recent(conn))]
    store.dispose()
    assert [r[:3] for r in rows] == [("an", "cli", "silence-add"), ("els", "cli", "silence-expire")]
    assert rows[0][3] is not None and rows[0][3].startswith("#1 brand Lumora until ") and "storm handled" in rows[0][3]
    assert rows[1][3] == "#1"


def test_reminders_while_acknowledged_then_auto_resolve_when_quiet(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(CONFIG.replace("    on_call: [oncall]\n", "    on_call: [oncall]\n    remind_every: 2h\n"
                                   "    auto_resolve_after: 5h\n"), encoding="utf-8")
    esc = EscalationEngine(parse(EscalationConfig, path))
    t = local(2026, 11, 18, 10)
    seed_mentions(engine, 1, t)
    [iid] = ingest(engine, esc, signal(t), t)
    with transaction(engine) as conn:
        esc.acknowledge(conn, iid, "sofie", t + timedelta(minutes=5))
    for hours in (1, 2, 3, 4, 5, 6):
        tick(engine, esc, t + timedelta(minutes=5, hours=hours))
    kinds = [k for k, _ in queued(engine)]
    assert kinds == ["alert", "acknowledged", "reminder", "reminder", "resolved"]
    assert state(engine, iid).state is IncidentState.RESOLVED
