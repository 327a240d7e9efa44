"""Sign-in throttling in the store: atomic, and the same for every worker process that serves the console.

Why in the store and why before the password check: a limit kept in one
process's memory is per worker, and a limit checked before the (slow, argon2)
verify but counted after it lets every guess that arrives during the verify
through (200 parallel guesses, 172 verified). Here one transaction locks the
rows of the account and of the client address, decides, and counts the attempt
*before* the password is verified; a success then takes the account's count
back. So N parallel guesses are admitted one after another at the pace the
delays allow, whichever worker they reach.

Slowing down, not locking out: after ``free`` attempts each further one must
wait a delay that doubles up to ``cap``. An attacker can slow a named person's
sign-in down to one try per ``cap``, never lock them (or everyone behind the
same NAT address) out for a quarter of an hour. A quiet ``window`` forgets the
count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update

from monitor.store.dialect import insert_on_conflict, write_lock
from monitor.store.tables import login_attempts


@dataclass(frozen=True, slots=True)
class Throttle:
    """``free`` attempts, then a delay from ``base`` doubling per attempt up to ``cap``; ``window`` of quiet resets."""

    free: int
    base: timedelta
    cap: timedelta
    window: timedelta = timedelta(minutes=15)

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th attempt in a row."""
        if attempts < self.free:
            return timedelta(0)
        doubled: timedelta = self.base * (1 << min(attempts - self.free, 30))
        return min(doubled, self.cap)


# Per account: five tries, then 1 s, 2 s, 4 s ... at most 30 s apart.
ACCOUNT = Throttle(free=5, base=timedelta(seconds=1), cap=timedelta(seconds=30))
# Per client address (a whole office behind one NAT shares it): more room, a longer ceiling for spraying.
ADDRESS = Throttle(free=20, base=timedelta(seconds=1), cap=timedelta(minutes=2))
KEEP = timedelta(days=1)  # rows untouched this long are deleted (the address is personal data)


def account_key(name: str) -> str:
    return "u:" + name[:200]


def address_key(address: str) -> str:
    return "a:" + address[:64]


def admit(conn: Connection, keys: Sequence[tuple[str, Throttle]], now: datetime) -> timedelta | None:
    """Count one attempt for every key and return None, or return how long to wait (nothing counted).

    Atomic across processes: the rows are locked (``FOR UPDATE`` on PostgreSQL, the
    write lock on SQLite) before they are read, in key order so two workers cannot deadlock.
    """
    write_lock(conn)
    conn.execute(delete(login_attempts).where(login_attempts.c.last_at < now - KEEP))
    names = sorted({k for k, _ in keys})
    for key in names:
        conn.execute(insert_on_conflict(conn, login_attempts)
                     .values(key=key, attempts=0, last_at=now, next_allowed_at=now)
                     .on_conflict_do_nothing(index_elements=["key"]))
    query = select(login_attempts).where(login_attempts.c.key.in_(names)).order_by(login_attempts.c.key)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    rows = {r.key: r for r in conn.execute(query)}
    throttles = dict(keys)
    counts: dict[str, int] = {}
    wait = timedelta(0)
    for key in names:
        row = rows[key]
        attempts = 0 if now - row.last_at > throttles[key].window else int(row.attempts)
        counts[key] = attempts
        if attempts and row.next_allowed_at > now:
            wait = max(wait, row.next_allowed_at - now)
    if wait > timedelta(0):
        return wait
    for key in names:
        attempts = counts[key] + 1
        conn.execute(update(login_attempts).where(login_attempts.c.key == key).values(
            attempts=attempts, last_at=now, next_allowed_at=now + throttles[key].delay(attempts)))
    return None


def succeeded(conn: Connection, account: str, address: str, now: datetime, throttle: Throttle = ADDRESS) -> None:
    """The password was right: the account starts afresh; the address gets this attempt back (an office
    signing in every morning through one NAT address is not slowed down by its own successes)."""
    write_lock(conn)
    conn.execute(delete(login_attempts).where(login_attempts.c.key == account))
    row = conn.execute(select(login_attempts.c.attempts).where(login_attempts.c.key == address)).first()
    if row is not None and row.attempts > 0:
        attempts = int(row.attempts) - 1
        conn.execute(update(login_attempts).where(login_attempts.c.key == address).values(
            attempts=attempts, next_allowed_at=now + throttle.delay(attempts)))
