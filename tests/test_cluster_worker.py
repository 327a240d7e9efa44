"""Several workers on one store: a dead worker's source is taken over from its cursor; periodic jobs run once."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from monitor.app import build_pipeline
from monitor.clock import FakeClock, SystemClock
from monitor.commands.workers import describe_workers
from monitor.digest.job import schedule_weekly_digest
from monitor.membership import LeaseTiming, Membership, WorkerRefused
from monitor.models import SentimentScores
from monitor.notify import ConsoleNotifier
from monitor.privacy import schedule_purge
from monitor.settings import Settings
from monitor.sources.base import PollResult
from monitor.store import cluster, create_store_engine, transaction
from monitor.store import health as health_repo
from monitor.worker import Worker
from tests.conftest import ALWAYS_OPEN_ESCALATION, ROOT, make_mention

POLL = timedelta(seconds=1)


class Model:
    name = "fixed"
    version = "1"

    def predict(self, texts: Sequence[str]) -> list[SentimentScores]:
        return [SentimentScores(0.1, 0.2, 0.7) for _ in texts]


class Counting:
    """Each poll returns one post and moves the cursor by one; records who polled from which cursor."""

    name = "x:Lumora"

    def __init__(self, tag: str, seen: list[tuple[str, str | None, float]]) -> None:
        self.tag = tag
        self.seen = seen

    def poll(self, cursor: str | None) -> PollResult:
        n = int(cursor or 0)
        self.seen.append((self.tag, cursor, time.monotonic()))
        return PollResult(mentions=[make_mention(n + 1, at=datetime.now(UTC))], next_cursor=str(n + 1))


def _worker(engine: Engine, tmp_path: Path, tag: str, seen: list[tuple[str, str | None, float]]) -> Worker:
    escalation = tmp_path / "escalation.yaml"
    escalation.write_text(ALWAYS_OPEN_ESCALATION, encoding="utf-8")
    settings = Settings(rules_dir=ROOT / "rules", escalation_file=escalation)
    pipeline = build_pipeline(settings, notifier=ConsoleNotifier(io.StringIO()), clock=SystemClock(), engine=engine,
                              model=Model())
    membership = Membership(engine, SystemClock(), LeaseTiming.for_lease(POLL), worker_id=f"test:{tag}")
    return Worker(pipeline, [Counting(tag, seen)], timezone="Europe/Brussels", poll_every=POLL,
                  pass_every=timedelta(seconds=0.3), alert_every=timedelta(seconds=1), membership=membership)


def _die(worker: Worker) -> None:
    """Simulated death: every job and the heartbeat stop, nothing is released."""
    worker.stopped.set()
    worker._wake.set()
    worker.scheduler.shutdown(wait=True)


def _wait(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_dead_workers_source_is_polled_again_within_two_intervals_from_its_cursor(
        engine: Engine, tmp_path: Path) -> None:
    """README "Running several workers": "each source is polled by one live worker at a time, and when a worker dies
    another takes its work over by itself".
    README "Running several workers": "so its sources are polled again **within about one lease and a third**".
    README "Running several workers": "A worker stopped cleanly (SIGTERM) releases its leases at once".
    """
    seen: list[tuple[str, str | None, float]] = []
    a, b = _worker(engine, tmp_path, "a", seen), _worker(engine, tmp_path, "b", seen)
    a.membership.join()  # type: ignore[union-attr]
    a.start()
    assert _wait(lambda: len(seen) >= 2 and a.membership.holds(cluster.DETECT), 10)  # type: ignore[union-attr]
    b.membership.join()  # type: ignore[union-attr]
    b.start()
    try:
        time.sleep(2.5 * POLL.total_seconds())
        assert {tag for tag, _, _ in seen} == {"a"}  # one live worker per source
        assert not b.membership.holds(cluster.DETECT)  # type: ignore[union-attr]
        _die(a)
        died = time.monotonic()
        assert _wait(lambda: any(tag == "b" for tag, _, _ in seen), 10)
        first_b = next(at for tag, _, at in seen if tag == "b")
        # Two poll intervals, plus a little for a loaded machine's scheduler.
        assert first_b - died <= 2 * POLL.total_seconds() + 0.5
        cursors = [c for _, c, _ in seen]
        assert cursors == [None, *map(str, range(1, len(cursors)))]  # continued from a's cursor, no gap, no repeat
        assert _wait(lambda: b.membership.holds(cluster.DETECT), 5)  # type: ignore[union-attr]
        with transaction(engine) as conn:
            [live] = cluster.live_workers(conn, datetime.now(UTC), POLL)
        assert live.id == "test:b" and set(live.leases) == {"detect", "source:x:Lumora"}
    finally:
        b.stop(5)
    with transaction(engine) as conn:  # a clean stop hands everything over at once
        assert cluster.leases_held(conn, "test:b", datetime.now(UTC)) == []


def test_a_second_worker_on_one_sqlite_store_is_refused(tmp_path: Path) -> None:
    """README "Running several workers": "a second `monitor run` on the same SQLite file is refused at start with one
    line".
    """
    from monitor.store import migrate

    engine = create_store_engine(f"sqlite:///{tmp_path / 'one.db'}")
    migrate(engine)
    clock = FakeClock(datetime(2026, 11, 18, 10, 0, tzinfo=UTC))
    first = Membership(engine, clock, LeaseTiming.for_lease(timedelta(seconds=60)))
    second = Membership(engine, clock, LeaseTiming.for_lease(timedelta(seconds=60)))
    first.join()
    with pytest.raises(WorkerRefused, match=r"another worker \(.+\) is running on this SQLite store") as refused:
        second.check_sqlite_alone()
    assert "\n" not in str(refused.value)
    with pytest.raises(WorkerRefused):
        second.join()
    first.leave()
    second.join()  # the first stopped cleanly: the second may run
    engine.dispose()


def test_once_per_period_jobs_run_once_across_workers(engine: Engine, tmp_path: Path) -> None:
    """README "Running several workers": "the first worker to claim it runs it and marks it finished; the others skip
    it".
    """
    clock = FakeClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # Monday 09:00 in Brussels
    members = [Membership(engine, clock, LeaseTiming.for_lease(POLL), worker_id=f"w{i}") for i in range(2)]
    posted: list[str] = []

    class Poster:
        def post(self, message: object) -> str | None:
            posted.append(str(message))
            return None

    settings = Settings(rules_dir=ROOT / "rules")
    digests, purges = [], []
    for m in members:
        scheduler = BackgroundScheduler()
        digests.append(schedule_weekly_digest(scheduler, engine, None, Poster(), clock, timezone="Europe/Brussels",
                                              out_dir=tmp_path / "digests", periods=m))
        purges.append(schedule_purge(scheduler, engine, settings, clock, "Europe/Brussels", periods=m))
    results = [job.func() for job in digests]
    assert len(posted) == 1 and sum(r is not None for r in results) == 1
    purged = [job.func() for job in purges]
    assert sum(r is not None for r in purged) == 1
    clock.advance(timedelta(days=7))  # next week: due again, once
    assert sum(job.func() is not None for job in digests) == 1 and len(posted) == 2


def test_a_digest_whose_worker_died_mid_run_is_posted_by_another_at_the_next_catch_up(
        engine: Engine, tmp_path: Path) -> None:
    """README "Running several workers": "if the claimer dies before finishing, another worker's catch-up check"."""
    clock = FakeClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # Monday 09:00 in Brussels
    dead, alive = (Membership(engine, clock, LeaseTiming.for_lease(POLL), worker_id=w) for w in ("a", "b"))
    with transaction(engine) as conn:  # both registered (join() would refuse the second on SQLite)
        for m in (dead, alive):
            cluster.register_worker(conn, cluster.WorkerInfo(m.id, m.host, m.pid, m.version, clock.now(), clock.now()))
    posted: list[str] = []

    class Poster:
        def post(self, message: object) -> str | None:
            posted.append(str(message))
            return None

    scheduler = BackgroundScheduler()
    schedule_weekly_digest(scheduler, engine, None, Poster(), clock, timezone="Europe/Brussels",
                           out_dir=tmp_path / "digests", periods=alive)
    catch_up = scheduler.get_job("weekly-digest:catch-up")
    assert dead.claim_period("weekly-digest", "2026-W47")  # ... and is killed before it posts
    catch_up.func()
    assert posted == []  # its worker's heartbeat is fresh: it may still be posting
    clock.advance(timedelta(minutes=1))
    alive.beat()  # only b is alive
    catch_up.func()
    assert len(posted) == 1
    clock.advance(timedelta(minutes=1))
    catch_up.func()  # finished: never again this week
    clock.advance(timedelta(hours=2))
    catch_up.func()
    assert len(posted) == 1


def test_monitor_workers_lists_live_workers_and_their_leases(engine: Engine) -> None:
    """README "Running several workers": "judging each by the lease length it recorded itself (not the caller's
    settings), names the sources nobody polls now".
    """
    now = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
    assert describe_workers(engine, now, POLL)[0].startswith("no live workers")
    with transaction(engine) as conn:
        cluster.register_worker(conn, cluster.WorkerInfo("box:42:abc", "box", 42, "0.1.0", now, now,
                                                         lease_seconds=60))
        cluster.acquire_lease(conn, "source:x:Lumora", "box:42:abc", now, timedelta(seconds=60))
        health_repo.record_success(conn, "x:Lumora", now)
        health_repo.record_success(conn, "reddit:lumora", now)
    lines = describe_workers(engine, now + timedelta(seconds=3), timedelta(seconds=60))
    assert lines[0] == "1 live worker(s):"
    assert "box:42:abc" in lines[1] and "pid 42" in lines[1] and "version 0.1.0" in lines[1]
    assert lines[2].strip() == "polls source x:Lumora"  # the lease in words
    assert "sources nobody polls now: reddit:lumora" in lines  # known to the store, held by nobody
    assert "nobody runs the rules now (no live worker holds detect)" in lines


def test_monitor_workers_judges_liveness_by_the_lease_each_worker_recorded(engine: Engine) -> None:
    """README "Running several workers": "judging each by the lease length it recorded itself (not the caller's
    settings), names the sources nobody polls now".

    The caller's own setting does not decide: a worker with a 10 s lease is dead 11 s after its heartbeat
    even when the shell running ``monitor workers`` has a 60 s lease, and a worker with a 120 s lease is
    alive after 90 s even when the caller's is 10 s."""
    now = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
    with transaction(engine) as conn:
        cluster.register_worker(conn, cluster.WorkerInfo("short:1:a", "short", 1, "1", now, now, lease_seconds=10))
        cluster.register_worker(conn, cluster.WorkerInfo("long:2:b", "long", 2, "1", now, now, lease_seconds=120))
    later = now + timedelta(seconds=11)
    lines = describe_workers(engine, later, timedelta(seconds=60))
    assert lines[0] == "1 live worker(s):" and "short:1:a" not in lines[1] and "long:2:b" in lines[1]
    assert any(line.startswith("1 stopped worker(s)") and "short:1:a" in line for line in lines)
    lines = describe_workers(engine, now + timedelta(seconds=90), timedelta(seconds=10))
    assert lines[0] == "1 live worker(s):" and "long:2:b" in lines[1]


