"""A source that keeps failing becomes an incident: the worker must not go silently blind."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
import responses
from sqlalchemy import Engine

from monitor.app import build_pipeline
from monitor.clock import FakeClock
from monitor.notify import ConsoleNotifier
from monitor.ops.metrics import read_store_state
from monitor.settings import Settings
from monitor.sources.base import PollResult
from monitor.sources.graph import FacebookSource, GraphClient
from monitor.sources.resilience import RetryPolicy
from monitor.store import health as health_repo
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


def _graph_page(rsps: responses.RequestsMock, clock: FakeClock) -> FacebookSource:
    policy = RetryPolicy(attempts=2, initial=0.0, maximum=0.0, jitter=0.0, sleep=lambda _s: None)
    client = GraphClient(token="EAAGtesttoken0123456789", root="https://graph.test", timeout=5, clock=clock,
                         policy=policy)
    return FacebookSource(brand="Lumora", page_id="1010", client=client, comments=False, tagged=False)


def _source_incidents(engine: Engine) -> list[Any]:
    with transaction(engine) as conn:
        return [i for i in repo.all_incidents(conn) if i.rule == "source-health"]


@pytest.mark.parametrize(("status", "error", "what"), [
    (400, {"code": 190, "message": "Error validating access token: Session has expired"}, "renew FACEBOOK_PAGE_TOKEN"),
    (400, {"code": 100, "message": "(#100) This endpoint requires the 'pages_read_engagement' permission"},
     "grant it to the token"),
    (403, {"code": 200, "message": "Permissions error"}, "grant it to the token"),
])
def test_a_token_or_permission_error_opens_the_incident_at_once(
        engine: Engine, clock: FakeClock, status: int, error: dict[str, Any], what: str) -> None:
    """The real Graph client and poller, the worker's pass: no 2 h grace for an error that will not heal."""
    with responses.RequestsMock() as rsps:
        rsps.get("https://graph.test/v21.0/1010/visitor_posts", status=status,
                 json={"error": {**error, "type": "OAuthException"}})
        source = _graph_page(rsps, clock)
        pipeline = build_pipeline(Settings(rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml"),
                                  notifier=ConsoleNotifier(io.StringIO()), clock=clock, engine=engine,
                                  watched_sources=[source], unhealthy_after=timedelta(hours=2))
        assert pipeline.poll(source).blind
        pipeline.run_pass()
    (incident,) = _source_incidents(engine)
    assert "facebook:Lumora cannot see" in incident.reason and what in incident.reason
    assert "will not recover by itself" in incident.reason
    # /healthz and the metrics apply the same rule: unhealthy at once, not after two hours
    assert read_store_state(engine, clock.now(), timedelta(hours=2)).sources == {"facebook:Lumora": False}


def test_a_5xx_keeps_the_grace_period_and_a_success_clears_the_blind_mark(engine: Engine, clock: FakeClock) -> None:
    settings = Settings(rules_dir=ROOT / "rules", escalation_file=ROOT / "escalation.yaml")
    with responses.RequestsMock() as rsps:
        rsps.get("https://graph.test/v21.0/1010/visitor_posts", status=503, body="down")
        source = _graph_page(rsps, clock)
        pipeline = build_pipeline(settings, notifier=ConsoleNotifier(io.StringIO()), clock=clock, engine=engine,
                                  watched_sources=[source], unhealthy_after=timedelta(hours=2))
        for _ in range(13):  # every 10 minutes for 2 hours: still within the grace period
            assert pipeline.poll(source).failed
            pipeline.run_pass()
            clock.advance(timedelta(minutes=10))
        assert _source_incidents(engine) == []
        last_poll = clock.now() - timedelta(minutes=10)  # failing for exactly 2 h: not yet unhealthy
        assert read_store_state(engine, last_poll, timedelta(hours=2)).sources == {"facebook:Lumora": True}
        pipeline.poll(source)
        pipeline.run_pass()
        (incident,) = _source_incidents(engine)  # past it
        assert "facebook:Lumora has been failing for" in incident.reason and "HTTP 503" in incident.reason

    with transaction(engine) as conn:
        health_repo.record_failure(conn, source.name, clock.now(), "token expired", blind=True)
        health_repo.record_success(conn, source.name, clock.now())
        health = health_repo.get(conn, source.name)
    assert health is not None and not health.blind and health.consecutive_failures == 0
