"""This process as one worker among several on a store: its identity, heartbeat and leases.

``store.cluster`` holds the rows; this is the process's side of them, which the
``Worker`` asks before doing something only one worker may do (poll a source,
run the rules, post the weekly digest).

Timing (``LeaseTiming.for_lease``): a lease lives ``MONITOR_LEASE_SECONDS``
(30 s), whatever the poll interval, and is renewed by the heartbeat every third
of that. A worker that dies, or freezes, stops renewing; its leases expire at
most one lease after its last heartbeat, and the next heartbeat of another
worker takes them over: within about one lease and a third. The lease also
bounds the worker's sending claims (``outbox.claim``), which are fenced: a
frozen worker that wakes up after that finds its claim gone and posts nothing.

Each worker also keeps its own view of what it holds, with the expiry it wrote:
when the store cannot be reached to renew, the worker stops acting at that
expiry, the moment another worker may take the lease.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Connection, Engine

from monitor import __version__
from monitor.clock import Clock
from monitor.redact import describe
from monitor.store import cluster, transaction
from monitor.store import mentions as mention_repo
from monitor.store import outbox as outbox_repo

log = logging.getLogger(__name__)
PRUNE_AFTER = timedelta(days=7)  # dead workers' rows are kept this long for `monitor workers` history


class WorkerRefused(RuntimeError):
    """This worker may not start on this store (a second live worker on SQLite); one line for the operator."""


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    ttl: timedelta  # how long a lease (and a heartbeat) counts without renewal
    heartbeat_every: timedelta

    @classmethod
    def for_lease(cls, lease: timedelta) -> LeaseTiming:
        """Heartbeat every third of the lease: two missed beats are survived, a frozen worker is replaced.

        The lease is its own setting rather than the poll interval: a pause (GC, VM,
        a slow database) shorter than the lease never makes a worker look dead, and a
        short poll interval no longer means a short lease."""
        return cls(ttl=lease, heartbeat_every=lease / 3)


class Membership:
    """One worker's identity and leases; thread-safe (the scheduler's jobs and the scoring thread share it)."""

    def __init__(self, engine: Engine, clock: Clock, timing: LeaseTiming, *, worker_id: str | None = None,
                 version: str = __version__) -> None:
        self.engine = engine
        self.clock = clock
        self.timing = timing
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = worker_id or cluster.new_worker_id(self.host, self.pid)
        self.version = version
        self._held: dict[str, datetime] = {}  # lease -> the expiry we last wrote
        self._ttls: dict[str, timedelta] = {}  # a lease's own TTL (a source polled less often than the default)
        self._lock = threading.Lock()
        self.live_peers = 1  # live workers on the store (this one included), as of the last heartbeat

    def fair_share(self, n: int) -> int:
        """How many of ``n`` shared things (sources) this worker should hold: ceil(n / live workers), so that
        together they hold all of them and none holds more than one over another."""
        return -(-n // max(1, self.live_peers))

    # --- joining and leaving --------------------------------------------------------------------
    def check_sqlite_alone(self) -> None:
        """Refuse early (before loading a model) when another worker is live on this SQLite store."""
        if self.engine.dialect.name != "sqlite":
            return
        with transaction(self.engine) as conn:
            self._refuse_others(conn)

    def join(self) -> None:
        """Register this worker; on SQLite, ``WorkerRefused`` if another one is live.

        The row is written *before* the check, in one transaction: SQLite takes its
        write lock at the insert, so of two workers starting together the second
        waits, then sees the first and gives up.
        """
        now = self.clock.now()
        with transaction(self.engine) as conn:
            cluster.register_worker(conn, self._info(now))
            if conn.dialect.name == "sqlite":
                self._refuse_others(conn)
            cluster.prune_workers(conn, now - PRUNE_AFTER)
        log.info("worker %s (version %s) joined the store", self.id, self.version)

    def _info(self, now: datetime) -> cluster.WorkerInfo:
        return cluster.WorkerInfo(self.id, self.host, self.pid, self.version, now, now,
                                  lease_seconds=self.timing.ttl.total_seconds())

    def _refuse_others(self, conn: Connection) -> None:
        now = self.clock.now()
        for other in cluster.live_workers(conn, now, self.timing.ttl):
            if other.id == self.id or (other.host == self.host and not _pid_alive(other.pid)):
                continue  # ourselves, or a worker of this machine that crashed moments ago
            ago = int((now - other.heartbeat_at).total_seconds())
            raise WorkerRefused(f"another worker ({other.id}, last heartbeat {ago} s ago) is running on this SQLite "
                                "store, and SQLite supports one worker: stop it, or use PostgreSQL for several")

    def leave(self) -> None:
        """A clean stop: every lease released at once, so the others take over now rather than at expiry."""
        with self._lock:
            self._held.clear()
        try:
            with transaction(self.engine) as conn:
                cluster.deregister_worker(conn, self.id)
        except Exception as exc:  # the store is down: the leases simply expire
            log.warning("worker %s: could not release its leases (%s); they expire by themselves",
                        self.id, type(exc).__name__)

    # --- heartbeat and leases ---------------------------------------------------------------------
    def beat(self) -> list[str]:
        """Heartbeat and renew every lease held; returns those still held (a lease taken over is dropped)."""
        now = self.clock.now()
        with self._lock:
            names = list(self._held)
        kept: dict[str, datetime] = {}
        with transaction(self.engine) as conn:
            if not cluster.heartbeat(conn, self.id, now):  # pruned while the store was unreachable: back in
                cluster.register_worker(conn, self._info(now))
            for name in names:
                ttl = self._ttls.get(name, self.timing.ttl)
                if cluster.acquire_lease(conn, name, self.id, now, ttl):
                    kept[name] = now + ttl
            self._free_claims_of_the_dead(conn, now)
            self.live_peers = max(1, len(cluster.live_workers(conn, now, self.timing.ttl)))
        with self._lock:
            for name in names:
                if name in kept:
                    self._held[name] = kept[name]
                elif self._held.pop(name, None) is not None:
                    log.warning("worker %s lost lease %s", self.id, name)
        return sorted(kept)

    def _free_claims_of_the_dead(self, conn: Connection, now: datetime) -> None:
        """Posts a dead worker was scoring and notifications it was sending are taken up now, not when
        their claims lapse: a killed worker delays its in-flight alert by about one lease TTL.
        A notification it may have sent keeps its attempts, so Slack is asked before posting again;
        one it was still sending when it froze is fenced (its token no longer matches when it wakes)."""
        dead = cluster.dead_workers(conn, now, self.timing.ttl)
        if not dead:
            return
        holding = sorted(outbox_repo.claimants_among(conn, dead) | mention_repo.claimants_among(conn, dead))
        if not holding:
            return
        freed = outbox_repo.release_claims_by(conn, holding) + mention_repo.release_claims_by(conn, holding)
        if freed:
            log.warning("freed %d claim(s) of worker(s) that stopped: %s", freed, ", ".join(holding))

    def acquire(self, name: str, ttl: timedelta | None = None) -> bool:
        """Take or renew ``name``; False when another live worker has it."""
        ttl = ttl or self.timing.ttl
        now = self.clock.now()
        with transaction(self.engine) as conn:
            got = cluster.acquire_lease(conn, name, self.id, now, ttl)
        with self._lock:
            if got:
                if name not in self._held:
                    log.info("worker %s took lease %s", self.id, name)
                self._held[name] = now + ttl
                self._ttls[name] = ttl
            else:
                self._held.pop(name, None)
        return got

    def holds(self, name: str) -> bool:
        with self._lock:
            expires = self._held.get(name)
        return expires is not None and self.clock.now() < expires

    def held(self) -> list[str]:
        now = self.clock.now()
        with self._lock:
            return sorted(n for n, exp in self._held.items() if now < exp)

    def release(self, name: str) -> None:
        with self._lock:
            self._held.pop(name, None)
        with transaction(self.engine) as conn:
            cluster.release_lease(conn, name, self.id)

    def take_turn(self, conn: Connection, name: str, now: datetime, every: timedelta) -> bool:
        """In the caller's transaction: True when nobody (this worker included) took ``name`` in the last ``every``."""
        return cluster.acquire_lease(conn, f"turn:{name}", self.id, now, every, renew=False)

    def claim_period(self, job: str, period_key: str) -> bool:
        """True on the one worker that runs ``job`` for ``period_key``; the others log and skip.

        A period claimed by a worker that died before ``finish_period`` is claimed again
        (rather twice than never): its heartbeat stops, and after one lease TTL it counts as dead.
        """
        with transaction(self.engine) as conn:
            won = cluster.claim_period(conn, job, period_key, self.id, self.clock.now(), stale_after=self.timing.ttl)
            by = None if won else cluster.period_claimed_by(conn, job, period_key)
        if not won:
            log.debug("%s for %s: claimed by worker %s", job, period_key, by)
        return won

    def finish_period(self, job: str, period_key: str) -> None:
        with transaction(self.engine) as conn:
            cluster.finish_period(conn, job, period_key, self.id, self.clock.now())

    def status(self) -> dict[str, Any]:
        """What ``/healthz`` shows of this worker."""
        return {"id": self.id, "host": self.host, "pid": self.pid, "version": self.version, "leases": self.held()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


# --- once-per-period jobs -------------------------------------------------------------------------


class PeriodClaims(Protocol):
    """Who runs a once-per-period job (``Membership``): claim before, finish after."""

    def claim_period(self, job: str, period_key: str) -> bool: ...

    def finish_period(self, job: str, period_key: str) -> None: ...


CATCH_UP_EVERY = timedelta(minutes=1)
T = TypeVar("T")


def schedule_once_per_period(scheduler: BaseScheduler, *, job_id: str, name: str, trigger: CronTrigger,
                             period_of: Callable[[datetime], str], run: Callable[[datetime], T],
                             clock: Clock, periods: PeriodClaims | None, grace: timedelta) -> Job:
    """Schedule ``run(now)`` on ``trigger``, once per period across the workers sharing the store.

    The weekly digest and the nightly purge go through here, so that both follow one rule:

    * one worker: the cron trigger alone, with ``grace`` as APScheduler's misfire grace;
    * several (``periods`` given): each run is claimed for ``period_of(now)`` and marked
      finished after ``run`` returns; a catch-up check every minute runs a period that is
      due (its trigger time within ``grace``) and not finished, and whose claimer is dead —
      a worker killed mid-digest is replaced by another within a minute or two. Rather twice
      than never: a worker killed between running and recording runs the job again (the purge is
      idempotent; the digest's Slack poster finds its week's summary before posting).
    """
    def once(now: datetime) -> T | None:
        key = period_of(now)
        if periods is not None and not periods.claim_period(job_id, key):
            return None
        result = run(now)
        if periods is not None:
            periods.finish_period(job_id, key)
        return result

    def on_time() -> T | None:
        try:
            return once(clock.now())
        except Exception as exc:  # the store down: one line, like every other job; the catch-up runs it later
            log.error("%s failed: %s", name, describe(exc), exc_info=log.isEnabledFor(logging.DEBUG))
            return None

    def catch_up() -> None:
        now = clock.now()
        due = trigger.get_next_fire_time(None, now - grace)
        if due is not None and due <= now:
            try:
                once(now)
            except Exception as exc:  # one line while PostgreSQL is down, not a traceback each minute
                log.error("%s (catch-up) failed: %s", name, describe(exc), exc_info=log.isEnabledFor(logging.DEBUG))

    job = scheduler.add_job(on_time, trigger, id=job_id, name=name, coalesce=True, max_instances=1,
                            misfire_grace_time=int(grace.total_seconds()), replace_existing=True)
    if periods is not None:
        scheduler.add_job(catch_up, "interval", seconds=CATCH_UP_EVERY.total_seconds(), id=f"{job_id}:catch-up",
                          name=f"{name} (catch-up)", coalesce=True, max_instances=1, replace_existing=True)
    return job
