"""The ``monitor workers`` command: the workers on this store, what each does, and what nobody does.

Who is alive is judged by what each worker recorded (its own lease length, in
``workers.lease_seconds``), not by the caller's settings: a worker running with a
30 s lease is dead 30 s after its last heartbeat whatever this shell's environment says.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer
from sqlalchemy import Engine, inspect

from monitor.commands.common import open_store_or_exit, settings_or_exit
from monitor.durations import format_duration
from monitor.i18n import translator
from monitor.store import cluster, transaction
from monitor.store import health as health_repo


def lease_in_words(name: str) -> str:
    """What holding a lease means, for a person: ``source:reddit`` -> "polls source reddit"."""
    if name.startswith(cluster.SOURCE_PREFIX):
        return f"polls source {name.removeprefix(cluster.SOURCE_PREFIX)}"
    if name == cluster.DETECT:
        return "runs the rules (detect)"
    if name.startswith("turn:"):
        return f"took the last turn of {name.removeprefix('turn:')}"
    return name


def describe_workers(engine: Engine, now: datetime, default_lease: timedelta, zone: str = "UTC") -> list[str]:
    """Live workers (id, host, pid, version, heartbeat, leases in words), recently stopped ones, and the
    known sources no live worker holds; ``default_lease`` judges workers that recorded no lease; ``zone``: the
    team's, in which start times are shown (named)."""
    t = translator("en", zone)
    with engine.connect() as conn:
        if not inspect(conn).has_table("workers"):
            return ["no workers: this store has not been migrated to a version with workers yet "
                    "(no `monitor run` of this version has started on it)"]
    with transaction(engine) as conn:
        everyone = cluster.all_workers(conn, now)
        sources = sorted(health_repo.all_health(conn))
    live = [w for w in everyone if w.alive(now, default_lease)]
    stopped = [w for w in everyone if not w.alive(now, default_lease)]
    lines = ([f"{len(live)} live worker(s):"] if live
             else ["no live workers (none has sent a heartbeat within its lease)"])
    held: set[str] = set()
    for w in live:
        ago = format_duration(max(timedelta(0), now - w.heartbeat_at))
        lease = f"lease {format_duration(timedelta(seconds=w.lease_seconds))}" if w.lease_seconds else "lease ?"
        lines.append(f"  {w.id}  host {w.host}  pid {w.pid}  version {w.version}  "
                     f"started {t.datetime_zone(w.started_at)}  last heartbeat {ago} ago  {lease}")
        work = [lease_in_words(name) for name in w.leases if not name.startswith("turn:")]
        lines.append(f"    {'; '.join(work) if work else 'holds no lease (stands by)'}")
        held.update(w.leases)
    orphans = [s for s in sources if cluster.source_lease(s) not in held]
    if orphans:
        lines.append(f"sources nobody polls now: {', '.join(orphans)}"
                     + ("" if live else " (no worker is running)"))
    if live and cluster.DETECT not in held:
        lines.append("nobody runs the rules now (no live worker holds detect)")
    if stopped:
        last = max(stopped, key=lambda w: w.heartbeat_at)
        lines.append(f"{len(stopped)} stopped worker(s) remembered (last heartbeat of the latest, {last.id}: "
                     f"{format_duration(max(timedelta(0), now - last.heartbeat_at))} ago)")
    return lines


def register(app: typer.Typer) -> None:
    @app.command("workers")
    def workers() -> None:
        """List the workers on the store (host, pid, version, last heartbeat), what each holds, and the
        sources nobody polls."""
        settings = settings_or_exit()
        engine = open_store_or_exit(settings, migrate=False)  # looking must not change the schema
        try:
            for line in describe_workers(engine, datetime.now(UTC), timedelta(seconds=settings.lease_seconds),
                                         settings.timezone):
                typer.echo(line)
        finally:
            engine.dispose()
