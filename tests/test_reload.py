"""Configuration edits under a running worker: last good version, once-only reports, open incidents, sources."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.clock import FakeClock
from monitor.detect import RuleReloader, RuleSet
from monitor.escalation import EscalationEngine
from monitor.escalation.schema import load_escalation
from monitor.live_config import RULE, LiveConfig
from monitor.models import IncidentState, Severity, Signal
from monitor.reload import Watched
from monitor.store import config_versions, outbox, transaction
from monitor.store import incidents as repo
from monitor.store import mentions as mention_repo
from monitor.store.tables import incident_events
from monitor.yamlconfig import ConfigInvalid
from tests.conftest import ROOT

PROCEDURE = """
timezone: Europe/Brussels
business_hours: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}
grouping: {window: 1h}
responders:
  sofie: {name: Sofie, slack: U0SOFIE01}
  karim: {name: Karim, slack: U0KARIM01}
  an: {name: An, slack: U0ANCLAE1}
policies:
  - name: critical
    after_hours: page
    levels:
      - {notify: [sofie], channel: "#alerts", ack_within: 30m}
      - {notify: [karim, an], ack_within: 30m}
"""
START = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)


class Setup:
    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine = engine
        self.clock = FakeClock(START)
        self.escalation_file = folder / "escalation.yaml"
        self.escalation_file.write_text(PROCEDURE, encoding="utf-8")
        self.rules_dir = folder / "rules"
        shutil.copytree(ROOT / "rules", self.rules_dir)
        self.escalation = EscalationEngine(load_escalation(self.escalation_file))
        self.rules = RuleReloader(self.rules_dir, now=self.clock.now)
        self.applied: list[RuleSet] = []
        self.live = LiveConfig(engine=engine, escalation=self.escalation, escalation_file=self.escalation_file,
                               rules=self.rules, on_rules=self.applied.append, now=self.clock.now, worker="test:1")

    def edit(self, old: str, new: str) -> None:
        text = self.escalation_file.read_text(encoding="utf-8")
        assert old in text
        self.escalation_file.write_text(text.replace(old, new), encoding="utf-8")

    def open_incident(self) -> int:
        signal = Signal(rule="negative-high-reach", severity=Severity.CRITICAL, brand="Lumora",
                        group_key="Lumora|c1", reason="a negative post", fired_at=self.clock.now(), mention_ids=())
        with transaction(self.engine) as conn:
            (incident_id,) = self.escalation.ingest(conn, [signal], self.clock.now())
        return incident_id

    def tick(self) -> None:
        with transaction(self.engine) as conn:
            self.escalation.tick(conn, self.clock.now())

    def calls(self, incident_id: int) -> list[tuple[str, tuple[str, ...]]]:
        with transaction(self.engine) as conn:
            return [(n.kind, n.recipients) for n in outbox.pending(conn) if n.incident_id == incident_id]


@pytest.fixture
def setup(engine: Engine, tmp_path: Path) -> Setup:
    return Setup(engine, tmp_path)


# --- the last good version ------------------------------------------------------------------------

def test_a_watched_file_keeps_its_last_good_version_and_reports_a_broken_one_once(tmp_path: Path) -> None:
    path = tmp_path / "escalation.yaml"
    path.write_text(PROCEDURE, encoding="utf-8")
    clock = FakeClock(START)
    watched = Watched("escalation", lambda: [path], lambda: load_escalation(path), clock.now)
    first = watched.version.sha256
    assert not watched.refresh().changed  # nothing changed on disk

    path.write_text(PROCEDURE.replace("ack_within: 30m}", "ack_within: 0m}", 1), encoding="utf-8")
    broken = watched.refresh()
    assert broken.invalid is not None and broken.first_report and not broken.changed
    assert f"{path}:13:" in str(broken.invalid) and "must be longer than zero" in str(broken.invalid)
    assert watched.current.policies[0].levels[0].ack_within == timedelta(minutes=30)  # still the good one
    again = watched.refresh()
    assert again.invalid is not None and not again.first_report  # reported once per broken version

    path.write_text(PROCEDURE.replace("ack_within: 30m}", "ack_within: 20m}", 1), encoding="utf-8")
    fixed = watched.refresh()
    assert fixed.changed and watched.error is None and watched.version.sha256 != first
    assert watched.current.policies[0].levels[0].ack_within == timedelta(minutes=20)


def test_rewriting_a_file_with_the_same_bytes_reloads_nothing(tmp_path: Path) -> None:
    reloader = RuleReloader(shutil.copytree(ROOT / "rules", tmp_path / "rules"))
    for path in (tmp_path / "rules").glob("*.yaml"):
        path.write_bytes(path.read_bytes())
    assert not reloader.refresh().changed


# --- escalation.yaml --------------------------------------------------------------------------------

def test_a_valid_edit_takes_effect_and_is_on_the_record(setup: Setup) -> None:
    before = setup.escalation.version
    setup.edit("notify: [karim, an]", "notify: [an]")
    setup.clock.advance(timedelta(minutes=1))
    report = setup.live.run()
    assert report.applied == ["escalation"]
    assert setup.escalation.config.policies[0].levels[1].notify == ["an"]
    assert setup.escalation.version is not None and setup.escalation.version != before
    with transaction(setup.engine) as conn:
        versions = config_versions.history(conn, "escalation")
        assert [v.sha256 for v in versions] == [before, setup.escalation.version]
        assert versions[-1].took_effect_at == setup.clock.now() and "notify: [an]" in versions[-1].content
    incident_id = setup.open_incident()
    with transaction(setup.engine) as conn:
        recorded = conn.execute(select(incident_events.c.config_version)
                                .where(incident_events.c.incident_id == incident_id)).scalars().all()
    assert recorded and set(recorded) == {setup.escalation.version}


def test_an_invalid_edit_keeps_the_procedure_and_alerts_once(setup: Setup) -> None:
    good = setup.escalation.config
    setup.edit("ack_within: 30m}\n      - {notify: [karim, an]", "ack_within: 30m}\n      - {notify: [karim, nobody]")
    report = setup.live.run()
    assert report.invalid == ["escalation"] and setup.escalation.config is good
    setup.clock.advance(timedelta(minutes=5))
    assert setup.live.run().invalid == ["escalation"]  # still broken, not reported again
    with transaction(setup.engine) as conn:
        alerts = [i for i in repo.all_incidents(conn) if i.rule == RULE]
        assert len(alerts) == 1
        assert "escalation.yaml is invalid since" in alerts[0].reason
        assert "unknown responder 'nobody'" in alerts[0].reason
        assert "keeps the version of" in alerts[0].reason
    (state,) = [s for s in setup.live.states() if s.kind == "escalation"]
    assert state.errors and "escalation.yaml:14:" in state.errors[0]


def test_the_alert_about_a_broken_file_reads_in_the_procedures_language(setup: Setup) -> None:
    """Issue 30: a Dutch team's alert names the problem in Dutch, the file, line and names as written."""
    setup.edit("timezone: Europe/Brussels", "timezone: Europe/Brussels\nlocale: nl_BE")
    setup.clock.advance(timedelta(minutes=1))
    assert setup.live.run().applied == ["escalation"]
    setup.edit("ack_within: 30m}\n      - {notify: [karim, an]", "ack_within: 30m}\n      - {notify: [karim, nobody]")
    setup.clock.advance(timedelta(minutes=1))
    assert setup.live.run().invalid == ["escalation"]
    with transaction(setup.engine) as conn:
        (alert,) = [i for i in repo.all_incidents(conn) if i.rule == RULE]
    assert "escalation.yaml:15:" in alert.reason
    assert "niveau 2 noemt onbekende responder 'nobody' (gekende responders: an, karim, sofie)" in alert.reason
    assert "unknown responder" not in alert.reason
    (state,) = [s for s in setup.live.states() if s.kind == "escalation"]
    assert "unknown responder 'nobody'" in state.errors[0]  # /healthz stays English


