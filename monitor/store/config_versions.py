"""Configuration versions on the record, and reload requests that reach every worker.

A version is identified by the sha256 of what was read (the file, or every rule
file in name order), so two workers that read the same bytes record the same
version and an incident's ``config_version`` points at one text whichever worker
decided it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select

from monitor.store.tables import config_versions, reload_requests


@dataclass(frozen=True, slots=True)
class StoredVersion:
    kind: str
    sha256: str
    took_effect_at: datetime
    worker: str
    content: str


def record(conn: Connection, *, kind: str, sha256: str, content: str, at: datetime, worker: str) -> bool:
    """Record that this version took effect, unless it is already the one in force; True when recorded."""
    current = in_force(conn, kind)
    if current is not None and current.sha256 == sha256:
        return False
    conn.execute(insert(config_versions).values(kind=kind, sha256=sha256, took_effect_at=at, worker=worker,
                                                content=content))
    return True


def in_force(conn: Connection, kind: str) -> StoredVersion | None:
    """The version of ``kind`` that took effect last (on any worker)."""
    row = conn.execute(select(config_versions).where(config_versions.c.kind == kind)
                       .order_by(config_versions.c.took_effect_at.desc(), config_versions.c.id.desc())
                       .limit(1)).first()
    if row is None:
        return None
    return StoredVersion(row.kind, row.sha256, row.took_effect_at, row.worker, row.content)


def history(conn: Connection, kind: str) -> list[StoredVersion]:
    rows = conn.execute(select(config_versions).where(config_versions.c.kind == kind)
                        .order_by(config_versions.c.took_effect_at, config_versions.c.id))
    return [StoredVersion(r.kind, r.sha256, r.took_effect_at, r.worker, r.content) for r in rows]


def request_reload(conn: Connection, at: datetime, by: str) -> int:
    """Ask every live worker to re-read its configuration files; returns the request's id."""
    key = conn.execute(insert(reload_requests).values(requested_at=at, requested_by=by)).inserted_primary_key
    assert key is not None
    return int(key[0])


def last_reload_request(conn: Connection) -> int:
    """The newest request's id (0 when none): a worker reloads when this grows."""
    return int(conn.execute(select(func.coalesce(func.max(reload_requests.c.id), 0))).scalar_one())
