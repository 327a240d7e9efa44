"""Alerting never waits for scoring: the live worker's stages run apart, and SIGTERM is honoured mid-scoring."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from monitor.app import build_pipeline
from monitor.clock import SystemClock
from monitor.models import SentimentScores
from monitor.notify import ConsoleNotifier
from monitor.ops import HealthCheck, Metrics
from monitor.settings import Settings
from monitor.sources.base import PollResult
from monitor.store import mentions as mention_repo
from monitor.store import transaction
from monitor.worker import Worker
from tests.conftest import ALWAYS_OPEN_ESCALATION, ROOT, make_mention

TRIGGER = "Lumora is a scam and a fraud, they took my money"


class SlowModel:
    """Weights-free; a long text takes ``per_long`` seconds, as the encoder takes on a 5 KB post."""

    name = "slow"
    version = "1"

    def __init__(self, per_long: float) -> None:
        self.per_long = per_long
        self.calls = 0

    def predict(self, texts: Sequence[str]) -> list[SentimentScores]:
        self.calls += 1
        time.sleep(self.per_long * sum(len(t) > 1000 for t in texts))
        return [SentimentScores(0.9, 0.05, 0.05) if "scam" in t else SentimentScores(0.1, 0.2, 0.7) for t in texts]


class Stamped(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.alerted = threading.Event()

    def write(self, text: str) -> int:
        if "NEW INCIDENT" in text:
            self.alerted.set()
        return super().write(text)


class Once:
    name = "x:Lumora"

    def __init__(self) -> None:
        self.done = False

    def poll(self, cursor: str | None) -> PollResult:
        if self.done:
            return PollResult(next_cursor=cursor)
        self.done = True
        return PollResult(mentions=[make_mention(9999, text=TRIGGER, reach=50_000,
                                                 at=datetime.now(UTC))], next_cursor="1")


def live_worker(engine: Engine, tmp_path: Path, model: SlowModel, stream: io.StringIO,
                metrics: Metrics | None = None) -> Worker:
    escalation = tmp_path / "escalation.yaml"
    escalation.write_text(ALWAYS_OPEN_ESCALATION, encoding="utf-8")
    settings = Settings(rules_dir=ROOT / "rules", escalation_file=escalation)
    pipeline = build_pipeline(settings, notifier=ConsoleNotifier(stream), clock=SystemClock(), engine=engine,
                              model=model, metrics=metrics)
    return Worker(pipeline, [Once()], timezone="Europe/Brussels", poll_every=timedelta(seconds=1),
                  pass_every=timedelta(seconds=5), alert_every=timedelta(seconds=1),
                  score_budget=timedelta(seconds=1))


def backlog(engine: Engine, n: int) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    with transaction(engine) as conn:
        mention_repo.store_batch(conn, "backlog", [make_mention(i, text="Lumora delivered on time. " * 200,
                                                                at=now + timedelta(seconds=i))
                                                   for i in range(n)], None, now)


def test_a_new_alert_is_delivered_while_a_backlog_of_long_posts_waits(engine: Engine, tmp_path: Path) -> None:
    # 300 long posts at 0.2 s each: 60 s of scoring, oldest first, before the trigger in the old single pass.
    # The margins leave room for a loaded CI machine: the alert within 20 s, most of the backlog still unscored.
    model, stream = SlowModel(per_long=0.2), Stamped()
    backlog(engine, 300)
    metrics = Metrics(process_metrics=False)
    metrics.watch_store(engine)
    worker = live_worker(engine, tmp_path, model, stream, metrics)
    started = time.monotonic()
    worker.start()
    try:
        assert stream.alerted.wait(20), "no alert within 20 s"
        elapsed = time.monotonic() - started
        with transaction(engine) as conn:
            waiting, unscored = mention_repo.backlog(conn)
        report = HealthCheck(metrics).check()
    finally:
        assert worker.stop(timeout=5)
    assert elapsed < 20 and unscored >= 50  # the alert did not wait for the backlog
    assert "rule fraud-or-boycott" in stream.getvalue()
    assert report.status == 200 and report.body["stages"]["score"]["backlog"] >= waiting - 5 >= 45
    assert report.body["stages"]["score"]["last_run_at"] is not None


def test_stop_ends_the_worker_within_seconds_mid_classification(engine: Engine, tmp_path: Path) -> None:
    model = SlowModel(per_long=0.5)
    backlog(engine, 100)  # 50 s of scoring
    worker = live_worker(engine, tmp_path, model, io.StringIO())
    worker.start()
    deadline = time.monotonic() + 10
    while model.calls < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert model.calls >= 2  # busy scoring
    asked = time.monotonic()
    assert worker.stop(timeout=5)
    assert time.monotonic() - asked < 3  # at most one chunk (one long post) to finish


def test_ticks_and_delivery_run_while_the_model_is_stuck(engine: Engine, tmp_path: Path) -> None:
    release = threading.Event()

    class Stuck(SlowModel):
        def predict(self, texts: Sequence[str]) -> list[SentimentScores]:
            release.wait(20)
            return super().predict(texts)

    backlog(engine, 3)
    stream = io.StringIO()
    worker = live_worker(engine, tmp_path, Stuck(0), stream)
    runs: list[float] = []
    original = worker.pipeline.alert

    def counted() -> object:
        runs.append(time.monotonic())
        return original()

    worker.pipeline.alert = counted  # type: ignore[method-assign]  # counts real runs, changes nothing
    worker.start()
    try:
        time.sleep(3.5)
        assert len(runs) >= 2  # the alerting job ran on its own schedule while scoring was blocked
    finally:
        release.set()
        assert worker.stop(timeout=5)