def test_an_open_incident_keeps_its_notified_levels_and_follows_the_new_procedure(setup: Setup) -> None:
    incident_id = setup.open_incident()  # level 1 (sofie) notified at 10:00, deadline 10:30
    setup.clock.advance(timedelta(minutes=10))
    setup.edit("notify: [karim, an]", "notify: [an]")  # karim leaves level 2
    setup.live.run()
    setup.clock.advance(timedelta(minutes=25))  # 10:35: level 1's window is over
    setup.tick()
    calls = setup.calls(incident_id)
    assert calls == [("alert", ("sofie",)), ("escalation", ("an",))]  # sofie not called again, karim never


def test_a_shortened_window_that_has_already_ended_calls_the_next_level_at_once(setup: Setup) -> None:
    incident_id = setup.open_incident()
    setup.clock.advance(timedelta(minutes=20))
    setup.edit("ack_within: 30m}\n      - {notify: [karim, an]", "ack_within: 15m}\n      - {notify: [karim, an]")
    setup.live.run()
    with transaction(setup.engine) as conn:
        row = repo.get(conn, incident_id)
        assert row is not None and row.next_action_at == setup.clock.now()  # 10:15 is past: now, never earlier
        notes = [e.note or "" for e in repo.events(conn, incident_id)]
    assert any("deadline moved to now" in n for n in notes)
    setup.tick()
    assert setup.calls(incident_id)[-1] == ("escalation", ("karim", "an"))