def test_monitor_workers_on_an_unmigrated_store(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    [line] = describe_workers(engine, datetime.now(UTC), POLL)
    assert "not been migrated" in line
    engine.dispose()


def test_healthz_and_metrics_show_this_worker_and_its_leases(engine: Engine) -> None:
    """README "Running several workers": "each worker's `/healthz` has a `worker` object".
    README "Running several workers": "each worker stops acting on a lease at the expiry it last wrote".
    """
    from monitor.ops import HealthCheck, Metrics

    clock = FakeClock(datetime(2026, 11, 18, 10, 0, tzinfo=UTC))
    member = Membership(engine, clock, LeaseTiming.for_lease(timedelta(seconds=60)), worker_id="box:7:abc")
    member.join()
    assert member.acquire("source:x:Lumora")
    metrics = Metrics(clock=clock.now, process_metrics=False)
    metrics.watch_worker(member.status)
    body = HealthCheck(metrics, worker=member.status).check().body
    assert body["worker"]["id"] == "box:7:abc" and body["worker"]["leases"] == ["source:x:Lumora"]
    text = metrics.exposition().decode()
    assert 'monitor_worker_lease_held{lease="source:x:Lumora",worker="box:7:abc"} 1.0' in text
    assert 'monitor_worker_leases{worker="box:7:abc"} 1.0' in text
    clock.advance(timedelta(seconds=61))  # not renewed (no heartbeat): no longer claimed as held
    assert member.status()["leases"] == []


def test_period_jobs_and_the_reload_log_one_line_while_the_store_is_down(caplog: pytest.LogCaptureFixture) -> None:
    """README "Running several workers": "every job fails with one log line and runs again at its next interval".

    README "Running several workers": "When PostgreSQL is down, every job fails with one log line and runs
    again at its next interval" (the digest/purge catch-up and the configuration reload included)."""
    import logging
    import threading

    from apscheduler.triggers.cron import CronTrigger
    from sqlalchemy.exc import OperationalError

    from monitor.membership import schedule_once_per_period

    class StoreDown:
        def claim_period(self, job: str, period_key: str) -> bool:
            raise OperationalError("SELECT 1", {}, Exception("connection refused\nDETAIL: more lines"))

        def finish_period(self, job: str, period_key: str) -> None:
            raise AssertionError("never reached")

    clock = FakeClock(datetime(2026, 11, 23, 8, 0, 30, tzinfo=UTC))
    scheduler = BackgroundScheduler()
    schedule_once_per_period(scheduler, job_id="weekly-digest", name="weekly digest",
                             trigger=CronTrigger(day_of_week="mon", hour=9, minute=0, timezone="Europe/Brussels"),
                             period_of=lambda now: "2026-W48", run=lambda now: "posted", clock=clock,
                             periods=StoreDown(), grace=timedelta(hours=1))
    worker = Worker.__new__(Worker)  # only the guard of a worker, which needs no pipeline
    worker.stopped, worker._running, worker._running_changed = threading.Event(), 0, threading.Condition()

    def reload(force: bool = False) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    with caplog.at_level(logging.INFO):
        scheduler.get_job("weekly-digest:catch-up").func()
        scheduler.get_job("weekly-digest").func()
        worker.guard("configuration reload", reload)(force=True)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 3 and not any(r.exc_info for r in errors)
    assert all(len(r.getMessage().splitlines()) == 1 for r in errors)
    assert "Traceback" not in caplog.text


class Named:
    """A source that is never polled here: only its lease matters."""

    def __init__(self, name: str) -> None:
        self.name = name

    def poll(self, cursor: str | None) -> PollResult:
        return PollResult(mentions=[], next_cursor=cursor)


def _idle_worker(engine: Engine, tmp_path: Path, tag: str, clock: FakeClock, n_sources: int) -> Worker:
    escalation = tmp_path / "escalation.yaml"
    escalation.write_text(ALWAYS_OPEN_ESCALATION, encoding="utf-8")
    settings = Settings(rules_dir=ROOT / "rules", escalation_file=escalation)
    pipeline = build_pipeline(settings, notifier=ConsoleNotifier(io.StringIO()), clock=clock, engine=engine,
                              model=Model())
    membership = Membership(engine, clock, LeaseTiming.for_lease(timedelta(seconds=30)), worker_id=f"w:{tag}")
    with transaction(engine) as conn:
        cluster.register_worker(conn, membership._info(clock.now()))
    sources = [Named(f"s{i}") for i in range(1, n_sources + 1)]
    return Worker(pipeline, sources, timezone="Europe/Brussels", poll_every=timedelta(seconds=60),  # type: ignore[list-item]
                  pass_every=timedelta(seconds=15), membership=membership)


def test_three_workers_share_six_sources_two_each_even_when_one_started_first(engine: Engine,
                                                                              tmp_path: Path) -> None:
    """README "Running several workers": "The workers split the sources evenly: with 3 workers and 6 sources, each
    polls 2".

    README "Running several workers": "the workers split the sources evenly: with 3 workers and 6 sources,
    each polls 2 (a worker that joins later gets its share from the others within a few heartbeats)"."""
    clock = FakeClock(datetime(2026, 11, 18, 10, 0, tzinfo=UTC))
    first = _idle_worker(engine, tmp_path, "a", clock, 6)
    first._beat()
    assert len([s for s in first.sources if first.membership.holds(f"source:{s.name}")]) == 6  # type: ignore[union-attr]
    workers = [first, _idle_worker(engine, tmp_path, "b", clock, 6), _idle_worker(engine, tmp_path, "c", clock, 6)]
    for _ in range(3):  # a few heartbeats of each
        for w in workers:
            clock.advance(timedelta(seconds=1))
            w._beat()
    with transaction(engine) as conn:
        held = {w.membership.id: len(cluster.leases_held(conn, w.membership.id, clock.now()))  # type: ignore[union-attr]
                for w in workers}
        leases = cluster.all_leases(conn, clock.now())
    assert sorted(held.values()) == [2, 2, 2], held
    assert len({lease.name for lease in leases if lease.name.startswith("source:")}) == 6  # every source held
