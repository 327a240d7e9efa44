"""Operations: Prometheus metrics after a real pipeline pass, /healthz, and JSON log lines without secrets."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from monitor.app import SourcePlan, build_pipeline, build_worker
from monitor.clock import FakeClock
from monitor.models import SentimentScores
from monitor.notify import ConsoleNotifier
from monitor.ops import HealthCheck, Metrics, MetricsServer, setup_logging, start_metrics_server
from monitor.ops.logging import wants_json
from monitor.pipeline import Pipeline
from monitor.redact import remember_secret
from monitor.settings import Settings
from monitor.sources import ReplaySource
from tests.conftest import ROOT

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Brussels: business hours
TOKEN = "xoxb-ops-secret-31337"
PLAIN_SECRET = "plain-secret-value-99"  # no pattern knows it: only remember_secret does


SETTINGS = Settings(db_url="sqlite://", rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml")


class Stub:
    """A sentiment model that needs no weights: 'terrible' is negative, anything else positive."""

    name = "stub"
    version = "1"

    def predict(self, texts: Sequence[str]) -> list[SentimentScores]:
        return [SentimentScores(0.95, 0.03, 0.02) if "terrible" in t else SentimentScores(0.02, 0.08, 0.9)
                for t in texts]


class Broken:
    name = "x:Broken"

    def poll(self, cursor: str | None) -> Any:
        raise ConnectionError("api.twitter.com refused the connection")


def feed(tmp_path: Path) -> Path:
    rows = [
        {"source": "x", "source_id": "1", "brand": "Lumora", "text": "Lumora is terrible, no power all day",
         "created_at": "2026-11-18T08:50:00Z", "author_handle": "loud_one", "author_reach": 50_000,
         "language": "en"},
        {"source": "x", "source_id": "2", "brand": "Lumora", "text": "Lumora answered quickly, thanks",
         "created_at": "2026-11-18T08:55:00Z", "author_handle": "happy", "author_reach": 20, "language": "en"},
    ]
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def metrics(clock: FakeClock) -> Metrics:
    return Metrics(clock=clock.now)


@pytest.fixture
def pipeline(engine: Engine, clock: FakeClock, metrics: Metrics) -> Pipeline:
    metrics.watch_store(engine, unhealthy_after=timedelta(minutes=1))
    return build_pipeline(SETTINGS, notifier=ConsoleNotifier(io.StringIO()), clock=clock, engine=engine,
                          model=Stub(), metrics=metrics)


@pytest.fixture
def served(pipeline: Pipeline, metrics: Metrics) -> Iterator[tuple[MetricsServer, Metrics]]:
    server = MetricsServer(metrics, port=0, health=HealthCheck(metrics, pass_interval=timedelta(seconds=15))).start()
    yield server, metrics
    server.stop()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(exposition: str, name: str) -> float:
    """The value of one sample line (``name`` includes its labels, as Prometheus prints them)."""
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exposed")


def test_metrics_after_a_pipeline_pass(served: tuple[MetricsServer, Metrics], pipeline: Pipeline,
                                       clock: FakeClock, tmp_path: Path) -> None:
    server, _ = served
    assert server.url.startswith("http://127.0.0.1:")  # loopback unless told otherwise
    pipeline.poll(ReplaySource(feed(tmp_path), name="replay"))
    pipeline.poll(Broken())
    stats = pipeline.run_pass()
    assert stats.delivered >= 1
    clock.advance(timedelta(minutes=2))  # the broken source is now failing for longer than allowed

    status, text = get(server.url + "/metrics")
    assert status == 200
    assert sample(text, 'monitor_mentions_polled_total{source="replay"}') == 2
    assert sample(text, 'monitor_mentions_stored_total{source="replay"}') == 2
    assert sample(text, 'monitor_poll_errors_total{source="x:Broken"}') == 1
    assert sample(text, "monitor_classification_seconds_count") == 1
    assert sample(text, "monitor_mentions_classified_total") == 2
    assert sample(text, 'monitor_alerts_sent_total{kind="alert"}') == 1
    assert sample(text, 'monitor_escalation_level_reached_total{level="1"}') == 1
    assert sample(text, "monitor_outbox_backlog") == 0
    assert sample(text, 'monitor_source_healthy{source="x:Broken"}') == 0
    assert sample(text, "monitor_last_pass_timestamp_seconds") == T0.timestamp()
    assert get(server.url + "/nothing-here")[0] == 404


def test_healthz_is_200_while_passes_finish_and_503_once_they_stop(
        served: tuple[MetricsServer, Metrics], pipeline: Pipeline, clock: FakeClock) -> None:
    server, _ = served
    status, body = get(server.url + "/healthz")
    assert status == 200  # a fresh process gets one stale period to finish its first pass
    assert json.loads(body)["last_pass_at"] is None
    pipeline.poll(Broken())
    pipeline.run_pass()
    clock.advance(timedelta(seconds=50))

    status, body = get(server.url + "/healthz")
    report = json.loads(body)
    assert status == 200 and report["status"] == "ok"
    assert report["last_pass_at"] == "2026-11-18T09:00:00+00:00" and report["seconds_since_pass"] == 50
    assert report["outbox_backlog"] == 0
    assert report["unhealthy_sources"] == []  # failing for 50 s: not yet longer than the minute allowed

    clock.advance(timedelta(seconds=20))  # 70 s without a pass: more than max(4 × 15 s, 60 s)
    status, body = get(server.url + "/healthz")
    report = json.loads(body)
    assert status == 503 and report["status"] == "unhealthy"
    assert report["unhealthy_sources"] == ["x:Broken"] and "no pipeline progress" in report["problems"][0]

    pipeline.run_pass()  # progress again: healthy again
    assert get(server.url + "/healthz")[0] == 200


def test_each_process_object_has_its_own_registry(clock: FakeClock) -> None:
    first, second = Metrics(clock=clock.now), Metrics(clock=clock.now, process_metrics=False)
    first.alerts_sent.labels("alert").inc()
    assert b'monitor_alerts_sent_total{kind="alert"} 1.0' in first.exposition()
    assert b'kind="alert"' not in second.exposition()


def metrics_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "metrics-server"]


def test_port_zero_disables_the_endpoint(clock: FakeClock) -> None:
    assert not metrics_threads()
    assert start_metrics_server(Metrics(clock=clock.now), 0) is None
    assert not metrics_threads()  # no server thread, so nothing listens


def test_a_live_worker_gets_everything_at_construction(engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    settings = Settings(db_url="sqlite://", rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml",
                        metrics_port=0)
    broken = Broken()
    plan = SourcePlan((ReplaySource(feed(tmp_path), name="replay"), broken), unhealthy_after=timedelta(minutes=1))
    assembled = build_worker(settings, clock, sources=plan, notifier=ConsoleNotifier(io.StringIO()), engine=engine,
                             model=Stub())
    pipeline = assembled.pipeline
    assert assembled.metrics is not None and pipeline.metrics is assembled.metrics
    assert pipeline.watched_sources == [broken] and pipeline.unhealthy_after == timedelta(minutes=1)
    assert {"retention-purge", "weekly-digest"} <= {job.id for job in assembled.worker.scheduler.get_jobs()}
    assert assembled.listener is None  # a console notifier has no buttons
    assembled.start()
    try:
        jobs = {job.id for job in assembled.worker.scheduler.get_jobs()}
        assert {"poll:replay", "poll:x:Broken", "alert"} <= jobs
        assert assembled.metrics_server is None and not metrics_threads()  # MONITOR_METRICS_PORT=0
    finally:
        assembled.stop()
    assert not assembled.worker.scheduler.running


# --- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def emit_with_secrets() -> None:
    remember_secret(PLAIN_SECRET)
    log = logging.getLogger("monitor.test_ops")
    log.warning("Slack answered %s for Authorization: Bearer %s (%s)", "invalid_auth", TOKEN, PLAIN_SECRET,
                extra={"source": "slack", "attempt": 2, "echo": {"token": TOKEN, "plain": PLAIN_SECRET}})
    try:
        raise RuntimeError(f"request failed with token={TOKEN}")
    except RuntimeError:
        log.exception("delivery failed")


def test_json_log_lines_parse_and_carry_no_secret(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("DEBUG", json=True, stream=out)
    emit_with_secrets()
    text = out.getvalue()
    assert TOKEN not in text and PLAIN_SECRET not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert {"time", "level", "logger", "message"} <= set(first)
    assert first["level"] == "WARNING" and first["logger"] == "monitor.test_ops"
    assert first["message"].startswith("Slack answered invalid_auth for Authorization: ***")
    assert first["source"] == "slack" and first["attempt"] == 2 and first["echo"]["token"] == "***"
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert second["level"] == "ERROR" and "RuntimeError" in second["exc"] and "token=***" in second["exc"]


def test_text_logs_for_a_terminal_and_the_format_switch(restore_logging: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setenv("MONITOR_LOG_FORMAT", "text")
    handler = setup_logging("INFO", stream=out)
    emit_with_secrets()
    text = out.getvalue()
    assert TOKEN not in text and PLAIN_SECRET not in text
    assert " WARNING monitor.test_ops: Slack answered invalid_auth" in text.splitlines()[0]
    assert "Traceback (most recent call last):" in text  # a traceback keeps its lines in text mode
    assert setup_logging("INFO", stream=out) is not handler
    assert sum(getattr(h, "_monitor_handler", False) for h in logging.getLogger().handlers) == 1  # replaced

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert wants_json("auto", Terminal()) is False and wants_json("auto", io.StringIO()) is True
    assert wants_json("json", Terminal()) is True and wants_json("text", io.StringIO()) is False


def test_the_default_handler_follows_stderr_when_it_is_replaced(restore_logging: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A command run inside a program that swaps and closes stderr (a test runner) must not leave a dead handler."""
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging("INFO", json=False)
    logging.getLogger("monitor.test_ops").warning("into the first")
    first.close()  # what CliRunner does with a command's captured output
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("monitor.test_ops").warning("into the second")
    assert "into the second" in second.getvalue()
    assert "Logging error" not in second.getvalue()