def test_a_longer_window_moves_the_deadline_later(setup: Setup) -> None:
    incident_id = setup.open_incident()
    setup.edit("ack_within: 30m}\n      - {notify: [karim, an]", "ack_within: 2h}\n      - {notify: [karim, an]")
    setup.live.run()
    with transaction(setup.engine) as conn:
        row = repo.get(conn, incident_id)
    assert row is not None and row.next_action_at == START + timedelta(hours=2)
    setup.clock.advance(timedelta(minutes=45))
    setup.tick()
    assert setup.calls(incident_id) == [("alert", ("sofie",))]  # no escalation at the old deadline


def test_monitor_reload_reaches_the_worker_through_the_store(setup: Setup, db_url: str,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="monitor")
    setup.edit("notify: [karim, an]", "notify: [karim, nobody]")
    setup.live.run()  # reported (and alerted) once
    setup.live.run()
    assert caplog.text.count("escalation changed but is invalid") == 1
    monkeypatch.setenv("MONITOR_DB_URL", db_url)
    result = CliRunner().invoke(app, ["reload"])
    assert result.exit_code == 0, result.output
    assert "reload #1 requested" in result.output
    setup.live.run()  # the request: re-validated, and the operator is told again why nothing changed
    setup.live.run()
    assert caplog.text.count("escalation changed but is invalid") == 2
    assert "reload requested through the store" in caplog.text
    with transaction(setup.engine) as conn:
        assert len([i for i in repo.all_incidents(conn) if i.rule == RULE]) == 1  # alerted once all the same


