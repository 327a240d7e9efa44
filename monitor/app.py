"""Assembly: settings and config files -> a ready worker (``build_worker``).

The only place that knows which concrete classes make up the worker: ``monitor
run``, ``monitor demo`` and the end-to-end tests all get theirs from
``build_worker``, so what the tests run is what production runs. The CLI only
parses arguments and reports ``ConfigInvalid``.

Two modes, because some parts only make sense on the wall clock:

* ``Mode.LIVE`` (``monitor run``): one scheduler job per source, the
  ``/metrics`` and ``/healthz`` endpoint, the nightly retention purge, the
  weekly digest, Slack (with its buttons) when a bot token is set;
* ``Mode.SIMULATED`` (``monitor demo``, tests): the same pipeline and worker
  driven step by step on a ``FakeClock`` (``AssembledWorker.run_simulated``),
  alerts on the console (or in Slack when ``SLACK_BOT_TOKEN`` is set), and
  none of the wall-clock parts: a purge or a digest at 03:30 real time would
  act on the feed's simulated week.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from apscheduler.jobstores.base import JobLookupError
from slack_sdk import WebClient
from sqlalchemy import Engine

from monitor.classify import LanguageDetector, SentimentModel, load_model
from monitor.clock import Clock, FakeClock
from monitor.detect import RuleReloader
from monitor.escalation import EscalationConfig, EscalationEngine
from monitor.escalation.schema import load_escalation
from monitor.live_config import LiveConfig
from monitor.membership import LeaseTiming, Membership
from monitor.notify import ConsoleNotifier, Notifier
from monitor.notify.slack import SlackActionListener, SlackNotifier
from monitor.ops import Metrics, MetricsServer
from monitor.pipeline import Pipeline
from monitor.settings import Settings
from monitor.sources import ReplaySource, Source
from monitor.sources.health import Absence, absence_of
from monitor.store import check_connection, create_store_engine, migrate
from monitor.worker import Worker

if TYPE_CHECKING:
    from monitor.console import ConsoleServer

log = logging.getLogger(__name__)
DEFAULT_UNHEALTHY_AFTER = timedelta(hours=2)  # monitor.yaml's source_unhealthy_after when there is none
SLACK_CHECK_EVERY = timedelta(minutes=5)  # auth.test and the channels, again, while the worker runs
SLACK_RECHECK_DURING_OUTAGE = timedelta(seconds=30)  # while Slack does not answer: asked again this soon


class Mode(enum.Enum):
    LIVE = "live"
    SIMULATED = "simulated"


def open_store(url: str) -> Engine:
    """Engine, connection checked, schema migrated: ``StoreUnavailable`` (one line) before any change."""
    engine = create_store_engine(url)
    check_connection(engine)
    migrate(engine)
    return engine


@dataclass(frozen=True, slots=True)
class SourcePlan:
    """The sources to poll, and how long a live one may fail before it becomes an incident."""

    sources: tuple[Source, ...] = ()
    unhealthy_after: timedelta = DEFAULT_UNHEALTHY_AFTER
    collect_file: Path | None = None  # the monitor.yaml the live sources came from: watched for edits
    absence: Absence = field(default_factory=Absence)

    @property
    def watched(self) -> list[Source]:
        """The sources whose failures page: a replayed file cannot go down like an API."""
        return [s for s in self.sources if not isinstance(s, ReplaySource)]


def plan_sources(settings: Settings, *, collect_file: Path, collect_named: bool,
                 feed: Path | None = None) -> SourcePlan:
    """The live sources of ``collect_file`` (``monitor.yaml``) and/or a replayed feed.

    A feed (``--feed`` or ``MONITOR_FEED``) replaces the live sources unless the
    collect file was named explicitly (``collect_named``). Raises ``ConfigInvalid``.
    """
    from monitor.sources.factory import build_sources
    from monitor.sources.schema import load_collect

    feed = feed or settings.feed
    sources: list[Source] = []
    unhealthy_after = DEFAULT_UNHEALTHY_AFTER
    absence = Absence()
    watched: Path | None = None
    if (collect_named or feed is None) and collect_file.exists():
        collect = load_collect(collect_file)
        sources.extend(build_sources(collect, settings))
        unhealthy_after = collect.source_unhealthy_after
        absence = absence_of(collect)
        watched = collect_file
    if feed is not None:
        sources.append(ReplaySource(feed, batch_size=settings.feed_batch))
    if not sources:
        log.warning("no sources configured: only escalation timers will run")
    return SourcePlan(tuple(sources), unhealthy_after, watched, absence)


def build_pipeline(
    settings: Settings,
    *,
    notifier: Notifier,
    clock: Clock,
    engine: Engine | None = None,
    model: SentimentModel | None = None,
    claim_ttl: timedelta | None = None,
    languages: Sequence[str] | None = None,
    escalation_config: EscalationConfig | None = None,
    watched_sources: Sequence[Source] = (),
    unhealthy_after: timedelta = DEFAULT_UNHEALTHY_AFTER,
    metrics: Metrics | None = None,
    rules: RuleReloader | None = None,
    worker_id: str | None = None,
) -> Pipeline:
    """The pipeline alone (tests of one stage); ``build_worker`` for a whole worker.

    Raises ``ConfigInvalid`` when the rules or the escalation file are broken.
    """
    rules = rules if rules is not None else RuleReloader(settings.rules_dir)
    escalation = EscalationEngine(escalation_config or load_escalation(settings.escalation_file))
    # One detector for the stored language and the model's per-language
    # calibration: the two then agree, and py3langid (~100 MB) loads once.
    detector = LanguageDetector(languages or settings.languages)
    return Pipeline(
        engine=engine or open_store(settings.db_url),
        model=model or load_model(settings.sentiment_model, settings.sentiment_precision, detector,
                                  engine=settings.sentiment_engine, threads=settings.sentiment_threads,
                                  weights=settings.sentiment_weights),
        languages=detector,
        rules=rules,
        escalation=escalation,
        notifier=notifier,
        clock=clock,
        batch_size=settings.batch_size,
        watched_sources=watched_sources,
        unhealthy_after=unhealthy_after,
        metrics=metrics,
        worker_id=worker_id,  # who holds its scoring and sending claims (default host:pid)
        claim_ttl=claim_ttl,  # a sending claim lasts one lease: a frozen worker's is taken over, fenced
    )


@dataclass(slots=True)
class AssembledWorker:
    """What ``build_worker`` made, and the order to start and stop it in."""

    settings: Settings
    mode: Mode
    engine: Engine
    pipeline: Pipeline
    worker: Worker
    metrics: Metrics | None = None  # LIVE only
    listener: SlackActionListener | None = None  # LIVE with Slack and SLACK_APP_TOKEN only
    live_config: LiveConfig | None = None  # LIVE only: reloads the three configuration files
    metrics_server: MetricsServer | None = None  # set by start() unless MONITOR_METRICS_PORT=0
    console: ConsoleServer | None = None  # LIVE with MONITOR_CONSOLE_ENABLED only

    def start(self) -> None:
        """LIVE: serve the metrics, start the scheduler, then listen for Slack buttons."""
        from monitor.ops import HealthCheck, start_metrics_server

        if self.mode is not Mode.LIVE:
            raise RuntimeError("a simulated worker runs with run_simulated(), not on the wall clock")
        if self.worker.membership is not None:
            self.worker.membership.join()  # WorkerRefused: a second worker on one SQLite store
        self._start_delivery()
        if self.metrics is not None:
            notifier = self.pipeline.notifier
            delivery = notifier.status.report if isinstance(notifier, SlackNotifier) else None
            health = HealthCheck(self.metrics, pass_interval=timedelta(seconds=self.settings.pass_seconds),
                                 delivery=delivery,
                                 worker=self.worker.membership.status if self.worker.membership else None,
                                 config=self.live_config.states if self.live_config is not None else None,
                                 sentiment=getattr(self.pipeline.model, "encoder_status", None))
            self.metrics_server = start_metrics_server(self.metrics, self.settings.metrics_port,
                                                       self.settings.metrics_host, health=health)
        self.worker.start()
        if self.listener is not None:
            self.listener.start()
        if self.console is not None:
            self.console.start()

    def reload_now(self) -> None:
        """SIGHUP: re-read the configuration files at once (on the worker's scheduler thread)."""
        if self.live_config is not None and self.worker.scheduler.running:
            self.worker.scheduler.modify_job("reload", next_run_time=datetime.now(self.worker.scheduler.timezone),
                                             kwargs={"force": True})

    def _start_delivery(self) -> None:
        """Blocked notifications are due again at every start, and Slack is checked now and every few minutes
        (on the scheduler: a Slack that does not answer never delays or stops the start)."""
        from monitor.notify.factory import check_delivery
        from monitor.store import mentions, outbox, transaction

        with transaction(self.engine) as conn:
            released = outbox.release_blocked(conn)
            if conn.dialect.name == "sqlite":  # one worker per SQLite store: every claim is a dead run's
                outbox.release_claims_by(conn)
                mentions.release_claims_by(conn)
        if released:
            log.info("%d blocked notification(s) will be tried again now", released)
        notifier = self.pipeline.notifier
        if isinstance(notifier, SlackNotifier):
            if self.metrics is not None:
                notifier.status.register(self.metrics.registry)
            scheduler = self.worker.scheduler

            def check() -> None:
                # The procedure in force at each check: a reloaded escalation.yaml may name new channels.
                check_delivery(self.settings, notifier, self.pipeline.escalation.config)
                if notifier.status.unreachable and scheduler.running:
                    # Slack did not answer: ask again soon, so /healthz clears soon after it is back.
                    with contextlib.suppress(JobLookupError):
                        scheduler.modify_job("slack-check", next_run_time=datetime.now(scheduler.timezone)
                                             + SLACK_RECHECK_DURING_OUTAGE)

            scheduler.add_job(self.worker.guard("Slack check", check), "interval",
                              seconds=SLACK_CHECK_EVERY.total_seconds(), id="slack-check", name="Slack check",
                              next_run_time=datetime.now(scheduler.timezone))

    def stop(self, timeout: float = 10.0) -> bool:
        """Buttons and console first (no click lands in a stopping worker), then the current chunk
        finishes, for at most ``timeout`` seconds; False when work was still running then (see ``Worker.stop``)."""
        if self.console is not None:
            self.console.stop()
        if self.listener is not None:
            self.listener.stop()
        clean = self.worker.stop(timeout)
        if self.metrics_server is not None:
            self.metrics_server.stop()
        return clean

    def run_simulated(self, clock: FakeClock, *, step: timedelta, until: datetime, drain: bool = True) -> None:
        """SIMULATED: see ``Worker.run_simulated``; ``clock`` must be the one given to ``build_worker``."""
        if self.mode is not Mode.SIMULATED or clock is not self.pipeline.clock:
            raise RuntimeError("run_simulated needs a SIMULATED worker built on this clock")
        self.worker.run_simulated(clock, step=step, until=until, drain=drain)


def build_worker(settings: Settings, clock: Clock, *, mode: Mode = Mode.LIVE, sources: SourcePlan = SourcePlan(),
                 notifier: Notifier | None = None, engine: Engine | None = None,
                 model: SentimentModel | None = None,
                 escalation_config: EscalationConfig | None = None) -> AssembledWorker:
    """The whole worker for ``settings``; nothing runs until ``start()`` or ``run_simulated()``.

    ``notifier`` defaults to Slack when a bot token is set (LIVE), else the
    console. ``engine``, ``model`` and ``escalation_config`` default to what the
    settings name. Raises ``ConfigInvalid`` when the rules or the escalation
    file are broken.
    """
    from monitor.configuration import rules_fit
    from monitor.i18n import check_catalogs
    from monitor.notify.factory import build_notifier, slack_client

    # Every file is read before the store is touched: a broken start changes nothing (no migration).
    escalation_config = escalation_config or load_escalation(settings.escalation_file)
    check_catalogs()  # a broken install fails here, not on the first alert in Dutch
    rules = RuleReloader(settings.rules_dir, fits=rules_fit(settings, sources.collect_file))
    engine = engine or open_store(settings.db_url)
    live = mode is Mode.LIVE
    client: WebClient | None = None
    membership: Membership | None = None
    if live:
        # One of possibly several workers on this store; on SQLite refused now, before the model loads.
        membership = Membership(engine, clock, LeaseTiming.for_lease(timedelta(seconds=settings.lease_seconds)))
        membership.check_sqlite_alone()
    worker_id = membership.id if membership is not None else None  # holds its scoring and sending claims
    if notifier is None:
        # The demo too delivers to Slack when SLACK_BOT_TOKEN is set: a team sees real alerts in its own
        # workspace before going live. Without a token, both modes print to the console.
        client = slack_client(settings)
        notifier = (build_notifier(settings, engine, escalation_config, clock=clock, client=client,
                                   claimant=worker_id)
                    if client is not None else ConsoleNotifier(sys.stdout))
    metrics: Metrics | None = None
    if live:
        metrics = Metrics(clock=clock.now)
        metrics.watch_store(engine, unhealthy_after=sources.unhealthy_after)
    pipeline = build_pipeline(settings, notifier=notifier, clock=clock, engine=engine, model=model,
                              escalation_config=escalation_config, watched_sources=sources.watched,
                              unhealthy_after=sources.unhealthy_after, metrics=metrics, rules=rules,
                              worker_id=worker_id, claim_ttl=membership.timing.ttl if membership else None)
    pipeline.absence = sources.absence
    worker = Worker(pipeline, sources.sources, timezone=settings.timezone,
                    poll_every=timedelta(seconds=settings.poll_seconds),
                    pass_every=timedelta(seconds=settings.pass_seconds), membership=membership)
    if metrics is not None and membership is not None:
        metrics.watch_worker(membership.status)
    assembled = AssembledWorker(settings, mode, engine, pipeline, worker, metrics)
    if live:
        assembled.listener = _schedule_wall_clock_jobs(assembled, clock, client)
        assembled.live_config = _watch_configuration(assembled, sources, clock)
    if live and settings.console_enabled:
        from monitor.console.server import console_server

        # The worker's model (no second copy in memory); a console action and a tick lock the incident's row.
        assembled.console = console_server(settings, engine, clock, model=pipeline.model, on_applied=worker.pass_soon,
                                           collect_file=sources.collect_file)
    return assembled


def _watch_configuration(assembled: AssembledWorker, plan: SourcePlan, clock: Clock) -> LiveConfig:
    """The reload job: every pass interval, and at once on SIGHUP or ``monitor reload``."""
    from monitor.live_config import LiveConfig, changed_targets
    from monitor.sources.factory import build_sources
    from monitor.sources.schema import CollectConfig
    from monitor.store import mentions as mention_repo
    from monitor.store import transaction

    settings, pipeline, worker = assembled.settings, assembled.pipeline, assembled.worker
    replayed = [s for s in plan.sources if isinstance(s, ReplaySource)]

    def on_collect(old: CollectConfig, new: CollectConfig) -> None:
        with transaction(assembled.engine) as conn:
            for name, before, after in changed_targets(old, new):
                mention_repo.reset_cursor(conn, name)
                log.warning("%s: what it collects changed (%r -> %r); it starts a new cursor", name, before, after)
        sources = [*build_sources(new, settings), *replayed]
        with worker.pass_lock:
            pipeline.watched_sources = SourcePlan(tuple(sources)).watched
            pipeline.unhealthy_after = new.source_unhealthy_after
            pipeline.absence = absence_of(new)
        worker.replace_sources(sources)
        log.info("monitor.yaml reloaded: %d source(s)", len(sources))

    live = LiveConfig(engine=assembled.engine, escalation=pipeline.escalation,
                      escalation_file=settings.escalation_file, rules=pipeline.rules, on_rules=pipeline.apply_rules,
                      now=clock.now, collect_file=plan.collect_file, on_collect=on_collect,
                      on_escalation=getattr(pipeline.notifier, "use_config", None))

    def run(force: bool = False) -> None:
        with worker.pass_lock:  # a new procedure never lands in the middle of a tick or a button click
            live.run(force=force)
        if assembled.metrics is not None:
            for state in live.states():
                assembled.metrics.config_valid.labels(state.kind).set(0 if state.errors else 1)

    # Guarded like every other job: with the store down, one line per pass, not a traceback.
    worker.scheduler.add_job(worker.guard("configuration reload", run), "interval",
                             seconds=worker.pass_every.total_seconds(), id="reload",
                             name="configuration reload", kwargs={"force": False})
    return live


def _schedule_wall_clock_jobs(assembled: AssembledWorker, clock: Clock,
                              client: WebClient | None) -> SlackActionListener | None:
    """The purge and the digest on the worker's scheduler; returns the Slack button listener, if any."""
    from monitor.digest.job import schedule_weekly_digest
    from monitor.digest.slack import ConsolePoster, DigestPoster, SlackPoster
    from monitor.notify.factory import build_action_listener
    from monitor.privacy import schedule_purge

    settings, engine, worker = assembled.settings, assembled.engine, assembled.worker
    # Under the pass lock: a pass must not copy a post into a notification while the purge removes it.
    periods = worker.membership  # several workers: each run once across them
    schedule_purge(worker.scheduler, engine, settings, clock, settings.timezone, lock=worker.pass_lock,
                   periods=periods)
    poster: DigestPoster = ConsolePoster()
    if client is not None and settings.slack_channel:
        poster = SlackPoster(client, settings.slack_channel, once_per_week=True)
    pipeline = assembled.pipeline
    hour, minute = (int(part) for part in settings.digest_time.split(":"))
    schedule_weekly_digest(worker.scheduler, engine, lambda: pipeline.escalation.config, poster, clock,
                           timezone=settings.timezone, day_of_week=settings.digest_day, hour=hour, minute=minute,
                           periods=periods)
    # No pass lock around clicks: the incident's row lock orders a click and a tick, on this worker or another.
    return build_action_listener(settings, assembled.pipeline.notifier, assembled.pipeline.escalation,
                                 on_applied=worker.pass_soon)
