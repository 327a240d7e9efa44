"""/healthz tells the truth: per source and per stage, and never ``ok`` while a source fails or a stage is stuck."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from pytest_httpserver import HTTPServer
from sqlalchemy import Engine

from monitor.app import build_pipeline
from monitor.clock import FakeClock
from monitor.models import SentimentScores
from monitor.notify import ConsoleNotifier
from monitor.ops import HealthCheck, Metrics
from monitor.settings import Settings
from monitor.sources.base import PollResult
from monitor.sources.feeds import FeedSource
from monitor.sources.resilience import RetryPolicy
from monitor.store import mentions as mention_repo
from monitor.store import transaction
from tests.conftest import ROOT, make_mention

SETTINGS = Settings(rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml")


class Model:
    name = "stub"
    version = "1"

    def predict(self, texts: list[str]) -> list[SentimentScores]:
        return [SentimentScores(0.1, 0.2, 0.7) for _ in texts]


def feed(httpserver: HTTPServer, clock: FakeClock) -> FeedSource:
    return FeedSource(brand="Lumora", site="Energienieuws", url=httpserver.url_for("/feed"), keywords=["Lumora"],
                      languages=["nl"], reach=1000, clock=clock, timeout=5,
                      policy=RetryPolicy(attempts=1, initial=0.01, maximum=0.01, jitter=0.0,
                                         rate_limit_max_wait=60, sleep=lambda _: None))


def check(metrics: Metrics) -> tuple[int, dict[str, Any]]:
    report = HealthCheck(metrics, pass_interval=timedelta(seconds=15)).check()
    return report.status, report.body


def test_an_unparseable_feed_is_a_failure_and_shows_in_healthz(engine: Engine, clock: FakeClock,
                                                               httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data("<rss><channel><<< not xml", content_type="text/xml")
    metrics = Metrics(clock=clock.now, process_metrics=False)
    metrics.watch_store(engine, unhealthy_after=timedelta(minutes=30))
    pipeline = build_pipeline(SETTINGS, notifier=ConsoleNotifier(io.StringIO()), clock=clock, engine=engine,
                              model=Model(), metrics=metrics)
    source = feed(httpserver, clock)
    result = pipeline.poll(source)
    assert result.failed and "is not a readable RSS/Atom feed" in (result.problem or "")
    pipeline.run_pass()
    status, body = check(metrics)
    reported = body["sources"][source.name]
    assert status == 200 and body["status"] == "ok"  # one failure: not yet beyond the threshold
    assert reported["consecutive_failures"] == 1 and reported["healthy"] is True
    assert "is not a readable RSS/Atom feed" in reported["last_error"] and reported["last_success_at"] is None

    for _ in range(4):  # still broken half an hour later
        clock.advance(timedelta(minutes=10))
        pipeline.poll(source)
        pipeline.run_pass()
    status, body = check(metrics)
    assert status == 200 and body["status"] == "degraded"
    assert body["unhealthy_sources"] == [source.name] and body["sources"][source.name]["consecutive_failures"] == 5
    assert body["problems"][0].startswith(f"source {source.name} failing: ValueError: ")


def test_a_stuck_stage_is_unhealthy_and_an_idle_one_is_not(engine: Engine, clock: FakeClock) -> None:
    metrics = Metrics(clock=clock.now, process_metrics=False)
    metrics.watch_store(engine)
    pipeline = build_pipeline(SETTINGS, notifier=ConsoleNotifier(io.StringIO()), clock=clock, engine=engine,
                              model=Model(), metrics=metrics)
    pipeline.alert()
    clock.advance(timedelta(minutes=5))  # nothing waiting: quiet is not stuck
    pipeline.alert()
    status, body = check(metrics)
    assert status == 200 and body["stages"]["score"] == {"last_run_at": None, "backlog": 0, "unscored": 0}

    class Page:
        name = "x:Lumora"

        def poll(self, cursor: str | None) -> PollResult:
            return PollResult(mentions=[make_mention(1), make_mention(2)], next_cursor="1")

    pipeline.poll(Page())
    clock.advance(timedelta(seconds=90))
    pipeline.alert()  # alerting keeps running; scoring never does
    status, body = check(metrics)
    assert status == 503 and body["status"] == "unhealthy"
    assert body["stages"]["score"]["backlog"] == 2 and body["stages"]["score"]["unscored"] == 2
    assert body["problems"] == ["stage score stuck: 2 item(s) waiting, no run for 390 s (limit 60 s)"]

    pipeline.score_for(5)
    status, body = check(metrics)
    assert status == 200 and body["stages"]["score"]["backlog"] == 0
    assert body["stages"]["score"]["last_run_at"] == clock.now().isoformat(timespec="seconds")
    with transaction(engine) as conn:
        assert mention_repo.backlog(conn) == (0, 0)
