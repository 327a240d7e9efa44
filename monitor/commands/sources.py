"""The ``monitor import`` and ``monitor sources`` commands: options, messages and exit codes only.

``monitor import`` loads X archives through ``sources/twarc.py``; ``monitor
sources`` says what ``monitor.yaml`` collects and whether it is working, from the
store's health records, cursors and counts.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine

from monitor.commands.common import fail, fail_config, open_store_or_exit, settings_or_exit
from monitor.durations import format_duration
from monitor.i18n import Translator, translator
from monitor.settings import Settings
from monitor.sources.schema import CollectConfig, load_collect
from monitor.yamlconfig import ConfigInvalid

CHECKOUT = Path(__file__).resolve().parent.parent.parent  # monitor.yaml beside the package in a checkout
ConfigOption = Annotated[Path, typer.Option("--config", envvar="MONITOR_COLLECT_FILE",
                                            help="What to collect (monitor.yaml)")]


class ImportFormat(enum.StrEnum):
    TWARC = "twarc"


def _config_path(given: Path) -> Path:
    fallback = CHECKOUT / "monitor.yaml"
    return given if given.exists() or not fallback.exists() or given != Path("monitor.yaml") else fallback


def load_config_or_exit(path: Path) -> CollectConfig:
    """``monitor.yaml`` (or the checkout's), or its problems listed with file and line and exit 1."""
    try:
        return load_collect(_config_path(path))
    except ConfigInvalid as exc:
        fail_config(exc)


def _resolve_brand(brand: str | None, config_path: Path) -> tuple[str, list[str] | None]:
    """The brand to file tweets under and its expected languages (None when monitor.yaml has no say)."""
    path = _config_path(config_path)
    if brand is not None and not path.exists():
        return brand, None
    if brand is None and not path.exists():
        typer.echo(f"error: give --brand (there is no {path} to take the brand from)", err=True)
        raise typer.Exit(2)
    config = load_config_or_exit(path)
    if brand is None:
        if len(config.brands) != 1:
            typer.echo(f"error: {path} lists {len(config.brands)} brands ({', '.join(config.brands)}); "
                       "say which with --brand", err=True)
            raise typer.Exit(2)
        brand = next(iter(config.brands))
    cfg = config.brands.get(brand)
    return brand, (list(cfg.languages) if cfg else None)


# --- sources --------------------------------------------------------------------------------------

def _when(at: datetime | None, now: datetime, t: Translator) -> str:
    """'Wed 18 Nov 11:00 (Brussels time) (2 h ago)': the operator's zone, named, never bare UTC."""
    if at is None:
        return "never"
    ago = now - at
    rel = f"{format_duration(ago)} ago" if ago >= timedelta(0) else f"in {format_duration(-ago)}"
    return f"{t.datetime_zone(at)} ({rel})"


def describe_sources(engine: Engine, config: CollectConfig, settings: Settings, now: datetime) -> list[str]:
    """The lines ``monitor sources`` prints, one block per configured source."""
    from monitor.sources.factory import configured, context, credentials_status, platform_line
    from monitor.sources.polling import request_unit
    from monitor.store import arrivals as arrivals_repo
    from monitor.store import health as health_repo
    from monitor.store import quarantine as quarantine_repo
    from monitor.store import transaction
    from monitor.store.mentions import get_cursor

    ctx = context(config, settings)
    t = translator("en", settings.timezone)  # operators' lines are English, their times in the team's zone
    lines: list[str] = []
    with transaction(engine) as conn:
        rows = health_repo.all_health(conn)
        # Per configured source, from its own arrivals: the mentions table keys posts by platform, so
        # two Mastodon instances (or Google News editions) cannot be told apart there.
        delivered = arrivals_repo.delivered_since(conn, now - timedelta(hours=24))
        quarantined = quarantine_repo.counts(conn)
        for spec in configured(config):
            health = rows.get(spec.name)
            cursor = get_cursor(conn, spec.name)
            fetched, new = delivered.get(spec.name, (0, 0))
            credentials = credentials_status(spec, ctx)
            if health is None:
                status = "never polled"
            elif health.deferred_until is not None and health.deferred_until > now:
                status = f"deferred until {t.datetime_zone(health.deferred_until)}"
            elif health.consecutive_failures:
                status = f"failing: {health.consecutive_failures} poll(s) in a row"
            else:
                status = "ok"
            if health and health.failing_since is not None and health.unhealthy(now, config.source_unhealthy_after):
                blind = " - it cannot see: fix what the last error names" if health.blind else ""
                status += f" - UNHEALTHY (failing for {format_duration(now - health.failing_since)}){blind}"
            state = health or health_repo.SourceHealth(spec.name)
            if spec.daily_budget is None:
                budget = "no daily budget"
            else:
                left = state.budget_left(spec.daily_budget, now.date())
                budget = f"{left} of {spec.daily_budget} {request_unit(spec.kind)} left today (UTC)"
            shown_cursor = "none yet" if not cursor else (
                cursor if len(cursor) <= 80 else cursor[:77] + "...")
            error = f"{_when(state.last_error_at, now, t)}: {state.last_error}" if state.last_error else "none"
            lines += [
                f"{spec.name}  [{status}]",
                f"  platform:     {platform_line(spec)}",
                f"  collects:     {spec.target}  (every {format_duration(spec.poll_every)})",
                f"  credentials:  {credentials}",
                f"  last success: {_when(state.last_success_at, now, t)}",
                f"  last error:   {error}",
                f"  cursor:       {shown_cursor}",
                f"  last 24 h:    {new} new item(s) stored, {fetched} delivered by this source",
                f"  budget:       {budget}",
            ]
            if quarantined.get(spec.name):
                lines.append(f"  quarantined:  {quarantined[spec.name]} post(s) set aside; latest: " + "; ".join(
                    f"{q.source_id} ({q.stage}, {_when(q.at, now, t)}): {q.reason}"
                    for q in quarantine_repo.recent(conn, spec.name, 1)))
            lines.append("")
    return lines


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_(
        file: Annotated[Path, typer.Argument(help="JSON lines: X API v2 search pages as `twarc2 search` writes "
                                                  "them, or one tweet object a line", exists=True,
                                             dir_okay=False)],
        format: Annotated[ImportFormat, typer.Option("--format", help="Format of FILE")] = ImportFormat.TWARC,
        brand: Annotated[str | None, typer.Option(help="Brand the tweets are filed under (default: the single "
                                                       "brand of monitor.yaml)")] = None,
        languages: Annotated[str | None, typer.Option(help="Expected languages, comma-separated (default: the "
                                                           "brand's in monitor.yaml); other tags are left to our "
                                                           "detector")] = None,
        config: ConfigOption = Path("monitor.yaml"),
    ) -> None:
        """Load an X archive into the store, exactly as the live X source would have stored it.

        Tweets already stored (same id) are counted and left alone, so importing twice is harmless.
        """
        from monitor.sources.twarc import import_file

        settings = settings_or_exit()
        name, expected = _resolve_brand(brand, config)
        if languages is not None:
            expected = [x.strip() for x in languages.split(",") if x.strip()]
        elif expected is None:
            expected = list(settings.languages)
        engine = open_store_or_exit(settings)
        try:
            counts = import_file(engine, file, brand=name, languages=expected, now=datetime.now(UTC))
        finally:
            engine.dispose()
        for problem in counts.problems[:20]:
            typer.echo(problem, err=True)
        if len(counts.problems) > 20:
            typer.echo(f"... and {len(counts.problems) - 20} more", err=True)
        usable = counts.read - counts.skipped
        bad = f", {counts.bad_lines} unreadable line(s)" if counts.bad_lines else ""
        typer.echo(f"{file}: read {counts.read} tweet(s) on {counts.lines} line(s) for {name}: "
                   f"{counts.new} new, {usable - counts.new} already stored, {counts.skipped} skipped{bad}")
        if counts.stopped is not None and counts.file_at_fault and not counts.pages_done:
            fail(f"{counts.stopped}; nothing was stored")
        if counts.stopped is not None:
            then = "fix or remove that line, then run again" if counts.file_at_fault else "run again"
            fail(f"stored {counts.pages_done} of {counts.pages} pages' posts, stopped at {counts.stopped}; "
                 f"{then} to continue (pages already stored are not stored twice)")

    @app.command("sources")
    def sources(config: ConfigOption = Path("monitor.yaml")) -> None:
        """List the configured sources with their health, cursor, last-24-hour count and budget."""
        settings = settings_or_exit()
        collect = load_config_or_exit(config)
        engine = open_store_or_exit(settings)
        try:
            lines = describe_sources(engine, collect, settings, datetime.now(UTC))
        finally:
            engine.dispose()
        for line in lines:
            typer.echo(line)
