"""The long-running worker: APScheduler jobs around one ``Pipeline``.

Schedules run in an explicit IANA zone (never the host's), each job with
``coalesce=True`` and ``max_instances=1`` so a slow poll cannot pile up runs.
A failing job logs one line and runs again at its next interval: an API
outage must never stop the other sources or the escalation timers.

Live, the stages run apart so that alerting never waits for scoring:

* one poll job per source;
* the **alert** job (source health, escalation ticks, delivery) every
  ``alert_every``, under the pass lock, which a configuration reload and the purge
  take too (in-process state); Slack clicks do not: the store's row locks order a
  click and a tick, on this worker or on another;
* the **scoring** thread: woken when a poll stored something (or every
  ``pass_every``), it classifies in bounded chunks, newest and shortest first,
  for at most ``score_budget`` per run, detection following each chunk (under
  the pass lock: it opens incidents), then goes on at once while work is left.
  A thread rather than a job, so that "more to do" or "new posts" starts the
  next run without waiting for an interval, and SIGTERM is seen between chunks.

With a ``Membership`` (``monitor run``), the worker is one of several on the
store: a poll job polls only while it holds its source's lease, detection runs
only on the worker holding the ``detect`` lease (the rule windows live in that
process's memory; a worker taking the lease over rebuilds them from the store),
and a heartbeat job renews the leases (``monitor.membership``). Without one (the
demo, the tests, SQLite-only tools), it does everything itself.

In simulated time (``run_simulated``: the demo and the end-to-end tests) the
same poll and pass steps run in lockstep with a fake clock on the caller's
thread, with no scheduler: what the tests check is what ``monitor demo`` does.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from monitor.clock import FakeClock
from monitor.detect import RuleEngine
from monitor.membership import Membership
from monitor.pipeline import Pipeline
from monitor.redact import describe
from monitor.sources import Source
from monitor.store.cluster import DETECT, source_lease

log = logging.getLogger(__name__)
DEFAULT_ALERT_EVERY = timedelta(seconds=5)
DEFAULT_SCORE_BUDGET = timedelta(seconds=5)


class Worker:
    def __init__(self, pipeline: Pipeline, sources: Sequence[Source], *, timezone: str,
                 poll_every: timedelta, pass_every: timedelta, alert_every: timedelta | None = None,
                 score_budget: timedelta | None = None, membership: Membership | None = None) -> None:
        self.pipeline = pipeline
        self.membership = membership
        self.sources = list(sources)
        self.scheduler = BackgroundScheduler(
            timezone=ZoneInfo(timezone),
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        )
        self.poll_every = poll_every
        self.pass_every = pass_every
        self.alert_every = alert_every or min(pass_every, DEFAULT_ALERT_EVERY)
        self.score_budget = score_budget or min(pass_every, DEFAULT_SCORE_BUDGET)
        self.exhausted: set[str] = set()
        self.passes = 0
        self.last_pass_idle = False
        self._exhausted_at_pass = 0
        # One pipeline pass at a time, never beside a reload of the configuration or a purge chunk.
        # Clicks do not take it: the store locks the incident's row (a click may reach any worker).
        self.pass_lock = threading.RLock()
        self.stopped = threading.Event()
        self._wake = threading.Event()  # new posts stored: score now
        self._scorer: threading.Thread | None = None
        self._running = 0  # scheduler jobs in progress (stop() waits for them, up to a limit)
        self._running_changed = threading.Condition()

    def guard(self, name: str, fn: Callable[..., Any]) -> Callable[..., None]:
        """Public name of ``_guard``, for the jobs ``monitor.app`` adds (reload, Slack check)."""
        return self._guard(name, fn)

    def _guard(self, name: str, fn: Callable[..., Any]) -> Callable[..., None]:
        """``fn`` as a scheduler job: one log line when it fails (the store down: no 100-line traceback),
        and counted as running, so that ``stop`` waits for it. Arguments are passed through."""
        def run(*args: Any, **kwargs: Any) -> None:
            if self.stopped.is_set():
                return
            with self._running_changed:
                self._running += 1
            try:
                fn(*args, **kwargs)
            except Exception as exc:  # one bad run must not kill the schedule
                log.error("%s failed: %s", name, describe(exc), exc_info=log.isEnabledFor(logging.DEBUG))
            finally:
                with self._running_changed:
                    self._running -= 1
                    self._running_changed.notify_all()
        return run

    def _poll(self, source: Source) -> None:
        if source.name in self.exhausted:
            return
        if self.membership is not None and not self._may_take(source):
            return  # another live worker polls it (or this one has its share); tried again at the next interval
        result = self.pipeline.poll(source)
        if result.new:
            self._wake.set()
        if result.exhausted and source.name not in self.exhausted:
            self.exhausted.add(source.name)
            self._exhausted_at_pass = self.passes

    def _pass(self) -> None:
        with self.pass_lock:
            stats = self.pipeline.run_pass()
            self.passes += 1
            self.last_pass_idle = stats.idle

    def step(self) -> None:
        """Poll every source, then run a pass, in this order, on the caller's thread."""
        for source in self.sources:
            self._poll(source)
        self._pass()

    def run_simulated(self, clock: FakeClock, *, step: timedelta, until: datetime, drain: bool = True) -> None:
        """Simulated time (the demo, the end-to-end tests): move ``clock`` by ``step``, then ``step()``;
        repeat until the clock reaches ``until``.

        The clock moves only between steps, so no stage ever sees posts "from the future" or a clock
        that ran ahead of the data. ``drain`` then keeps stepping, the clock still, until every
        source is exhausted and a pass found nothing left (finite sources only: a replayed feed).
        """
        while clock.now() < until:
            clock.advance(step)
            self.step()
        while drain and not self.finished():
            self.step()

    def _alert(self) -> None:
        with self.pass_lock:
            if self.membership is None:
                self.pipeline.alert()
            else:  # the source-health check once across the workers
                self.pipeline.alert(health_turn=self.membership.take_turn)

    def _may_detect(self) -> bool:
        """True when this worker runs the rules now: it holds (or just took) the ``detect`` lease.

        A worker taking the lease over rebuilds its windows from the store first
        (``Pipeline.warm_up``): what it counted while it last held the lease is stale.
        """
        if self.membership is None:
            return True
        had = self.membership.holds(DETECT)
        if not self.membership.acquire(DETECT):
            return False
        if not had:
            self.pipeline.detector = RuleEngine(self.pipeline.rules.current.rules)
            self.pipeline.warm_up()
        return True

    def _beat(self) -> None:
        """Renew what this worker holds, and take over any source whose worker died (its lease expired):
        polled at once rather than at this worker's next poll of it, so a take-over costs about one
        interval (the lease's expiry), not two."""
        assert self.membership is not None
        self.membership.beat()
        active = [s for s in self.sources if s.name not in self.exhausted]
        share = self.membership.fair_share(len(active))
        mine = [s for s in active if self.membership.holds(source_lease(s.name))]
        for source in mine[share:]:  # more than this worker's share (a worker joined): hand the rest over
            self.membership.release(source_lease(source.name))
            log.info("handed source %s over to another worker (%d live, %d each)", source.name,
                     self.membership.live_peers, share)
        for source in active:
            lease = source_lease(source.name)
            if self.membership.holds(lease):
                continue
            if self._may_take(source) and self.scheduler.running:
                log.info("took over source %s", source.name)
                with contextlib.suppress(JobLookupError):
                    self.scheduler.modify_job(f"poll:{source.name}",
                                              next_run_time=datetime.now(self.scheduler.timezone))

    def _may_take(self, source: Source) -> bool:
        """Hold (or renew) ``source``'s lease: always when this worker has it, else only while it holds fewer
        sources than its fair share (``Membership.fair_share``), so that N workers split the sources evenly
        instead of the first one taking them all."""
        assert self.membership is not None
        lease = source_lease(source.name)
        if not self.membership.holds(lease):
            active = [s for s in self.sources if s.name not in self.exhausted]
            held = sum(self.membership.holds(source_lease(s.name)) for s in active)
            if held >= self.membership.fair_share(len(active)):
                return False
        return self.membership.acquire(lease)

    def _score_loop(self) -> None:
        """The scoring thread (see the module docstring); ends within one chunk of ``stop()``."""
        budget = self.score_budget.total_seconds()
        while not self.stopped.is_set():
            self._wake.wait(self.pass_every.total_seconds())
            if self.stopped.is_set():
                break
            self._wake.clear()
            try:
                stats = self.pipeline.score_for(budget, should_stop=self.stopped.is_set, lock=self.pass_lock,
                                                detect=self._may_detect())
            except Exception as exc:  # the store or the model failed: log, and try again at the next wake-up
                log.error("scoring failed: %s", describe(exc), exc_info=log.isEnabledFor(logging.DEBUG))
                continue
            if stats.incidents_opened:
                self.pass_soon()  # deliver the new alert now, not at the next interval
            if stats.scored:
                self._wake.set()  # the budget ran out with work left: go on

    def _interval(self, source: Source) -> timedelta:
        every = getattr(source, "poll_every", None) or self.poll_every
        assert isinstance(every, timedelta)
        return every

    def _schedule_poll(self, source: Source) -> None:
        every = self._interval(source)
        self.scheduler.add_job(self._guard(f"poll {source.name}", functools.partial(self._poll, source)),
                               "interval", seconds=every.total_seconds(), id=f"poll:{source.name}",
                               name=f"poll {source.name}", next_run_time=datetime.now(self.scheduler.timezone),
                               replace_existing=True)

    def replace_sources(self, sources: Sequence[Source]) -> None:
        """A changed monitor.yaml: poll these from now on. Cursors and budgets are stored by source name,
        so a source that stays (or comes back) continues where it was."""
        wanted = {s.name: s for s in sources}
        for old in self.sources:
            if old.name not in wanted and self.scheduler.get_job(f"poll:{old.name}") is not None:
                self.scheduler.remove_job(f"poll:{old.name}")
        self.sources = list(sources)
        if self.scheduler.running:
            for source in self.sources:
                self._schedule_poll(source)

    def start(self) -> None:
        if self.membership is not None:
            self.scheduler.add_job(self._guard("heartbeat", self._beat), "interval",
                                   seconds=self.membership.timing.heartbeat_every.total_seconds(), id="heartbeat",
                                   name="heartbeat")
        for source in self.sources:
            self._schedule_poll(source)
        self.scheduler.add_job(self._guard("alerting", self._alert), "interval",
                               seconds=self.alert_every.total_seconds(), id="alert", name="alerting")
        self.scheduler.start()
        self._scorer = threading.Thread(target=self._score_loop, name="scoring", daemon=True)
        self._wake.set()  # score what a previous run left behind at once
        self._scorer.start()
        log.info("worker started: %d source(s), timezone %s", len(self.sources), self.scheduler.timezone)

    def pass_soon(self) -> None:
        """Run the alerting job now rather than at its interval (a new incident, a Slack button click:
        update Slack at once, still on the worker's own thread)."""
        if self.scheduler.running and not self.stopped.is_set():
            with contextlib.suppress(JobLookupError):
                self.scheduler.modify_job("alert", next_run_time=datetime.now(self.scheduler.timezone))

    def finished(self) -> bool:
        """True once every finite source is exhausted and a pass found nothing to do."""
        # A pass that began before the last poll stored its batch does not count.
        return (len(self.exhausted) == len(self.sources) and self.passes > self._exhausted_at_pass + 1
                and self.last_pass_idle)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop scheduling and let running work finish, for at most ``timeout`` seconds (SIGTERM).

        Returns False when a job was still running at the deadline (a poll stuck in a
        slow API): the caller may then exit anyway, since every step commits its work
        with its watermark in one transaction and a cut-off one is simply redone.
        """
        self.stopped.set()
        self._wake.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + timeout
        if self._scorer is not None:
            self._scorer.join(max(0.0, deadline - time.monotonic()))
        with self._running_changed:
            while self._running and time.monotonic() < deadline:
                self._running_changed.wait(max(0.0, deadline - time.monotonic()))
            clean = not self._running
        if self.membership is not None:
            self.membership.leave()  # released at once: another worker takes over now, not at expiry
        return clean and not (self._scorer is not None and self._scorer.is_alive())
