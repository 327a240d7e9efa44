"""The one dialect switch of the store: INSERT ... ON CONFLICT on SQLite and PostgreSQL.

SQLAlchemy's portable ``insert()`` has no conflict clause; both databases we
support do, with the same ``on_conflict_do_nothing`` / ``on_conflict_do_update``
API in their dialect modules. Every "insert unless it is already there" and
every upsert in ``store/`` goes through here, so idempotent writes (replayed
mentions, a notification queued twice, a cursor moved again) are written once.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_on_conflict(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``table`` for ``conn``'s database that accepts an ``on_conflict_*`` clause."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def write_lock(conn: Connection) -> None:
    """SQLite: take the database's write lock now, before reading what is about to be changed.

    SQLite has no row locks: a read-check-write there is race-safe only if the write
    lock is held from before the read (pysqlite otherwise opens its transaction at the
    first write, after the check). One writer at a time is SQLite's model anyway; a
    second writer waits (``busy_timeout``). PostgreSQL locks rows instead
    (``SELECT ... FOR UPDATE``), so this does nothing there.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("UPDATE cursors SET source = source WHERE 0")
