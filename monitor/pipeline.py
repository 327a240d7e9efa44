"""One pass of the pipeline: store -> classify -> rules -> escalation -> notify.

Each step reads its input from the store and writes its output back in one
transaction with its watermark, so any step can crash and be re-run: nothing
is skipped and nothing is done twice. The worker schedules these steps; the
demo, the tests and the backtest call the same methods. ``monitor.app``
builds it, with everything it needs passed to the constructor.

Several pipelines (workers) may share one store: scoring claims its batches
(``mentions.claim_unscored``), detection runs one batch at a time across them
(``incidents.lock_grouping``), incident changes lock their row and delivery
claims each notification (``outbox.claim``), so each is done once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from monitor.classify import LanguageDetector, SentimentModel
from monitor.classify.calibration import Calibration
from monitor.classify.thresholds import thresholds_of
from monitor.clock import Clock
from monitor.detect import RuleEngine, RuleReloader, RuleSet
from monitor.escalation import EscalationEngine
from monitor.escalation.plan import hours_of
from monitor.i18n import translator
from monitor.models import SentimentScores, Signal
from monitor.notify import Notifier, deliver_pending
from monitor.redact import describe
from monitor.sources import PollResult, Source
from monitor.sources.health import Absence, absence_signals, health_signals
from monitor.sources.polling import poll_source
from monitor.store import feedback as feedback_repo
from monitor.store import incidents as incident_repo
from monitor.store import mentions as mention_repo
from monitor.store import outbox as outbox_repo
from monitor.store import quarantine as quarantine_repo
from monitor.store import transaction

if TYPE_CHECKING:
    from monitor.ops.metrics import Metrics

log = logging.getLogger(__name__)
MAX_LOOKBACK = timedelta(days=8)
# (conn, turn name, now, every) -> True when nobody took this turn within ``every`` (``Membership.take_turn``).
HealthTurn = Callable[[Connection, str, datetime, timedelta], bool]
CHUNK_CHARS = 4_000  # characters per live classification chunk (a post counts up to this much)


@dataclass(slots=True)
class PassStats:
    scored: int = 0
    detected: int = 0
    signals: list[Signal] = field(default_factory=list)
    incidents_opened: int = 0
    actions: int = 0
    delivered: int = 0

    @property
    def idle(self) -> bool:
        return not (self.scored or self.detected or self.actions or self.delivered)


class Pipeline:
    def __init__(
        self,
        *,
        engine: Engine,
        model: SentimentModel,
        languages: LanguageDetector,
        rules: RuleReloader,
        escalation: EscalationEngine,
        notifier: Notifier,
        clock: Clock,
        batch_size: int = 256,
        watched_sources: Sequence[Source] = (),
        unhealthy_after: timedelta = timedelta(hours=2),
        metrics: Metrics | None = None,
        worker_id: str | None = None,
        claim_ttl: timedelta | None = None,
    ) -> None:
        """``watched_sources``: the live sources whose long failures become incidents (after
        ``unhealthy_after``); ``metrics``: the Prometheus hooks (``monitor.ops.metrics``), None counts
        nothing; ``worker_id``: who holds this pipeline's claims (default host:pid); ``claim_ttl``: how
        long a sending claim lasts unrenewed (the worker's lease; default ``outbox.CLAIM_TTL``). ``monitor.app``
        decides all of them; nothing is set after construction."""
        self.engine = engine
        self.model = model
        self.languages = languages
        self.rules = rules
        self.detector = RuleEngine(rules.current.rules, thresholds_of(model))
        self.escalation = escalation
        self.notifier = notifier
        self.clock = clock
        self.batch_size = batch_size
        self._warmed = False
        self._calibration: Calibration | None = None
        self.watched_sources = list(watched_sources)
        self.unhealthy_after = unhealthy_after
        self.absence = Absence()  # monitor.app sets monitor.yaml's source_absence
        self._health_reported: dict[str, datetime] = {}
        self.metrics = metrics
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.claim_ttl = claim_ttl or outbox_repo.CLAIM_TTL

    # --- source -> store ------------------------------------------------------------------------
    def poll(self, source: Source) -> PollResult:
        """Fetch, store and record health; a failing API is logged as one line and never raises."""
        result = poll_source(self.engine, source, self.clock.now)
        if self.metrics is not None:
            self.metrics.observe_poll(source.name, result)
        return result

    # --- store -> classify ----------------------------------------------------------------------
    def classify_pending(self) -> int:
        """The oldest ``batch_size`` unscored mentions (lockstep mode: the demo, the tests, the backtest)."""
        with transaction(self.engine) as conn:
            rows = mention_repo.claim_unscored(conn, self.batch_size, worker=self.worker_id, now=self.clock.now())
        return self._score(rows)

    def classify_newest(self, max_chars: int = CHUNK_CHARS) -> int:
        """One bounded chunk for the live worker: the shortest of the newest unscored posts.

        Newest first because a fresh post is the one somebody can still answer, and a
        backlog is old by definition; shortest first within the newest ``batch_size``
        because scoring cost grows with length, so a short complaint never waits behind
        a page of long posts. The chunk stops at ``max_chars`` characters (at least one
        post), so one call takes a bounded time whatever the backlog; long posts are
        scored when nothing newer or shorter is waiting.
        """
        def pick(rows: list[Any]) -> list[Any]:
            chunk: list[Any] = []
            size = 0
            for r in sorted(rows, key=lambda r: len(r.text)):
                if chunk and size + min(len(r.text), CHUNK_CHARS) > max_chars:
                    break
                chunk.append(r)
                size += min(len(r.text), CHUNK_CHARS)
            return chunk

        with transaction(self.engine) as conn:
            chunk = mention_repo.claim_unscored(conn, self.batch_size, worker=self.worker_id, now=self.clock.now(),
                                                newest_first=True, pick=pick)
        return self._score(chunk)

    def _score(self, rows: Sequence[Any]) -> int:
        """Score claimed rows; when that fails, the claim is let go at once rather than left to lapse."""
        if not rows:
            return 0
        try:
            return self._score_claimed(rows)
        except Exception:
            with contextlib.suppress(Exception), transaction(self.engine) as conn:
                mention_repo.release_claims(conn, [r.id for r in rows])
            raise

    def _score_claimed(self, rows: Sequence[Any]) -> int:
        started = time.perf_counter()
        with transaction(self.engine) as conn:
            calibration = self._calibration_in_force(conn)
            cached = feedback_repo.base_scores(conn, (r.text_hash for r in rows), self.model.name,
                                               self.model.version)
        todo: dict[str, str] = {}
        for r in rows:
            if r.text_hash not in cached:
                todo.setdefault(r.text_hash, r.text)
        failed: dict[str, str] = {}
        if todo:
            scores, failed = self._predict(todo)
            cached.update(scores)
        kept = [r for r in rows if r.text_hash in cached]
        languages = [(r.id, lang) for r in kept if r.language is None
                     for lang in [self.languages.detect(r.text)] if lang is not None]
        language_of = {r.id: r.language for r in kept} | dict(languages)
        final = [(r.id, cached[r.text_hash] if calibration is None
                   else calibration.apply(cached[r.text_hash], language_of[r.id], r.brand)) for r in kept]
        now = self.clock.now()
        with transaction(self.engine) as conn:
            mention_repo.set_languages(conn, languages)
            mention_repo.save_scores(conn, final, self.model.name, self.model.version, now,
                                     calibration=calibration.version if calibration is not None else None)
            for r in rows:
                if r.text_hash in failed:
                    quarantine_repo.add(conn, quarantine_repo.Quarantined(
                        r.source, r.source_id, quarantine_repo.CLASSIFY, failed[r.text_hash], now, r.id))
                    log.warning("%s: post %s quarantined: %s", r.source, r.source_id, failed[r.text_hash])
            # Out of the backlog for good: the rules never see a post without a score.
            mention_repo.mark_detected(conn, [r.id for r in rows if r.text_hash in failed], now)
            mention_repo.release_claims(conn, [r.id for r in rows])
        if self.metrics is not None:
            self.metrics.observe_classification(time.perf_counter() - started, len(rows))
        return len(rows)

    def _calibration_in_force(self, conn: Connection) -> Calibration | None:
        """The calibration ``monitor tune --apply`` put in force, read from the store before each chunk.

        One indexed read per chunk: an apply or a rollback reaches every worker with the next
        post it scores, without a restart and without touching a score already stored.
        """
        version = feedback_repo.active_version(conn)
        if version != (self._calibration.version if self._calibration is not None else None):
            found = feedback_repo.calibrations_by_version(conn, [version]) if version is not None else {}
            self._calibration = found.get(version) if version is not None else None
            log.info("sentiment calibration %s in force", version if version is not None else "none (model alone)")
        return self._calibration

    def _predict(self, texts: dict[str, str]) -> tuple[dict[str, SentimentScores], dict[str, str]]:
        """Scores by text hash, and the reason for each text the model could not score.

        The whole batch first; only if that fails, text by text, so one text the
        model chokes on is quarantined instead of blocking every later batch.
        """
        try:
            return dict(zip(texts, self.model.predict(list(texts.values())), strict=True)), {}
        except Exception as exc:
            log.warning("classification of %d text(s) failed (%s); scoring them one by one", len(texts),
                        describe(exc))
        scores: dict[str, SentimentScores] = {}
        failed: dict[str, str] = {}
        for key, text in texts.items():
            try:
                [scores[key]] = self.model.predict([text])
            except Exception as exc:
                failed[key] = describe(exc)
        return scores, failed

    # --- classify -> rules -> escalation --------------------------------------------------------
    def warm_up(self) -> None:
        """Rebuild window and realert state from the store after a (re)start."""
        since = self.clock.now() - MAX_LOOKBACK
        with transaction(self.engine) as conn:
            history = mention_repo.detected_since(conn, since)
            fired = incident_repo.last_signals(conn, since)
        for sm in history:
            self.detector.process(sm, emit=False)
        for rule, group, when in fired:
            self.detector.seed_last_fired(rule, group, when)
        self._warmed = True

    def apply_rules(self, rules: RuleSet) -> None:
        """A new valid rule set (``monitor.live_config``): rules that still exist keep their windows."""
        self.detector.replace_rules(rules.rules)

    def detect_pending(self) -> tuple[int, list[Signal], int]:
        if not self._warmed:
            self.warm_up()
        with transaction(self.engine) as conn:
            # One detector at a time across workers: a batch is never detected twice, even while the
            # `detect` lease changes hands (windows stay right only with one holder: the lease's job).
            incident_repo.lock_grouping(conn)
            batch = mention_repo.undetected(conn, self.batch_size)
            if not batch:
                return 0, [], 0
            signals: list[Signal] = []
            for sm in batch:
                signals.extend(self.detector.process(sm, follow_ups=True))
            now = self.clock.now()
            opened = self.escalation.ingest(conn, signals, now)
            mention_repo.mark_detected(conn, [sm.id for sm in batch], now)
        return len(batch), signals, len(opened)

    def check_sources(self, health_turn: HealthTurn | None = None) -> int:
        """Turn long-failing and unusually silent sources into source-health signals (once per grouping
        window each; silence is measured in business time, ``sources.health.absence_signals``).

        ``health_turn`` (several workers: ``Membership.take_turn``) makes "once per window" hold across
        the cluster, in the transaction that ingests the signal; alone, this process's memory does."""
        if not self.watched_sources:
            return 0
        now = self.clock.now()
        window = self.escalation.config.grouping.window
        with transaction(self.engine) as conn:
            config = self.escalation.config
            said = translator(config.locale, config.timezone)
            found = health_signals(conn, self.watched_sources, now, self.unhealthy_after, said) + absence_signals(
                conn, self.watched_sources, now, hours_of(config), self.absence, said)
            fresh = [s for s in found
                     if now - self._health_reported.get(s.group_key, datetime.min.replace(tzinfo=UTC)) >= window
                     and (health_turn is None or health_turn(conn, f"source-health:{s.group_key}", now, window))]
            if fresh:
                self.escalation.ingest(conn, fresh, now)
        for s in fresh:
            self._health_reported[s.group_key] = now
            log.warning("source health: %s", s.reason)
        return len(fresh)

    # --- time and delivery ----------------------------------------------------------------------
    def tick(self) -> int:
        with transaction(self.engine) as conn:
            return self.escalation.tick(conn, self.clock.now())

    def deliver(self) -> int:
        """The outbox sender, the last step of a pass: with metrics, it also marks the pass done."""
        on_sent = self.metrics.observe_sent if self.metrics is not None else None
        sent = deliver_pending(self.engine, self.notifier, self.clock.now(), on_sent=on_sent,
                               claimant=self.worker_id, claim_ttl=self.claim_ttl, clock=self.clock.now)
        if self.metrics is not None:
            self.metrics.pass_finished()
        return sent

    # --- the live worker's stages -----------------------------------------------------------------
    def score_for(self, seconds: float, *, should_stop: Callable[[], bool] = lambda: False,
                  lock: AbstractContextManager[Any] | None = None, detect: bool = True) -> PassStats:
        """Classify and detect in bounded chunks for about ``seconds``; what is left waits for the next run.

        The live worker's scoring stage (``Worker``), separate from ticks and delivery
        so that they never wait for the model. Detection follows each chunk, under
        ``lock`` (the worker's pass lock: it opens incidents, which clicks and ticks
        also change); the model itself runs without it. ``should_stop`` (SIGTERM) is
        checked between chunks.
        """
        stats = PassStats()
        deadline = time.monotonic() + seconds
        while not should_stop():
            scored = self.classify_newest()
            stats.scored += scored
            if detect:  # False: another worker holds the ``detect`` lease (``Worker``)
                with lock if lock is not None else contextlib.nullcontext():
                    self._detect_all(stats)
            if self.metrics is not None:
                self.metrics.stage_ran("score")
            if not scored or time.monotonic() >= deadline:
                break
        return stats

    def _detect_all(self, stats: PassStats) -> None:
        """Rules and escalation over every scored, undetected mention, batch by batch."""
        while True:
            detected, signals, opened = self.detect_pending()
            stats.detected += detected
            stats.signals.extend(signals)
            stats.incidents_opened += opened
            if detected < self.batch_size:
                break

    def alert(self, *, health_turn: HealthTurn | None = None) -> PassStats:
        """Source health, escalation timers and delivery: the live worker's alerting stage.

        Never waits for classification (``score_for`` runs on its own thread); the
        caller holds the pass lock."""
        stats = PassStats()
        self.check_sources(health_turn)
        stats.actions = self.tick()
        stats.delivered = self.deliver()
        if self.metrics is not None:
            self.metrics.stage_ran("alert")
        return stats

    def run_pass(self) -> PassStats:
        """Everything downstream of the store, until there is nothing left to do right now."""
        stats = PassStats()
        while True:
            scored = self.classify_pending()
            stats.scored += scored
            if scored < self.batch_size:
                break
        self._detect_all(stats)
        self.check_sources()
        stats.actions = self.tick()
        stats.delivered = self.deliver()
        return stats
