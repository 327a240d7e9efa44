"""store.cluster: leases, heartbeats and period claims, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine

from monitor.store import cluster, transaction

T0 = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def _acquire(engine: Engine, name: str, holder: str, now: datetime, ttl: timedelta = TTL, **kw: bool) -> bool:
    with transaction(engine) as conn:
        return cluster.acquire_lease(conn, name, holder, now, ttl, **kw)


def test_a_lease_is_held_renewed_then_taken_over_only_after_expiry(engine: Engine) -> None:
    assert _acquire(engine, "source:x", "a", T0)
    assert not _acquire(engine, "source:x", "b", T0 + timedelta(seconds=29))
    assert _acquire(engine, "source:x", "a", T0 + timedelta(seconds=20))  # renewed: now until T0+50s
    assert not _acquire(engine, "source:x", "b", T0 + timedelta(seconds=45))
    assert _acquire(engine, "source:x", "b", T0 + timedelta(seconds=50))
    with transaction(engine) as conn:
        assert cluster.lease_holder(conn, "source:x", T0 + timedelta(seconds=51)) == "b"
        assert cluster.leases_held(conn, "a", T0 + timedelta(seconds=51)) == []
        [lease] = cluster.all_leases(conn, T0 + timedelta(seconds=51))
    assert lease.acquired_at == T0 + timedelta(seconds=50)
    assert _acquire(engine, "source:x", "b", T0 + timedelta(seconds=60))
    with transaction(engine) as conn:
        [lease] = cluster.all_leases(conn, T0 + timedelta(seconds=61))
    assert lease.acquired_at == T0 + timedelta(seconds=50)  # a renewal keeps "since"
    assert lease.expires_at == T0 + timedelta(seconds=90)


def test_release_hands_over_at_once_and_only_by_the_holder(engine: Engine) -> None:
    assert _acquire(engine, "detect", "a", T0)
    with transaction(engine) as conn:
        assert not cluster.release_lease(conn, "detect", "b")
        assert cluster.release_lease(conn, "detect", "a")
    assert _acquire(engine, "detect", "b", T0 + timedelta(seconds=1))


def test_a_turn_is_not_renewed_by_its_last_taker(engine: Engine) -> None:
    assert _acquire(engine, "health:x", "a", T0, renew=False)
    assert not _acquire(engine, "health:x", "a", T0 + timedelta(seconds=10), renew=False)
    assert _acquire(engine, "health:x", "a", T0 + TTL, renew=False)


def test_many_workers_racing_for_one_lease_one_wins(engine: Engine) -> None:
    """README "Running several workers": "two workers asking at the same instant never both get it"."""
    for round_ in range(5):
        now = T0 + round_ * TTL  # each round the previous lease has just expired
        start = threading.Barrier(6)
        won: list[str] = []

        def race(holder: str, now: datetime = now, start: threading.Barrier = start,
                 won: list[str] = won) -> None:
            start.wait()
            if _acquire(engine, "source:x", holder, now):
                won.append(holder)

        threads = [threading.Thread(target=race, args=(f"w{i}-{round_}",)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(won) == 1, won


def test_workers_heartbeat_live_and_stale(engine: Engine) -> None:
    a = cluster.WorkerInfo("h1:1:aa", "h1", 1, "0.1.0", T0, T0)
    b = cluster.WorkerInfo("h2:2:bb", "h2", 2, "0.2.0", T0 + timedelta(seconds=1), T0 + timedelta(seconds=1))
    with transaction(engine) as conn:
        cluster.register_worker(conn, a)
        cluster.register_worker(conn, b)
        assert cluster.acquire_lease(conn, "detect", a.id, T0, TTL)
        assert cluster.acquire_lease(conn, "source:x", a.id, T0, TTL)
        assert cluster.heartbeat(conn, a.id, T0 + timedelta(seconds=40))
        assert not cluster.heartbeat(conn, "nobody", T0)
        live = cluster.live_workers(conn, T0 + timedelta(seconds=20), TTL)
        assert [(w.id, w.leases) for w in live] == [(a.id, ("detect", "source:x")), (b.id, ())]
        live = cluster.live_workers(conn, T0 + timedelta(seconds=45), TTL)
        assert [(w.id, w.version, w.leases) for w in live] == [(a.id, "0.1.0", ())]  # leases expired at 30 s
        cluster.deregister_worker(conn, a.id)
        assert cluster.get_worker(conn, a.id) is None
        assert cluster.prune_workers(conn, T0 + timedelta(seconds=2)) == 1
        assert cluster.get_worker(conn, b.id) is None


def test_a_period_is_claimed_once(engine: Engine) -> None:
    with transaction(engine) as conn:
        assert cluster.claim_period(conn, "weekly-digest", "2026-W47", "a", T0)
    with transaction(engine) as conn:
        assert not cluster.claim_period(conn, "weekly-digest", "2026-W47", "b", T0 + timedelta(seconds=1))
        assert cluster.claim_period(conn, "retention-purge", "2026-W47", "b", T0)
        assert cluster.claim_period(conn, "weekly-digest", "2026-W48", "b", T0)
        assert cluster.period_claimed_by(conn, "weekly-digest", "2026-W47") == "a"


def _worker(conn: Connection, worker_id: str, beat: datetime) -> None:
    cluster.register_worker(conn, cluster.WorkerInfo(id=worker_id, host="box", pid=1, version="t",
                                                     started_at=beat, heartbeat_at=beat))


def test_an_unfinished_period_of_a_dead_worker_is_claimed_again_a_finished_one_never(engine: Engine) -> None:
    stale = timedelta(seconds=30)
    with transaction(engine) as conn:
        _worker(conn, "a", T0)
        _worker(conn, "b", T0)
        assert cluster.claim_period(conn, "weekly-digest", "2026-W47", "a", T0, stale_after=stale)
    with transaction(engine) as conn:  # a is alive (beat 29 s ago): b waits
        assert not cluster.claim_period(conn, "weekly-digest", "2026-W47", "b", T0 + timedelta(seconds=29),
                                        stale_after=stale)
    with transaction(engine) as conn:  # 30 s without a heartbeat: a died mid-run, b runs it again
        cluster.heartbeat(conn, "b", T0 + timedelta(seconds=30))
        assert cluster.claim_period(conn, "weekly-digest", "2026-W47", "b", T0 + timedelta(seconds=30),
                                    stale_after=stale)
        assert cluster.period_claimed_by(conn, "weekly-digest", "2026-W47") == "b"
        assert not cluster.period_finished(conn, "weekly-digest", "2026-W47")
        cluster.finish_period(conn, "weekly-digest", "2026-W47", "a", T0 + timedelta(seconds=31))  # not a's any more
        assert not cluster.period_finished(conn, "weekly-digest", "2026-W47")
        cluster.finish_period(conn, "weekly-digest", "2026-W47", "b", T0 + timedelta(seconds=31))
        assert cluster.period_finished(conn, "weekly-digest", "2026-W47")
    with transaction(engine) as conn:  # finished: nobody runs it again, even long after b is gone
        _worker(conn, "c", T0 + timedelta(hours=1))
        assert not cluster.claim_period(conn, "weekly-digest", "2026-W47", "c", T0 + timedelta(hours=1),
                                        stale_after=stale)


def test_worker_ids_are_unique_and_readable() -> None:
    first, second = cluster.new_worker_id("box", 7), cluster.new_worker_id("box", 7)
    assert first.startswith("box:7:") and first != second
