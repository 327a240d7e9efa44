"""``/healthz``: is this worker alive and making progress?

200 with a small JSON body while pipeline passes keep finishing; 503 once the
last sign of progress is older than ``stale_factor`` pass intervals (and
``min_stale``), or when the store cannot be read. A restart can fix a stuck
worker, so that is what the status code says. Failing *sources* are reported in
the body and in ``monitor_source_healthy`` but keep the status at 200:
restarting the worker does not bring the X API back, and a probe that restarts
it in a loop would only add an outage of our own.

"Progress" is the end of a pass or a classified batch: a first pass that
classifies a large backlog batch by batch is busy, not stuck.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.ops.metrics import Metrics


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: int  # HTTP status: 200 or 503
    body: dict[str, Any]


class HealthCheck:
    def __init__(self, metrics: Metrics, *, pass_interval: timedelta = timedelta(seconds=15),
                 stale_factor: float = 4.0, min_stale: timedelta = timedelta(seconds=60),
                 delivery: Callable[[], dict[str, Any]] | None = None) -> None:
        """``delivery``: the delivery component's report (``DeliveryStatus.report``). Unlike a failing
        source, failing delivery makes the status 503: it is the one failure the worker cannot
        announce through its own alerts, so the probe must."""
        self.metrics = metrics
        self.delivery = delivery
        self.pass_interval = pass_interval
        # A pass runs every interval; missing a few (a slow Slack, a long batch) is normal, missing many is not.
        self.stale_after = max(pass_interval * stale_factor, min_stale)

    def check(self) -> HealthReport:
        m = self.metrics
        now = m.clock()
        progress = m.last_progress_at or m.started_at  # a fresh process gets one stale period to start
        idle = now - progress
        problems: list[str] = []
        if idle > self.stale_after:
            problems.append(f"no pipeline progress for {int(idle.total_seconds())} s "
                            f"(limit {int(self.stale_after.total_seconds())} s)")
        body: dict[str, Any] = {
            "status": "ok",
            "last_pass_at": _iso(m.last_pass_at),
            "seconds_since_pass": round((now - m.last_pass_at).total_seconds(), 1) if m.last_pass_at else None,
            "outbox_backlog": None,
            "unhealthy_sources": [],
        }
        if m.watches_store:
            state = m.store_state()
            if state is None:
                problems.append("the store cannot be read")
            else:
                body["outbox_backlog"] = state.backlog
                body["unhealthy_sources"] = state.unhealthy
        if self.delivery is not None:
            body["delivery"] = report = self.delivery()
            problems.extend(f"delivery: {p}" for p in report.get("problems") or [])
        if problems:
            body["status"] = "unhealthy"
            body["problems"] = problems
            return HealthReport(503, body)
        return HealthReport(200, body)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when else None
