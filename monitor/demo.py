"""Helpers for ``monitor demo``: the feed's time span and the closing summary."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select

from monitor.sources.replay import mention_from_dict
from monitor.store import transaction
from monitor.store.tables import incident_mentions, incidents, mentions, outbox, sentiments


def feed_bounds(feed: Path) -> tuple[datetime, datetime]:
    times = []
    with feed.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    times.append(mention_from_dict(json.loads(line)).created_at)
                except ValueError:
                    continue
    if not times:
        raise SystemExit(f"{feed}: no valid mentions")
    return min(times), max(times)


def summarise(engine: Engine, timezone: str, seconds: float) -> None:
    zone = ZoneInfo(timezone)
    console = Console()
    with transaction(engine) as conn:
        n_mentions = conn.execute(select(func.count()).select_from(mentions)).scalar_one()
        n_scored = conn.execute(select(func.count()).select_from(sentiments)).scalar_one()
        n_negative = conn.execute(select(func.count()).select_from(sentiments).where(
            sentiments.c.negative >= 0.5)).scalar_one()
        rows = conn.execute(select(incidents).order_by(incidents.c.id)).all()
        sent = conn.execute(select(outbox.c.kind, func.count()).where(outbox.c.sent_at.is_not(None))
                            .group_by(outbox.c.kind)).all()
    table = Table(title="Incidents")
    for col in ("#", "severity", "rule", "opened (local)", "posts", "state", "level"):
        table.add_column(col)
    with transaction(engine) as conn:
        posts_per: dict[int, int] = dict(conn.execute(select(incident_mentions.c.incident_id, func.count())
                                      .group_by(incident_mentions.c.incident_id)).all())
    for r in rows:
        m = r._mapping
        posts = posts_per.get(m["id"], 0)
        table.add_row(str(m["id"]), m["severity"], m["rule"], f"{m['opened_at'].astimezone(zone):%a %d %b %H:%M}",
                      str(posts), m["state"], str(m["level"]))
    console.print()
    console.print(table)
    kinds = ", ".join(f"{n} {k}" for k, n in sent) or "none"
    console.print(f"{n_mentions} mentions stored, {n_scored} scored ({n_negative} negative), "
                  f"{len(rows)} incident(s); notifications sent: {kinds}; {seconds:.1f} s.")
