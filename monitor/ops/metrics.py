"""Prometheus metrics of one worker process.

One ``Metrics`` object per process, holding its own ``CollectorRegistry``
(never the library's global one): tests build as many as they like, and
nothing registered by an imported library leaks into our endpoint. The pipeline
gets it as an optional attribute and calls the ``observe_*`` hooks; the store's
own state (outbox backlog, source health) is read when Prometheus scrapes, so
those numbers are never stale and survive a restart.

Names follow Prometheus conventions (``_total`` counters, ``_seconds``):

* ``monitor_mentions_polled_total{source}``: posts fetched per source;
* ``monitor_mentions_stored_total{source}``: of those, new ones (not duplicates);
* ``monitor_poll_errors_total{source}``: polls that failed or stopped early;
* ``monitor_classification_seconds``: time to classify one batch (histogram);
* ``monitor_mentions_classified_total``;
* ``monitor_alerts_sent_total{kind}``: notifications delivered, by kind;
* ``monitor_escalation_level_reached_total{level}``: levels called (alert or escalation delivered);
* ``monitor_last_pass_timestamp_seconds``: end of the last pipeline pass (Unix time);
* ``monitor_outbox_backlog``: notifications waiting (read from the store at scrape);
* ``monitor_source_healthy{source}``: 1 healthy, 0 failing for longer than the unhealthy period;
* ``monitor_quarantined_posts{source}``: posts set aside because the store or the model refused them;
* ``monitor_mentions_backlog{stage}``: posts waiting for the rules (``detect``), of which unscored (``score``);
* ``monitor_stage_last_run_timestamp_seconds{stage}``: last completed run of ``score`` and ``alert``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from monitor.models import Notification
from monitor.notify.render import LEVEL_KINDS
from monitor.redact import describe
from monitor.sources.base import PollResult

log = logging.getLogger(__name__)
NAMESPACE = "monitor"
# Batches of the offline model take milliseconds; a transformers model on CPU can take a minute.
CLASSIFY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SourceState:
    """One source as ``/healthz`` reports it."""

    healthy: bool
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    quarantined: int = 0


@dataclass(frozen=True, slots=True)
class StoreState:
    """What the store says right now: queued notifications, the mention backlog and each source's health."""

    backlog: int  # notifications queued
    sources: dict[str, bool]  # source -> healthy
    details: dict[str, SourceState] = field(default_factory=dict)
    pending: int = 0  # mentions not yet through the rules
    unscored: int = 0  # of those, not yet scored

    @property
    def unhealthy(self) -> list[str]:
        return sorted(name for name, ok in self.sources.items() if not ok)


def read_store_state(engine: Engine, now: datetime, unhealthy_after: timedelta) -> StoreState:
    """Backlog and source health, with the rule ``monitor sources`` and the health incidents use.

    A source is unhealthy once it has been failing for longer than ``unhealthy_after``
    (one failed poll, a blip or a rate limit, is not worth a page), or at once when
    it fails blind (``SourceHealth.unhealthy``).
    """
    from monitor.store import health as health_repo
    from monitor.store import mentions as mention_repo
    from monitor.store import outbox, transaction
    from monitor.store import quarantine as quarantine_repo

    with transaction(engine) as conn:
        backlog = outbox.backlog(conn)
        rows = health_repo.all_health(conn)
        quarantined = quarantine_repo.counts(conn)
        pending, unscored = mention_repo.backlog(conn)
    sources = {name: not h.unhealthy(now, unhealthy_after) for name, h in rows.items()}
    details = {name: SourceState(sources.get(name, True), h.last_success_at, h.last_error_at, h.last_error,
                                 h.consecutive_failures, quarantined.get(name, 0))
               for name, h in rows.items()}
    for name, n in quarantined.items():  # a source whose only trace is a quarantined post
        details.setdefault(name, SourceState(True, quarantined=n))
        sources.setdefault(name, True)
    return StoreState(backlog, sources, details, pending, unscored)


class _StoreCollector(Collector):
    """Reads the store on each scrape; a store that cannot be read yields no store metrics, not an error."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        state = self.metrics.store_state()
        if state is None:
            return
        backlog = GaugeMetricFamily(f"{NAMESPACE}_outbox_backlog", "Notifications queued and not yet delivered")
        backlog.add_metric([], state.backlog)
        yield backlog
        healthy = GaugeMetricFamily(f"{NAMESPACE}_source_healthy",
                                    "1 when the source is healthy, 0 when failing for longer than allowed",
                                    labels=["source"])
        for name, ok in sorted(state.sources.items()):
            healthy.add_metric([name], 1.0 if ok else 0.0)
        yield healthy
        quarantined = GaugeMetricFamily(f"{NAMESPACE}_quarantined_posts",
                                        "Posts set aside because the store or the model refused them",
                                        labels=["source"])
        for name, detail in sorted(state.details.items()):
            quarantined.add_metric([name], float(detail.quarantined))
        yield quarantined
        waiting = GaugeMetricFamily(f"{NAMESPACE}_mentions_backlog", "Posts waiting for a stage", labels=["stage"])
        waiting.add_metric(["detect"], float(state.pending))
        waiting.add_metric(["score"], float(state.unscored))
        yield waiting


class _WorkerCollector(Collector):
    """This worker's identity and leases at each scrape: with several workers, which one holds what."""

    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        status = self.status()
        info = GaugeMetricFamily(f"{NAMESPACE}_worker_info", "This worker: always 1, its identity in the labels",
                                 labels=["worker", "host", "version"])
        info.add_metric([status["id"], status["host"], status["version"]], 1.0)
        yield info
        held = GaugeMetricFamily(f"{NAMESPACE}_worker_lease_held", "1 for each lease this worker holds",
                                 labels=["worker", "lease"])
        for lease in status["leases"]:
            held.add_metric([status["id"], lease], 1.0)
        yield held
        count = GaugeMetricFamily(f"{NAMESPACE}_worker_leases", "Leases this worker holds", labels=["worker"])
        count.add_metric([status["id"]], float(len(status["leases"])))
        yield count


