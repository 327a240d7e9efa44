"""A source that keeps failing becomes an incident: the worker must not go silently blind."""

from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import Engine

from monitor.app import build_pipeline
from monitor.clock import FakeClock
from monitor.notify import ConsoleNotifier
from monitor.settings import Settings
from monitor.sources.base import PollResult
from monitor.store import incidents as repo
from monitor.store import transaction
from tests.conftest import ROOT


class BrokenApi:
    """Stands in for a platform that is down: every poll fails like a connection error does."""

    name = "x:Lumora"
    brand = "Lumora"

    def poll(self, cursor: str | None) -> PollResult:
        raise ConnectionError("connection reset by peer")


def test_a_long_failing_source_opens_one_source_health_incident(engine: Engine, clock: FakeClock) -> None:
    out = io.StringIO()
    settings = Settings(rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml")
    source = BrokenApi()
    pipeline = build_pipeline(settings, notifier=ConsoleNotifier(out), clock=clock, engine=engine,
                              watched_sources=[source], unhealthy_after=timedelta(hours=2))
    for _ in range(30):  # every 10 minutes for 5 hours
        stats = pipeline.poll(source)  # never raises
        assert stats.fetched == 0
        pipeline.run_pass()
        clock.advance(timedelta(minutes=10))
    with transaction(engine) as conn:
        found = [i for i in repo.all_incidents(conn) if i.rule == "source-health"]
    assert len(found) == 1
    assert "x:Lumora has been failing for" in found[0].reason
    assert "connection reset by peer" in found[0].reason
