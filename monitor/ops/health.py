"""``/healthz``: is this worker alive, making progress, and are its sources working?

The body reports every source (last success, last error, failure streak,
quarantined posts) and every stage (last run, backlog). The status says what
to do about it:

* ``ok`` (200): everything works;
* ``degraded`` (200): a source has been failing for longer than its threshold
  (``source_unhealthy_after``), or at once when it fails blind (a token, a
  permission). Not ``ok``, so a monitor of the body pages, but still 200:
  restarting the worker does not bring the X API back, and a probe that
  restarts it in a loop would only add an outage of our own;
* ``unhealthy`` (503): the worker is stuck, which a restart can fix: no
  progress at all for ``stale_factor`` pass intervals (and ``min_stale``), a
  stage with work waiting and no completed run for as long, or a store that
  cannot be read.

"Progress" is the end of a pass, of an alerting run or of a classified chunk:
a first run that classifies a large backlog chunk by chunk is busy, not stuck.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor.ops.metrics import Metrics, StoreState

if TYPE_CHECKING:
    from monitor.live_config import ConfigState


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: int  # HTTP status: 200 or 503
    body: dict[str, Any]


class HealthCheck:
    def __init__(self, metrics: Metrics, *, pass_interval: timedelta = timedelta(seconds=15),
                 stale_factor: float = 4.0, min_stale: timedelta = timedelta(seconds=60),
                 config: Callable[[], Sequence[ConfigState]] | None = None,
                 delivery: Callable[[], dict[str, Any]] | None = None,
                 worker: Callable[[], dict[str, Any]] | None = None,
                 sentiment: Callable[[], dict[str, Any]] | None = None) -> None:
        """``delivery``: the delivery component's report (``DeliveryStatus.report``). Unlike a failing
        source, failing delivery makes the status 503: it is the one failure the worker cannot
        announce through its own alerts, so the probe must. ``config``: the configuration in force
        (``monitor.live_config``); a broken file is reported but keeps the status at 200: the worker runs
        on its last good version, and a restart would not start at all."""
        self.metrics = metrics
        self.delivery = delivery
        self.worker = worker  # Membership.status: which worker answers, and the leases it holds
        # The offline model's encoder_status: engine, weights, why, and whether the head was validated on them.
        self.sentiment = sentiment
        self.config = config
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
            "sources": {},
            "stages": {},
        }
        if self.worker is not None:
            body["worker"] = self.worker()
        if self.sentiment is not None:
            body["sentiment"] = self.sentiment()
        warnings: list[str] = []
        if m.watches_store:
            state = m.store_state()
            if state is None:
                problems.append("the store cannot be read")
            else:
                body["outbox_backlog"] = state.backlog
                body["unhealthy_sources"] = state.unhealthy
                body["sources"] = _sources(state)
                body["stages"], stuck = self._stages(state, now)
                problems.extend(stuck)
                warnings.extend(f"source {name} failing: {state.details[name].last_error or 'no detail'}"
                                if name in state.details else f"source {name} failing"
                                for name in state.unhealthy)
        if self.config is not None:
            states = list(self.config())
            body["configuration"] = {
                c.kind: {"version": c.version, "since": _iso(c.since), "valid": not c.errors,
                         **({"invalid_since": _iso(c.invalid_since), "errors": list(c.errors)} if c.errors else {})}
                for c in states}
            # Reported, not fatal: the last good version runs, and a restart would not start at all.
            warnings.extend(f"{c.kind} on disk is invalid; running on version {c.version}" for c in states if c.errors)
        if self.delivery is not None:
            body["delivery"] = report = self.delivery()
            problems.extend(f"delivery: {p}" for p in report.get("problems") or [])
        if problems:
            body["status"] = "unhealthy"
            body["problems"] = problems + warnings
            return HealthReport(503, body)
        if warnings:
            body["status"] = "degraded"
            body["problems"] = warnings
        return HealthReport(200, body)

    def _stages(self, state: StoreState, now: datetime) -> tuple[dict[str, Any], list[str]]:
        """Each stage's last run and backlog; a stage with a backlog and no run for too long is stuck."""
        m = self.metrics
        backlogs = {"score": state.pending, "alert": state.backlog}
        stages: dict[str, Any] = {}
        stuck: list[str] = []
        for stage, waiting in backlogs.items():
            # Live, each stage reports its own runs; in lockstep (tests, the demo) one pass runs them all.
            last = m.stage_runs.get(stage) if m.stage_runs else m.last_pass_at
            stages[stage] = {"last_run_at": _iso(last), "backlog": waiting}
            if stage == "score":
                stages[stage]["unscored"] = state.unscored
            since = now - (last or m.started_at)
            if waiting and since > self.stale_after:
                stuck.append(f"stage {stage} stuck: {waiting} item(s) waiting, no run for "
                             f"{int(since.total_seconds())} s (limit {int(self.stale_after.total_seconds())} s)")
        return stages, stuck


def _sources(state: StoreState) -> dict[str, Any]:
    return {name: {"healthy": d.healthy, "last_success_at": _iso(d.last_success_at),
                   "last_error_at": _iso(d.last_error_at), "last_error": d.last_error,
                   "consecutive_failures": d.consecutive_failures, "quarantined": d.quarantined}
            for name, d in sorted(state.details.items())}


def _iso(when: datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when else None
