"""``monitor silence add | list | remove``: mute a brand, a rule or an author for a while, on the record."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import Engine

from monitor.commands.common import open_store_or_exit, settings_or_exit
from monitor.durations import parse_duration

group = typer.Typer(help="Mute alerts for a brand, a rule or an author until a time.", no_args_is_help=True)


def _store() -> Engine:
    return open_store_or_exit(settings_or_exit())


@group.command("add")
def add(
    reason: Annotated[str, typer.Option(help="Why (shown in the list and the logs)")],
    by: Annotated[str, typer.Option(help="Who sets it")],
    brand: Annotated[str | None, typer.Option(help="Mute this brand")] = None,
    rule: Annotated[str | None, typer.Option(help="Mute this rule")] = None,
    author: Annotated[str | None, typer.Option(help="Mute posts by this handle")] = None,
    duration: Annotated[str | None, typer.Option("--for", help="How long, e.g. 2h or 3d")] = None,
    until: Annotated[str | None, typer.Option(help="Local end time, e.g. '2026-11-30 08:00'")] = None,
) -> None:
    """Add a silence; every field given must match for a signal to be muted."""
    from monitor.store import audit, silences, transaction

    settings = settings_or_exit()
    zone = ZoneInfo(settings.timezone)
    now = dt.datetime.now(dt.UTC)
    if (duration is None) == (until is None):
        raise typer.BadParameter("give exactly one of --for or --until")
    try:
        if duration is not None:
            ends = now + parse_duration(duration)
        else:
            parsed = dt.datetime.fromisoformat(str(until))
            ends = (parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed).astimezone(dt.UTC)
        with transaction(_store()) as conn:
            sid = silences.add(conn, brand=brand, rule=rule, author=author, starts_at=now, ends_at=ends,
                               reason=reason, created_by=by)
            # On the record like the console's: the weekly digest and the console's audit page show it.
            audit.record(conn, at=now, actor=by, channel="cli", action="silence-add",
                         detail=silences.added_detail(sid, brand=brand, rule=rule, author=author, ends_at=ends,
                                                      zone=zone, reason=reason))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"silence #{sid} until {ends.astimezone(zone):%a %d %b %H:%M %Z}")


@group.command("list")
def list_() -> None:
    """Show silences, active and past."""
    from monitor.store import silences, transaction

    zone = ZoneInfo(settings_or_exit().timezone)
    now = dt.datetime.now(dt.UTC)
    with transaction(_store()) as conn:
        found = silences.all_silences(conn)
    if not found:
        typer.echo("no silences")
    for s in found:
        what = ", ".join(f"{k} {v}" for k, v in (("brand", s.brand), ("rule", s.rule), ("author", s.author)) if v)
        state = "active" if s.starts_at <= now < s.ends_at else "ended" if s.ends_at <= now else "future"
        removed = f", removed by {s.removed_by}" if s.removed_by else ""
        typer.echo(f"#{s.id} [{state}] {what} until {s.ends_at.astimezone(zone):%a %d %b %H:%M} — {s.reason} "
                   f"(by {s.created_by}{removed})")


@group.command("remove")
def remove(
    silence_id: Annotated[int, typer.Argument(help="Silence number from 'list'")],
    by: Annotated[str, typer.Option(help="Who ends it (kept on the record)")] = "cli",
) -> None:
    """End a silence now; it stays on the record (who set it, why, who ended it) and in the digest."""
    from monitor.store import audit, silences, transaction

    now = dt.datetime.now(dt.UTC)
    with transaction(_store()) as conn:
        if not silences.remove(conn, silence_id, by=by, now=now):
            typer.echo(f"error: no silence #{silence_id}", err=True)
            raise typer.Exit(1)
        audit.record(conn, at=now, actor=by, channel="cli", action="silence-expire", detail=f"#{silence_id}")
    typer.echo(f"silence #{silence_id} ended now (kept on the record)")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="silence")