class Metrics:
    """The process's metrics and the hooks that feed them. Every hook is cheap and never raises."""

    def __init__(self, *, clock: Callable[[], datetime] = _wall_clock, process_metrics: bool = True) -> None:
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.mentions_polled = Counter("mentions_polled", "Posts fetched from a source", ["source"],
                                       namespace=NAMESPACE, registry=r)
        self.mentions_stored = Counter("mentions_stored", "New posts stored (duplicates excluded)", ["source"],
                                       namespace=NAMESPACE, registry=r)
        self.poll_errors = Counter("poll_errors", "Polls that failed or stopped early", ["source"],
                                   namespace=NAMESPACE, registry=r)
        self.classification_seconds = Histogram("classification_seconds", "Time to classify one batch",
                                                namespace=NAMESPACE, registry=r, buckets=CLASSIFY_BUCKETS)
        self.mentions_classified = Counter("mentions_classified", "Posts given a sentiment score",
                                           namespace=NAMESPACE, registry=r)
        self.alerts_sent = Counter("alerts_sent", "Notifications delivered, by kind", ["kind"],
                                   namespace=NAMESPACE, registry=r)
        self.levels_reached = Counter("escalation_level_reached", "Escalation levels called (delivered)",
                                      ["level"], namespace=NAMESPACE, registry=r)
        self.last_pass = Gauge("last_pass_timestamp_seconds", "End of the last pipeline pass (Unix time)",
                               namespace=NAMESPACE, registry=r)
        self.config_valid = Gauge("config_valid", "1 while the configuration files on disk validate, 0 while the "
                                  "worker keeps its last good version of a broken one", ["file"],
                                  namespace=NAMESPACE, registry=r)
        self.stage_last_run = Gauge("stage_last_run_timestamp_seconds", "Last completed run of a stage (Unix time)",
                                    ["stage"], namespace=NAMESPACE, registry=r)
        if process_metrics:
            ProcessCollector(namespace=NAMESPACE, registry=r)  # memory, CPU, open files (Linux)
        self.started_at = clock()
        self.last_pass_at: datetime | None = None
        self.last_progress_at: datetime | None = None
        self.stage_runs: dict[str, datetime] = {}  # stage ("score", "alert") -> end of its last run
        self._store: tuple[Engine, timedelta] | None = None

    # --- the store ------------------------------------------------------------------------------
    def watch_store(self, engine: Engine, *, unhealthy_after: timedelta = timedelta(hours=2)) -> None:
        """Report the outbox backlog and source health from this store at every scrape (once per process)."""
        first = self._store is None
        self._store = (engine, unhealthy_after)
        if first:
            self.registry.register(_StoreCollector(self))

    def watch_worker(self, status: Callable[[], dict[str, Any]]) -> None:
        """Report this worker's id and leases (``Membership.status``) at every scrape."""
        self.registry.register(_WorkerCollector(status))

    @property
    def watches_store(self) -> bool:
        return self._store is not None

    def store_state(self) -> StoreState | None:
        if self._store is None:
            return None
        engine, unhealthy_after = self._store
        try:
            return read_store_state(engine, self.clock(), unhealthy_after)
        except Exception as exc:  # a scrape must answer even when the store is locked or gone
            log.warning("metrics: could not read the store: %s", describe(exc))
            return None

    # --- hooks ----------------------------------------------------------------------------------
    def observe_poll(self, source: str, result: PollResult) -> None:
        self.mentions_polled.labels(source).inc(result.fetched)
        self.mentions_stored.labels(source).inc(max(0, result.new))
        if result.failed:
            self.poll_errors.labels(source).inc()

    def observe_classification(self, seconds: float, count: int) -> None:
        self.classification_seconds.observe(max(0.0, seconds))
        self.mentions_classified.inc(max(0, count))
        self.last_progress_at = self.clock()

    def observe_sent(self, notification: Notification) -> None:
        """A notification was delivered: count its kind, and the level it called."""
        try:
            self.alerts_sent.labels(notification.kind).inc()
            if notification.kind in LEVEL_KINDS:  # a reminder calls again at a level already counted
                level = notification.payload.level
                self.levels_reached.labels(str(level if isinstance(level, int) else "?")).inc()
        except Exception as exc:  # counting must never disturb delivery
            log.warning("metrics: %s", describe(exc))

    def stage_ran(self, stage: str) -> None:
        """A live stage completed a run (``Pipeline.score_for``, ``Pipeline.alert``)."""
        now = self.clock()
        self.stage_runs[stage] = self.last_progress_at = now
        self.stage_last_run.labels(stage).set(now.timestamp())

    def pass_finished(self) -> None:
        now = self.clock()
        self.last_pass_at = self.last_progress_at = now
        self.last_pass.set(now.timestamp())

    # --- exposition -----------------------------------------------------------------------------
    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
