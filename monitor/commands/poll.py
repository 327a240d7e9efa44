"""``monitor poll NAME --once``: poll one configured source now, through the worker's own poller.

For setting up a source and for debugging one: it builds the source exactly
as ``monitor run`` does (same ``monitor.yaml``, same credentials, same store),
runs one ``poll_source`` (so the mentions and the cursor are stored together,
the health row and the daily budget are updated as in production) and prints
what happened: new, already stored, skipped, cursor before and after, budget.

A source the poller would skip (deferred after a rate limit or a refused
login, daily budget spent) is not polled: that is one line on stderr and exit
code 3, never a quiet success; ``--force`` polls a deferred source anyway (a
spent budget still holds). "request(s)" counts every request sent, retries
included; YouTube's count is in quota units and says so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from monitor.commands.common import open_store_or_exit, settings_or_exit
from monitor.commands.sources import ConfigOption, load_config_or_exit


def _short(cursor: str | None) -> str:
    if not cursor:
        return "none"
    return cursor if len(cursor) <= 200 else cursor[:197] + "..."


def register(app: typer.Typer) -> None:
    @app.command("poll")
    def poll(
        name: Annotated[str, typer.Argument(help="Source name as `monitor sources` lists it, e.g. x:Lumora")],
        once: Annotated[bool, typer.Option("--once", help="Poll once now and exit (the only mode)")] = False,
        force: Annotated[bool, typer.Option("--force", help="Poll even when the source is deferred (after a rate "
                                                            "limit or a refused login)")] = False,
        config: ConfigOption = Path("monitor.yaml"),
    ) -> None:
        """Poll one configured source now and print what was stored, the cursor and the remaining budget."""
        from monitor.ops import setup_logging
        from monitor.sources.factory import build_sources, configured
        from monitor.sources.polling import Budgeted, poll_source, request_unit
        from monitor.store import health as health_repo
        from monitor.store import transaction
        from monitor.store.mentions import get_cursor

        if not once:
            typer.echo("error: give --once (`monitor run` is the worker that polls continuously)", err=True)
            raise typer.Exit(2)
        settings = settings_or_exit()
        setup_logging(settings.log_level, json=False)
        collect = load_config_or_exit(config)
        specs = {spec.name: spec for spec in configured(collect)}
        names = list(specs)
        if name not in names:
            typer.echo(f"error: no source named {name!r} in the configuration; configured: {', '.join(names)}",
                       err=True)
            raise typer.Exit(2)
        source = next((s for s in build_sources(collect, settings) if s.name == name), None)
        if source is None:
            typer.echo(f"error: {name} is configured but cannot be built (see the warning above: credentials)",
                       err=True)
            raise typer.Exit(1)
        engine = open_store_or_exit(settings)
        try:
            budget = source.daily_budget if isinstance(source, Budgeted) else None
            with transaction(engine) as conn:
                before = get_cursor(conn, name)
            outcome = poll_source(engine, source, lambda: datetime.now(UTC), force=force)
            with transaction(engine) as conn:
                after = get_cursor(conn, name)
                health = health_repo.get(conn, name) or health_repo.SourceHealth(name)
        finally:
            engine.dispose()
        now = datetime.now(UTC)
        unit = request_unit(specs[name].kind)
        if not outcome.ran:
            until = f" until {outcome.deferred_until:%Y-%m-%d %H:%M:%S} UTC" if outcome.deferred_until else ""
            why = outcome.problem or f"deferred{until} after: {health.last_error or 'an earlier failure'}"
            hint = "" if outcome.problem else "; give --force to poll it anyway"
            typer.echo(f"error: {name} not polled: {why}{hint}", err=True)
        else:
            typer.echo(f"{name}: {outcome.fetched} fetched, {outcome.new} new, "
                       f"{outcome.fetched - outcome.new} already stored, {len(outcome.skipped)} skipped, "
                       f"{outcome.requests} {unit}")
        typer.echo(f"  cursor before: {_short(before)}")
        typer.echo(f"  cursor after:  {_short(after)}")
        if budget is None:
            typer.echo("  budget:        no daily budget")
        else:
            typer.echo(f"  budget:        {health.budget_left(budget, now.date())} of {budget} {unit} left today "
                       "(UTC)")
        if outcome.ran and outcome.problem:
            typer.echo(f"  problem:       {outcome.problem}")
        if outcome.ran and outcome.deferred_until:
            typer.echo(f"  deferred until {outcome.deferred_until:%Y-%m-%d %H:%M:%S} UTC")
        if not outcome.ran:
            raise typer.Exit(3)
        if outcome.problem and outcome.fetched == 0:
            raise typer.Exit(1)
