"""``monitor backtest``: see the alert load of a rule change before it goes live."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from monitor.classify import ModelUnavailable, load_model
from monitor.commands.common import BadInput, fail, fail_config, open_store_or_exit, settings_or_exit
from monitor.detect import load_rules
from monitor.detect.backtest import BacktestResult, backtest, busiest_day, score_missing
from monitor.durations import parse_duration
from monitor.models import Mention, StoredMention
from monitor.yamlconfig import ConfigInvalid


def _read_file(path: Path, brand: str | None) -> Iterator[Mention]:
    """JSONL mentions (our replay format) or X API v2 pages as written by ``twarc2 search``."""
    from monitor.commands.common import text_lines
    from monitor.sources.replay import mention_from_dict

    with path.open("rb") as fh:
        for line_no, line in text_lines(fh, str(path)):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                typer.echo(f"{path}:{line_no}: skipped: not JSON ({exc.msg})", err=True)
                continue
            if isinstance(obj, dict) and "data" in obj and brand is not None:
                from monitor.sources.x import mentions_from_page  # the live X source's normaliser

                yield from mentions_from_page(obj, brand=brand)
                continue
            try:
                yield mention_from_dict(obj, default_brand=brand)
            except ValueError as exc:
                typer.echo(f"{path}:{line_no}: skipped: {exc}", err=True)


def _table(title: str, result: BacktestResult, other: BacktestResult | None = None) -> Table:
    days = max(result.days, 1)
    table = Table(title=title)
    for col in ("rule", "severity", "signals", "posts", "alerts", "alerts/day", "max/day", "suppressed",
                "inhibited", "merged"):
        table.add_column(col, justify="left" if col in ("rule", "severity") else "right")
    names = sorted(set(result.rules) | set(other.rules if other else {}))
    for name in names:
        r = result.rules.get(name)
        o = other.rules.get(name) if other else None

        def cell(new: float | None, old: float | None, fmt: str = "{:.0f}") -> str:
            text = "—" if new is None else fmt.format(new)
            if other is not None and old != new:
                text += f" (was {'—' if old is None else fmt.format(old)})"
            return text

        table.add_row(
            name,
            (r or o).severity if (r or o) else "",  # type: ignore[union-attr]
            cell(r.signals if r else None, o.signals if o else None),
            cell(len(r.mentions) if r else None, len(o.mentions) if o else None),
            cell(r.incidents if r else None, o.incidents if o else None),
            cell(r.incidents / days if r else None, o.incidents / max(other.days, 1) if o and other else None,
                 "{:.1f}"),
            cell(max(r.alerts_per_day.values(), default=0) if r else None,
                 max(o.alerts_per_day.values(), default=0) if o else None),
            cell(r.suppressed if r else None, o.suppressed if o else None),
            cell(r.inhibited if r else None, o.inhibited if o else None),
            cell(r.merged if r else None, o.merged if o else None),
        )
    return table


def register(app: typer.Typer) -> None:
    @app.command("backtest")
    def backtest_command(
        since: Annotated[str | None, typer.Option(help="Stored mentions from this long ago, e.g. 7d")] = None,
        data: Annotated[Path | None, typer.Option(help="JSONL mentions or a twarc export instead of the store")] = None,
        brand: Annotated[str | None, typer.Option(help="Brand for --data lines that have none (twarc)")] = None,
        rules: Annotated[Path, typer.Option(help="Rules to test")] = Path("rules"),
        compare: Annotated[Path | None, typer.Option(help="Other rules folder, shown side by side")] = None,
        escalation: Annotated[Path, typer.Option(help="For the grouping window")] = Path("escalation.yaml"),
        model: Annotated[str, typer.Option(help="Sentiment model for unscored posts")] = "default",
    ) -> None:
        """Run rules over past mentions and print what would have fired and how many alerts a day."""
        console = Console(stderr=False)
        if (since is None) == (data is None):
            raise typer.BadParameter("give exactly one of --since (stored mentions) or --data FILE")
        try:
            lookback = parse_duration(since) if since is not None else None
        except ValueError as exc:
            fail(f"--since: {exc}", 2)
        if data is not None and not data.is_file():
            fail(f"--data: {data} is not a file", 2)
        try:
            new_rules = load_rules(rules)
            old_rules = load_rules(compare) if compare else None
        except ConfigInvalid as exc:
            fail_config(exc)
        window = timedelta(hours=6)
        zone = "Europe/Brussels"
        if escalation.exists():
            from monitor.escalation.schema import load_escalation

            try:
                config = load_escalation(escalation)
                window, zone = config.grouping.window, config.timezone
            except ConfigInvalid as exc:
                typer.echo(f"warning: {escalation} is invalid, using a 6 h grouping window ({exc.errors[0]})",
                           err=True)
        try:
            scorer = load_model(model)
        except ModelUnavailable as exc:
            fail(str(exc))
        # Materialise once: both rule sets must see the very same scored mentions.
        items: list[StoredMention]
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("loading and scoring mentions", total=None)
            if data is not None:
                raw: Iterable[StoredMention] = (StoredMention(i, m) for i, m in enumerate(_read_file(data, brand), 1))
            else:
                from monitor.store import mentions as repo

                assert lookback is not None
                engine = open_store_or_exit(settings_or_exit())
                start = datetime.now(UTC) - lookback
                conn = engine.connect()
                raw = repo.iter_since(conn, start)
            items = []
            try:
                for sm in score_missing(raw, scorer):
                    items.append(sm)
                    if len(items) % 5000 == 0:
                        progress.update(task, completed=len(items))
            except BadInput as exc:
                fail(f"{exc}; nothing was backtested")
            items.sort(key=lambda s: (s.mention.created_at, s.id))
            task2 = progress.add_task("running rules", total=len(items) * (2 if old_rules else 1))
            done = [0]

            def advance(n: int) -> None:
                progress.update(task2, completed=done[0] + n)

            result = backtest(new_rules.rules, items, grouping_window=window, timezone=zone, progress=advance)
            done[0] = len(items)
            old = (backtest(old_rules.rules, items, grouping_window=window, timezone=zone, progress=advance)
                   if old_rules else None)
        first = f"{result.first:%d %b %Y}" if result.first else "-"
        last = f"{result.last:%d %b %Y}" if result.last else "-"
        console.print(f"{result.mentions:,} mentions from {first} to {last} ({result.days} day(s))")
        console.print("alerts = incidents a responder would get; suppressed = repeats silenced by realert; "
                      "inhibited = single posts absorbed by an active volume incident; merged = posts another "
                      "rule had already alerted on", highlight=False)
        console.print(_table(f"Rules in {rules}" + (f" (compared with {compare})" if compare else ""), result, old))
        day, n = busiest_day(result)
        total = result.total_incidents
        console.print(f"Alerts a responder would have received: {total} "
                      f"({total / max(result.days, 1):.1f} a day; busiest day {day or '-'}: {n})")
        if old is not None:
            console.print(f"Before the change: {old.total_incidents} "
                          f"({old.total_incidents / max(old.days, 1):.1f} a day)")
        for report in result.rules.values():
            for example in report.examples:
                console.print(f"  [{report.rule}] {example}", markup=False, highlight=False)
