"""The long-running worker: APScheduler jobs around one ``Pipeline``.

Schedules run in an explicit IANA zone (never the host's), each job with
``coalesce=True`` and ``max_instances=1`` so a slow poll cannot pile up runs.
A failing job logs one line and runs again at its next interval: an API
outage must never stop the other sources or the escalation timers.

In simulated time (``run_simulated``: the demo and the end-to-end tests) the
same poll and pass steps run in lockstep with a fake clock on the caller's
thread, with no scheduler: what the tests check is what ``monitor demo`` does.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler

from monitor.clock import FakeClock
from monitor.pipeline import Pipeline
from monitor.sources import Source

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, pipeline: Pipeline, sources: Sequence[Source], *, timezone: str,
                 poll_every: timedelta, pass_every: timedelta) -> None:
        self.pipeline = pipeline
        self.sources = list(sources)
        self.scheduler = BackgroundScheduler(
            timezone=ZoneInfo(timezone),
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        )
        self.poll_every = poll_every
        self.pass_every = pass_every
        self.exhausted: set[str] = set()
        self.passes = 0
        self.last_pass_idle = False
        self._exhausted_at_pass = 0
        # One pipeline pass at a time; Slack button clicks take it too, so a click and an
        # escalation tick never change the same incident at once.
        self.pass_lock = threading.RLock()
        self.stopped = threading.Event()

    def _guard(self, name: str, fn: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except Exception as exc:  # one bad run must not kill the schedule
                log.error("%s failed: %s: %s", name, type(exc).__name__, exc,
                          exc_info=log.isEnabledFor(logging.DEBUG))
        return run

    def _poll(self, source: Source) -> None:
        if source.name in self.exhausted:
            return
        result = self.pipeline.poll(source)
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

    def _schedule_poll(self, source: Source) -> None:
        every = getattr(source, "poll_every", None) or self.poll_every
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
        for source in self.sources:
            self._schedule_poll(source)
        self.scheduler.add_job(self._guard("pipeline pass", self._pass), "interval",
                               seconds=self.pass_every.total_seconds(), id="pass", name="pipeline pass")
        self.scheduler.start()
        log.info("worker started: %d source(s), timezone %s", len(self.sources), self.scheduler.timezone)

    def pass_soon(self) -> None:
        """Run the next pass now rather than at its interval (after a Slack button click: update Slack at once,
        still on the worker's own thread)."""
        self.scheduler.modify_job("pass", next_run_time=datetime.now(self.scheduler.timezone))

    def finished(self) -> bool:
        """True once every finite source is exhausted and a pass found nothing to do."""
        # A pass that began before the last poll stored its batch does not count.
        return (len(self.exhausted) == len(self.sources) and self.passes > self._exhausted_at_pass + 1
                and self.last_pass_idle)

    def stop(self) -> None:
        """Stop scheduling and wait for running jobs: the current batch finishes (SIGTERM)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.stopped.set()
