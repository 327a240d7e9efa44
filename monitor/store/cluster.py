"""Several workers on one store: who is alive, who holds what, and which periodic job already ran.

Three small tables, and every decision is one conditional statement, so two
workers asking at the same instant never both win, on PostgreSQL (the row lock
``INSERT … ON CONFLICT DO UPDATE … WHERE`` takes, re-checked on the newest row
version) and on SQLite (one writer at a time):

* ``workers``: one row per running process (``host:pid:suffix``), its version
  and its last heartbeat. ``monitor workers`` and ``/healthz`` read it.
* ``leases``: a named right to do something alone (``source:<name>``: poll that
  source; ``detect``: run the rules, whose windows live in one process's
  memory). A lease has an expiry rather than a "held" flag, so a holder that
  dies without a word frees it by itself: nobody has to notice the death.
* ``period_claims``: a once-per-period job (the weekly digest, the nightly
  purge) runs for a period on the worker that inserted its row first.

Time is always the caller's ``now`` (an injectable clock), never the database's:
tests move a fake clock instead of sleeping. Machines are expected to keep
their clocks in sync (NTP); a lease's TTL is seconds to minutes, far above the
usual skew.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, RowMapping, and_, case, delete, literal, or_, select, update

from monitor.store.dialect import insert_on_conflict
from monitor.store.tables import leases, period_claims, workers

DETECT = "detect"  # the lease of the one worker that runs the rules
SOURCE_PREFIX = "source:"


def source_lease(source: str) -> str:
    """The lease that lets one worker poll ``source``."""
    return f"{SOURCE_PREFIX}{source}"


def new_worker_id(host: str | None = None, pid: int | None = None) -> str:
    """``host:pid:suffix``: readable in ``monitor workers``, and unique even when a container reuses a pid."""
    host = host or socket.gethostname()
    return f"{host}:{pid if pid is not None else os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One ``workers`` row; ``leases`` (read by ``live_workers``) are the unexpired ones it holds."""

    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    leases: tuple[str, ...] = field(default=())
    lease_seconds: float | None = None  # its own lease length (None: a worker of an older version)

    def alive(self, now: datetime, default: timedelta) -> bool:
        """Its heartbeat is within its own lease (``default`` for a worker that recorded none)."""
        lease = timedelta(seconds=self.lease_seconds) if self.lease_seconds else default
        return self.heartbeat_at > now - lease


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


# --- workers --------------------------------------------------------------------------------------

def register_worker(conn: Connection, worker: WorkerInfo) -> None:
    """Insert (or refresh) this process's row; its heartbeat starts now."""
    values = {"host": worker.host, "pid": worker.pid, "version": worker.version,
              "started_at": worker.started_at, "heartbeat_at": worker.heartbeat_at,
              "lease_seconds": worker.lease_seconds}
    stmt = insert_on_conflict(conn, workers).values(id=worker.id, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=values))


def heartbeat(conn: Connection, worker_id: str, now: datetime) -> bool:
    """Mark ``worker_id`` alive at ``now``; False when its row is gone (pruned, or never registered)."""
    result = conn.execute(update(workers).where(workers.c.id == worker_id).values(heartbeat_at=now))
    return result.rowcount == 1


def deregister_worker(conn: Connection, worker_id: str) -> None:
    """A clean stop: the row and every lease of the worker go, so others take over at once, not at expiry."""
    conn.execute(delete(leases).where(leases.c.holder == worker_id))
    conn.execute(delete(workers).where(workers.c.id == worker_id))


def get_worker(conn: Connection, worker_id: str) -> WorkerInfo | None:
    row = conn.execute(select(workers).where(workers.c.id == worker_id)).first()
    return _worker(row._mapping) if row else None


def live_workers(conn: Connection, now: datetime, stale_after: timedelta) -> list[WorkerInfo]:
    """Workers with a heartbeat within ``stale_after`` of ``now``, oldest first, each with its leases."""
    rows = conn.execute(select(workers).where(workers.c.heartbeat_at > now - stale_after)
                        .order_by(workers.c.started_at, workers.c.id)).all()
    held: dict[str, list[str]] = {}
    for lease in all_leases(conn, now):
        held.setdefault(lease.holder, []).append(lease.name)
    return [_worker(r._mapping, tuple(sorted(held.get(r.id, ())))) for r in rows]


def dead_workers(conn: Connection, now: datetime, stale_after: timedelta) -> list[str]:
    """Ids of workers silent for ``stale_after`` (killed, or cut off from the store) and not yet pruned."""
    return list(conn.execute(select(workers.c.id).where(workers.c.heartbeat_at <= now - stale_after)).scalars())


def prune_workers(conn: Connection, before: datetime) -> int:
    """Forget workers silent since before ``before`` (each restart adds a row; a killed one never removes its own)."""
    return conn.execute(delete(workers).where(workers.c.heartbeat_at < before)).rowcount


def all_workers(conn: Connection, now: datetime) -> list[WorkerInfo]:
    """Every registered worker (live or not, until pruned), oldest first, each with its unexpired leases."""
    rows = conn.execute(select(workers).order_by(workers.c.started_at, workers.c.id)).all()
    held: dict[str, list[str]] = {}
    for lease in all_leases(conn, now):
        held.setdefault(lease.holder, []).append(lease.name)
    return [_worker(r._mapping, tuple(sorted(held.get(r.id, ())))) for r in rows]


