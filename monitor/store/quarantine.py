"""Posts set aside because the store or the model could not take them.

One bad post must never block its source: the poller stores the rest of the
batch and moves the cursor on, the classifier scores the rest of its batch, and
what could not be taken is recorded here with the stage and a short reason, so
``monitor sources``, ``/healthz`` and the metrics can say so. Only ids and the
reason are kept (no text, no handle): an operator looks the post up at its
source if needed. Rows age out with the author period of the retention purge,
and a quarantined *stored* post goes with its mention (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, select

from monitor.redact import redact
from monitor.store.tables import quarantine

REASON_LIMIT = 300  # the column's length
STORE = "store"
CLASSIFY = "classify"


@dataclass(frozen=True, slots=True)
class Quarantined:
    source: str
    source_id: str
    stage: str
    reason: str
    at: datetime
    mention_id: int | None = None


def add(conn: Connection, item: Quarantined) -> None:
    """Record one post set aside; the reason is redacted and cut to the column here too."""
    conn.execute(quarantine.insert().values(
        source=item.source[:64], source_id=item.source_id[:128], stage=item.stage,
        reason=redact(item.reason, limit=REASON_LIMIT), mention_id=item.mention_id, at=item.at))


def counts(conn: Connection) -> dict[str, int]:
    """Quarantined posts per source (what ``/healthz`` and the metrics show)."""
    stmt = select(quarantine.c.source, func.count()).group_by(quarantine.c.source)
    return {str(source): int(n) for source, n in conn.execute(stmt)}


def recent(conn: Connection, source: str, limit: int = 3) -> list[Quarantined]:
    """The newest posts set aside for ``source``, newest first (``monitor sources``)."""
    stmt = (select(quarantine).where(quarantine.c.source == source)
            .order_by(quarantine.c.at.desc(), quarantine.c.id.desc()).limit(limit))
    return [Quarantined(r.source, r.source_id, r.stage, r.reason, r.at, r.mention_id) for r in conn.execute(stmt)]


def delete_before(conn: Connection, cutoff: datetime) -> int:
    """Retention: rows older than ``cutoff`` go (they name posts, so they do not stay forever)."""
    return int(conn.execute(delete(quarantine).where(quarantine.c.at < cutoff)).rowcount or 0)
