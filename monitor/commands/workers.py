"""The ``monitor workers`` command: the workers live on this store, and the leases each holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer
from sqlalchemy import Engine, inspect

from monitor.commands.common import open_store_or_exit, settings_or_exit
from monitor.durations import format_duration
from monitor.membership import LeaseTiming
from monitor.store import cluster, transaction


def describe_workers(engine: Engine, now: datetime, stale_after: timedelta) -> list[str]:
    """One line per live worker (id, host, pid, version, last heartbeat, leases), or why there is none."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("workers"):
            return ["no workers: this store has not been migrated to a version with workers yet "
                    "(no `monitor run` of this version has started on it)"]
    with transaction(engine) as conn:
        live = cluster.live_workers(conn, now, stale_after)
    if not live:
        return [f"no live workers (none has sent a heartbeat in the last {format_duration(stale_after)})"]
    lines = [f"{len(live)} live worker(s):"]
    for w in live:
        ago = format_duration(max(timedelta(0), now - w.heartbeat_at))
        lines.append(f"  {w.id}  host {w.host}  pid {w.pid}  version {w.version}  "
                     f"started {w.started_at:%Y-%m-%d %H:%M:%S} UTC  last heartbeat {ago} ago")
        lines.append(f"    leases: {', '.join(w.leases) if w.leases else 'none'}")
    return lines


def register(app: typer.Typer) -> None:
    @app.command("workers")
    def workers() -> None:
        """List the workers running on the store (host, pid, version, last heartbeat) and the leases they hold."""
        settings = settings_or_exit()
        engine = open_store_or_exit(settings, migrate=False)  # looking must not change the schema
        try:
            stale_after = LeaseTiming.for_poll_interval(timedelta(seconds=settings.poll_seconds)).ttl
            for line in describe_workers(engine, datetime.now(UTC), stale_after):
                typer.echo(line)
        finally:
            engine.dispose()