def _worker(m: RowMapping, held: tuple[str, ...] = ()) -> WorkerInfo:
    return WorkerInfo(id=m["id"], host=m["host"], pid=m["pid"], version=m["version"],
                      started_at=m["started_at"], heartbeat_at=m["heartbeat_at"], leases=held,
                      lease_seconds=m.get("lease_seconds"))


# --- leases ---------------------------------------------------------------------------------------

def acquire_lease(conn: Connection, name: str, holder: str, now: datetime, ttl: timedelta, *,
                  renew: bool = True) -> bool:
    """Take lease ``name`` for ``holder`` until ``now + ttl``; True when ``holder`` has it afterwards.

    One statement: insert it, or take it over if it expired, or (``renew``) push
    the expiry of our own. ``renew=False`` makes a lease a "not again before
    ``ttl``" turn: taken only when free or expired, whoever held it last.
    """
    expires = now + ttl
    stmt = insert_on_conflict(conn, leases).values(name=name, holder=holder, acquired_at=now, expires_at=expires)
    taken = leases.c.expires_at <= now
    mine = leases.c.holder == holder
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"holder": holder, "expires_at": expires,
              # A renewal keeps the time it was first acquired (``monitor workers`` shows "since").
              "acquired_at": case((mine & ~taken, leases.c.acquired_at),
                                  else_=literal(now, leases.c.acquired_at.type))},
        where=or_(taken, mine) if renew else taken,
    )
    # RETURNING rather than rowcount: psycopg reports -1 for an INSERT … ON CONFLICT through SQLAlchemy.
    return conn.execute(stmt.returning(leases.c.name)).first() is not None


def release_lease(conn: Connection, name: str, holder: str) -> bool:
    """Give ``name`` up, if ``holder`` still has it (an expired one taken by another is left alone)."""
    return conn.execute(delete(leases).where(and_(leases.c.name == name, leases.c.holder == holder))).rowcount == 1


def release_all(conn: Connection, holder: str) -> int:
    return conn.execute(delete(leases).where(leases.c.holder == holder)).rowcount


def leases_held(conn: Connection, holder: str, now: datetime) -> list[str]:
    """Names of the unexpired leases ``holder`` has at ``now``, sorted."""
    rows = conn.execute(select(leases.c.name).where(and_(leases.c.holder == holder, leases.c.expires_at > now))
                        .order_by(leases.c.name))
    return [r.name for r in rows]


def lease_holder(conn: Connection, name: str, now: datetime) -> str | None:
    """Who has ``name`` at ``now`` (None: free or expired)."""
    row = conn.execute(select(leases.c.holder).where(and_(leases.c.name == name, leases.c.expires_at > now))).first()
    return row.holder if row else None


def all_leases(conn: Connection, now: datetime) -> list[Lease]:
    rows = conn.execute(select(leases).where(leases.c.expires_at > now).order_by(leases.c.name))
    return [Lease(r.name, r.holder, r.acquired_at, r.expires_at) for r in rows]


# --- once-per-period jobs -------------------------------------------------------------------------

def claim_period(conn: Connection, job: str, period_key: str, worker: str, now: datetime,
                 stale_after: timedelta | None = None) -> bool:
    """True for exactly one caller at a time per (``job``, ``period_key``): the one to run the job for that period.

    ``period_key`` names the period the run is *for* (an ISO week, a local date),
    never the moment it runs, so two workers whose triggers fire a second apart
    still compete for the same row.

    Rather twice than never: a claim that was never finished (``finish_period``) by a
    worker whose heartbeat is older than ``stale_after`` (it died mid-run) can be taken
    over, so another worker runs the job again. A finished period is never claimed again.
    """
    stmt = insert_on_conflict(conn, period_claims).values(job=job, period_key=period_key, worker=worker,
                                                         claimed_at=now)
    if stale_after is None:
        claimed = stmt.on_conflict_do_nothing(index_elements=["job", "period_key"])
    else:
        claimer_alive = (select(workers.c.id).where(and_(workers.c.id == period_claims.c.worker,
                                                          workers.c.heartbeat_at > now - stale_after)).exists())
        claimed = stmt.on_conflict_do_update(
            index_elements=["job", "period_key"], set_={"worker": worker, "claimed_at": now},
            where=and_(period_claims.c.finished_at.is_(None), period_claims.c.worker != worker, ~claimer_alive))
    return conn.execute(claimed.returning(period_claims.c.job)).first() is not None


def finish_period(conn: Connection, job: str, period_key: str, worker: str, now: datetime) -> None:
    """Mark ``job`` done for ``period_key``: no other worker runs it again for that period."""
    conn.execute(update(period_claims).where(and_(period_claims.c.job == job, period_claims.c.period_key == period_key,
                                                  period_claims.c.worker == worker)).values(finished_at=now))


def period_finished(conn: Connection, job: str, period_key: str) -> bool:
    row = conn.execute(select(period_claims.c.finished_at).where(
        and_(period_claims.c.job == job, period_claims.c.period_key == period_key))).first()
    return row is not None and row.finished_at is not None


def period_claimed_by(conn: Connection, job: str, period_key: str) -> str | None:
    row = conn.execute(select(period_claims.c.worker).where(and_(period_claims.c.job == job,
                                                                 period_claims.c.period_key == period_key))).first()
    return row.worker if row else None
