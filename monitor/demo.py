"""Helpers for ``monitor demo``: the feed's time span and the closing summary."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from monitor.sources.replay import mention_from_dict
from monitor.store import stats, transaction


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
        counts = stats.totals(conn, negative_at_least=0.5)
        rows = stats.incident_overview(conn)
    table = Table(title="Incidents")
    for col in ("#", "severity", "rule", "opened (local)", "posts", "state", "level"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.id), r.severity, r.rule, f"{r.opened_at.astimezone(zone):%a %d %b %H:%M}",
                      str(r.posts), r.state, str(r.level))
    console.print()
    console.print(table)
    kinds = ", ".join(f"{n} {k}" for k, n in counts.sent.items()) or "none"
    console.print(f"{counts.mentions} mentions stored, {counts.scored} scored ({counts.negative} negative), "
                  f"{len(rows)} incident(s); notifications sent: {kinds}; {seconds:.1f} s.")
