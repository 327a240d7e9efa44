"""``monitor backtest``: see the alert load of a rule change before it goes live."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from monitor.classify import LanguageDetector, ModelUnavailable, load_model
from monitor.classify.thresholds import thresholds_of
from monitor.commands.common import BadInput, fail, fail_config, open_store_or_exit, settings_or_exit
from monitor.detect import load_rules
from monitor.detect.backtest import BacktestResult, backtest, busiest_day, score_missing
from monitor.durations import parse_duration
from monitor.models import Mention, StoredMention
from monitor.yamlconfig import ConfigInvalid


@dataclass(slots=True)
class DataFile:
    """The posts of a ``--data`` file as the worker would hold them, and what could not be read."""

    mentions: list[StoredMention] = field(default_factory=list)
    lines: int = 0  # non-blank lines
    duplicates: int = 0  # posts already read from an earlier line (same source and id): stored once
    problems: list[str] = field(default_factory=list)


def read_data(path: Path, *, brand: str | None, languages: Sequence[str], detector: LanguageDetector) -> DataFile:
    """Each line a post in the replay format (README, "Backtests on a file"), an X API v2 page as
    ``twarc2 search`` writes it, or one tweet object, as ``monitor import`` accepts.

    The worker's own steps, in its order: the sources' normalisers (``mention_from_dict`` as the replay
    source, ``mentions_from_page`` as the X source and ``monitor import``), the store's deduplication
    (``first_of_each``: the same post twice is one post), then the language the detector gives a post
    without a platform tag (per-language keywords depend on it). ``BadInput`` for a file that is not text.
    """
    from monitor.inputs import json_lines
    from monitor.sources.replay import mention_from_dict
    from monitor.sources.x import mentions_from_page
    from monitor.store.mentions import first_of_each

    out = DataFile()

    def posts() -> Iterator[Mention]:
        with path.open("rb") as fh:
            for where, obj, problem in json_lines(fh, str(path)):
                out.lines += 1
                if problem is not None:
                    out.problems.append(problem)
                    continue
                if isinstance(obj, dict) and ("source_id" in obj or "source" in obj):
                    try:
                        yield mention_from_dict(obj, default_brand=brand)
                    except ValueError as exc:
                        out.problems.append(f"{where}: skipped: {exc}")
                    continue
                if brand is None:
                    out.problems.append(f"{where}: skipped: an X post; say which brand it is about with --brand")
                    continue
                page = mentions_from_page(obj, brand=brand, languages=languages, where=where)
                out.problems.extend(page.skipped)
                yield from page.mentions

    given = 0

    def counted() -> Iterator[Mention]:
        nonlocal given
        for mention in posts():
            given += 1
            yield mention

    for number, mention in enumerate(first_of_each(counted()), start=1):
        if mention.language is None:  # as the worker's scoring step: a platform's tag wins, else the detector
            language = detector.detect(mention.text)
            mention = dataclasses.replace(mention, language=language) if language else mention
        out.mentions.append(StoredMention(number, mention))
    out.duplicates = given - len(out.mentions)
    return out


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


def _single_brand(collect_file: Path) -> str | None:
    """The brand X posts are filed under when --brand is not given: monitor.yaml's only brand, as ``import``."""
    from monitor.sources.schema import load_collect

    try:
        brands = list(load_collect(collect_file).brands) if collect_file.is_file() else []
    except ConfigInvalid:
        return None
    return brands[0] if len(brands) == 1 else None


def register(app: typer.Typer) -> None:
    @app.command("backtest")
    def backtest_command(
        since: Annotated[str | None, typer.Option(help="Stored mentions from this long ago, e.g. 7d")] = None,
        data: Annotated[Path | None, typer.Option(help="JSONL mentions or a twarc export instead of the store")] = None,
        brand: Annotated[str | None, typer.Option(help="Brand for --data lines that have none (X posts; default: "
                                                       "the single brand of monitor.yaml)")] = None,
        rules: Annotated[Path | None, typer.Option(help="Rules to test (default: MONITOR_RULES_DIR, rules)")] = None,
        compare: Annotated[Path | None, typer.Option(help="Other rules folder, shown side by side")] = None,
        escalation: Annotated[Path | None, typer.Option(help="For the grouping window (default: "
                                                              "MONITOR_ESCALATION_FILE)")] = None,
        model: Annotated[str | None, typer.Option(help="Sentiment model for unscored posts (default: "
                                                       "MONITOR_SENTIMENT_MODEL, as the worker)")] = None,
    ) -> None:
        """Run rules over past mentions and print what would have fired and how many alerts a day.

        With --data, the file's posts go through the worker's own steps first (deduplication,
        language detection, the worker's model and languages from the settings).
        """
        console = Console(stderr=False)
        if (since is None) == (data is None):
            raise typer.BadParameter("give exactly one of --since (stored mentions) or --data FILE")
        try:
            lookback = parse_duration(since) if since is not None else None
        except ValueError as exc:
            fail(f"--since: {exc}", 2)
        if data is not None and not data.is_file():
            fail(f"--data: {data} is not a file", 2)
        settings = settings_or_exit()
        rules = rules or settings.rules_dir
        escalation = escalation or settings.escalation_file
        try:
            new_rules = load_rules(rules)
            old_rules = load_rules(compare) if compare else None
        except ConfigInvalid as exc:
            fail_config(exc)
        window = timedelta(hours=6)
        zone = settings.timezone
        if escalation.exists():
            from monitor.escalation.schema import load_escalation

            try:
                config = load_escalation(escalation)
                window, zone = config.grouping.window, config.timezone
            except ConfigInvalid as exc:
                typer.echo(f"warning: {escalation} is invalid, using a 6 h grouping window ({exc.errors[0]})",
                           err=True)
        # The worker's detector and model: its languages decide which per-language keywords a post meets.
        detector = LanguageDetector(settings.languages)
        try:
            scorer = load_model(model or settings.sentiment_model, settings.sentiment_precision, detector,
                                engine=settings.sentiment_engine, threads=settings.sentiment_threads,
                                weights=settings.sentiment_weights)
        except ModelUnavailable as exc:
            fail(str(exc))
        # Materialise once: both rule sets must see the very same scored mentions.
        items: list[StoredMention]
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("loading and scoring mentions", total=None)
            if data is not None:
                try:
                    read = read_data(data, brand=brand or _single_brand(settings.collect_file),
                                     languages=settings.languages, detector=detector)
                except BadInput as exc:
                    fail(f"{exc}; nothing was backtested")
                for problem in read.problems[:20]:
                    typer.echo(problem, err=True)
                if len(read.problems) > 20:
                    typer.echo(f"... and {len(read.problems) - 20} more", err=True)
                if not read.mentions:
                    fail(f"{data}: no post could be read from its {read.lines} line(s); each line must be a post "
                         "in the replay format or an X post (README, 'Backtests on a file'); nothing was backtested")
                if read.duplicates:
                    typer.echo(f"{data}: {read.duplicates} post(s) appear more than once; counted once, as the "
                               "worker stores them", err=True)
                raw: Iterable[StoredMention] = read.mentions
            else:
                from monitor.store import mentions as repo

                assert lookback is not None
                engine = open_store_or_exit(settings)
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

            thresholds = thresholds_of(scorer)
            result = backtest(new_rules.rules, items, grouping_window=window, timezone=zone, progress=advance,
                              negative_thresholds=thresholds)
            done[0] = len(items)
            old = (backtest(old_rules.rules, items, grouping_window=window, timezone=zone, progress=advance,
                            negative_thresholds=thresholds) if old_rules else None)
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