def test_monitor_check_says_what_an_edit_changes_against_the_version_in_force(
        setup: Setup, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_DB_URL", db_url)
    setup.edit("notify: [karim, an]", "notify: [an]")
    (setup.rules_dir / "reach.yaml").unlink()
    result = CliRunner().invoke(app, ["check", "--escalation", str(setup.escalation_file), "--rules",
                                      str(setup.rules_dir), "--config", str(ROOT / "monitor.yaml")])
    assert result.exit_code == 0, result.output
    assert f"in force: {setup.escalation_file}: level 2 of policy critical: karim, an → an" in result.output
    assert "rule negative-high-reach: removed" in result.output


def test_check_without_a_store_validates_the_files_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_DB_URL", f"sqlite:///{tmp_path / 'none.db'}")
    result = CliRunner().invoke(app, ["check", "--escalation", str(ROOT / "escalation.yaml"), "--rules",
                                      str(ROOT / "rules"), "--config", str(ROOT / "monitor.yaml")])
    assert result.exit_code == 0, result.output
    assert "in force:" not in result.output and not (tmp_path / "none.db").exists()


# --- rules and monitor.yaml -------------------------------------------------------------------------

def test_a_valid_rule_edit_reaches_the_rule_engine_and_a_broken_one_does_not(setup: Setup) -> None:
    reach = setup.rules_dir / "reach.yaml"
    reach.write_text(reach.read_text(encoding="utf-8").replace("reach_at_least: 10000", "reach_at_least: 5000"),
                     encoding="utf-8")
    assert setup.live.run().applied == ["rules"]
    assert len(setup.applied) == 1
    (rule,) = [r for r in setup.applied[0].rules if r.name == "negative-high-reach"]
    assert rule.when.reach_at_least == 5000
    reach.write_text("rules: [", encoding="utf-8")
    assert setup.live.run().invalid == ["rules"] and len(setup.applied) == 1


COLLECT = """
brands:
  Lumora:
    feeds:
      - {name: VRT, url: "http://127.0.0.1:9/vrt.xml"}
      - {name: Standaard, url: "http://127.0.0.1:9/ds.xml"}
"""


def test_sources_come_and_go_with_monitor_yaml_and_keep_their_cursors(db_url: str, tmp_path: Path) -> None:
    from monitor.app import build_worker, plan_sources
    from monitor.settings import Settings

    collect = tmp_path / "monitor.yaml"
    collect.write_text(COLLECT, encoding="utf-8")
    escalation = tmp_path / "escalation.yaml"
    escalation.write_text(PROCEDURE, encoding="utf-8")
    settings = Settings(db_url=db_url, rules_dir=ROOT / "rules", escalation_file=escalation, metrics_port=0)
    clock = FakeClock(START)
    plan = plan_sources(settings, collect_file=collect, collect_named=True)

    class NoModel:
        name, version = "none", "0"

        def predict(self, texts: list[str]) -> list[object]:
            raise AssertionError("nothing is scored here")

    assembled = build_worker(settings, clock, sources=plan, model=NoModel())  # type: ignore[arg-type]
    live = assembled.live_config
    assert live is not None
    names = lambda: sorted(s.name for s in assembled.worker.sources)  # noqa: E731
    assert names() == ["news:Lumora:Standaard", "news:Lumora:VRT"]
    with transaction(assembled.engine) as conn:
        mention_repo.set_cursor(conn, "news:Lumora:VRT", '{"seen": ["a"]}', START)
        mention_repo.set_cursor(conn, "news:Lumora:Standaard", '{"seen": ["b"]}', START)

    collect.write_text(COLLECT.replace('      - {name: VRT, url: "http://127.0.0.1:9/vrt.xml"}\n', ""),
                       encoding="utf-8")
    assert live.run().applied == ["collect"]
    assert names() == ["news:Lumora:Standaard"]
    assert [s.name for s in assembled.pipeline.watched_sources] == ["news:Lumora:Standaard"]

    collect.write_text(COLLECT.replace("ds.xml", "ds-new.xml"), encoding="utf-8")  # VRT back, Standaard moved
    assert live.run().applied == ["collect"]
    assert names() == ["news:Lumora:Standaard", "news:Lumora:VRT"]
    with transaction(assembled.engine) as conn:
        assert mention_repo.get_cursor(conn, "news:Lumora:VRT") == '{"seen": ["a"]}'  # continues
        assert mention_repo.get_cursor(conn, "news:Lumora:Standaard") is None  # new address, new cursor
    assembled.engine.dispose()


def test_an_incident_records_the_procedure_that_decided_it_in_its_notifications(setup: Setup) -> None:
    incident_id = setup.open_incident()
    with transaction(setup.engine) as conn:
        from monitor.store.tables import outbox as outbox_table

        versions = conn.execute(select(outbox_table.c.config_version)
                                .where(outbox_table.c.incident_id == incident_id)).scalars().all()
    assert versions == [setup.escalation.version]
    with transaction(setup.engine) as conn:
        assert repo.get(conn, incident_id) is not None
        assert repo.get(conn, incident_id).state is IncidentState.NOTIFIED  # type: ignore[union-attr]


def test_config_invalid_at_start_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "escalation.yaml"
    path.write_text("responders: {}\n", encoding="utf-8")
    with pytest.raises(ConfigInvalid):
        Watched("escalation", lambda: [path], lambda: load_escalation(path), lambda: START)


def test_healthz_shows_a_broken_file_and_stays_200(setup: Setup) -> None:
    from monitor.ops import HealthCheck, Metrics

    metrics = Metrics(clock=setup.clock.now, process_metrics=False)
    health = HealthCheck(metrics, config=setup.live.states)
    assert health.check().body["configuration"]["escalation"]["valid"] is True
    setup.edit("notify: [karim, an]", "notify: [karim, nobody]")
    setup.live.run()
    report = health.check()
    escalation = report.body["configuration"]["escalation"]
    assert report.status == 200  # a restart would not start at all; the last good version runs
    assert escalation["valid"] is False and "unknown responder 'nobody'" in escalation["errors"][0]
    assert report.body["status"] == "degraded"
    assert f"escalation on disk is invalid; running on version {escalation['version']}" in report.body["problems"]
