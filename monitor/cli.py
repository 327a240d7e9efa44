"""Command line: `monitor run | demo | check | classify | schema`, plus the groups in `monitor/commands/`.

Errors in files people edit are printed as ``file:line:col: key: problem``
lines with exit code 1 — never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from monitor.clock import FakeClock, SystemClock
from monitor.settings import Settings
from monitor.yamlconfig import ConfigInvalid

app = typer.Typer(help="Reputation monitoring and escalation worker.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)

PACKAGE_ROOT = Path(__file__).resolve().parent
SAMPLE_FEED = PACKAGE_ROOT / "data" / "sample_mentions.jsonl"
CHECKOUT = PACKAGE_ROOT.parent  # rules/ and escalation.yaml beside the package in a checkout


def _default_path(given: Path, fallback: Path) -> Path:
    """Use the file in the working directory, else the one shipped in the checkout."""
    return given if given.exists() or not fallback.exists() else fallback


def _fail_config(exc: ConfigInvalid) -> None:
    for error in exc.errors:
        typer.echo(f"error: {error}", err=True)
    typer.echo(f"{len(exc.errors)} problem(s) found.", err=True)
    raise typer.Exit(1)


@app.command()
def check(
    rules: Annotated[Path, typer.Option(help="Folder of rule files")] = Path("rules"),
    escalation: Annotated[Path, typer.Option(help="Escalation procedure file")] = Path("escalation.yaml"),
    collect: Annotated[Path, typer.Option(help="What to collect (checked when the file exists)")] = Path(
        "monitor.yaml"),
) -> None:
    """Validate rules/*.yaml, escalation.yaml and monitor.yaml; exit 1 listing every problem with file and line."""
    from monitor.detect import load_rules
    from monitor.escalation.schema import load_escalation
    from monitor.sources.schema import load_collect

    errors = []
    try:
        rule_set = load_rules(rules)
        typer.echo(f"ok: {len(rule_set.rules)} rule(s) in {len(rule_set.files)} file(s) "
                   f"({len(rule_set.enabled)} enabled)")
    except ConfigInvalid as exc:
        errors.extend(exc.errors)
    try:
        config = load_escalation(escalation)
        typer.echo(f"ok: {escalation}: {len(config.responders)} responder(s), {len(config.policies)} policy(ies)")
    except ConfigInvalid as exc:
        errors.extend(exc.errors)
    if collect.exists():
        try:
            sources = load_collect(collect)
            typer.echo(f"ok: {collect}: {len(sources.brands)} brand(s)")
        except ConfigInvalid as exc:
            errors.extend(exc.errors)
    if errors:
        _fail_config(ConfigInvalid(errors))


@app.command()
def schema(
    rules: Annotated[Path, typer.Option(help="Where to write the rule schema")] = Path("rules/schema.json"),
    escalation: Annotated[Path, typer.Option(help="Where to write the escalation schema")] = Path(
        "escalation.schema.json"),
) -> None:
    """Write JSON Schemas for editors (from the same models `check` uses)."""
    from monitor.detect import RuleFile
    from monitor.escalation import EscalationConfig

    for path, model in ((rules, RuleFile), (escalation, EscalationConfig)):
        path.write_text(json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        typer.echo(f"wrote {path}")


@app.command()
def classify(
    file: Annotated[Path | None, typer.Argument(help="JSONL with a 'text' field, or plain lines; '-' or "
                                                     "nothing for stdin")] = None,
    model: Annotated[str, typer.Option(help="'default' or a Hugging Face model id / local path")] = "default",
    languages: Annotated[str, typer.Option(help="Expected languages, comma-separated")] = "nl,fr,en",
) -> None:
    """Score texts: one JSON object per input line with label, scores and language."""
    from monitor.classify import LanguageDetector, load_model

    stream = sys.stdin if file is None or str(file) == "-" else file.open(encoding="utf-8")
    texts: list[str] = []
    for line in stream:
        if not line.strip():
            continue
        text: Any = line.rstrip("\n")
        if line.lstrip().startswith("{"):
            with contextlib.suppress(json.JSONDecodeError, AttributeError):
                text = json.loads(line).get("text", "")
        texts.append(str(text if text is not None else ""))
    scorer = load_model(model)
    detector = LanguageDetector([x.strip() for x in languages.split(",") if x.strip()])
    for text, scores in zip(texts, scorer.predict(texts), strict=True):
        typer.echo(json.dumps({"text": text, "label": scores.label.value,
                               "scores": {k: round(v, 4) for k, v in scores.as_dict().items()},
                               "language": detector.detect(text)}, ensure_ascii=False))


@app.command()
def run(
    feed: Annotated[Path | None, typer.Option(help="Replay this JSONL file (instead of the live sources, "
                                                   "unless --collect is given too)")] = None,
    collect: Annotated[Path | None, typer.Option(help="What to collect (default: monitor.yaml)")] = None,
) -> None:
    """Run the worker until stopped (Ctrl-C or SIGTERM finish the current batch first)."""
    from monitor.app import build_worker, plan_sources
    from monitor.ops import setup_logging
    from monitor.ops.logging import wants_json

    # Handlers first: a SIGTERM during start-up must still mean "stop cleanly", not "die".
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    settings = Settings()
    setup_logging(settings.log_level, json=wants_json(settings.log_format))
    try:
        sources = plan_sources(settings, feed=feed, collect_named=collect is not None,
                               collect_file=_default_path(collect or Path("monitor.yaml"), CHECKOUT / "monitor.yaml"))
        worker = build_worker(settings, SystemClock(), sources=sources)
    except ConfigInvalid as exc:
        _fail_config(exc)
        return
    worker.start()
    stop.wait()
    logging.getLogger("monitor").info("stopping: finishing the current batch")
    worker.stop()


@app.command()
def demo(
    feed: Annotated[Path, typer.Option(help="JSONL feed to replay")] = SAMPLE_FEED,
    step: Annotated[int, typer.Option(help="Minutes of feed time per step")] = 15,
    keep_db: Annotated[Path | None, typer.Option(help="Keep the SQLite store at this path")] = None,
) -> None:
    """Run the worker on the bundled feed in simulated time, print the alerts and a summary."""
    from monitor.app import Mode, SourcePlan, build_worker
    from monitor.demo import feed_bounds, summarise
    from monitor.notify import ConsoleNotifier
    from monitor.ops import setup_logging
    from monitor.sources import ReplaySource

    setup_logging("WARNING", json=False)
    first, last = feed_bounds(feed)
    clock = FakeClock(first - timedelta(minutes=1))
    db = keep_db or Path(tempfile.mkdtemp(prefix="monitor-demo-")) / "demo.db"
    settings = Settings(
        db_url=f"sqlite:///{db}",
        rules_dir=_default_path(Path("rules"), CHECKOUT / "rules"),
        escalation_file=_default_path(Path("escalation.yaml"), CHECKOUT / "escalation.yaml"),
        sentiment_model="default",
    )
    typer.echo(f"Replaying {feed.name} ({first:%d %b} to {last:%d %b}) in simulated time; store: {db}")
    typer.echo("Loading the offline sentiment model ...")
    try:
        worker = build_worker(settings, clock, mode=Mode.SIMULATED, notifier=ConsoleNotifier(sys.stdout),
                              sources=SourcePlan((ReplaySource(feed, name="demo-feed", release_until=clock.now),)))
    except ConfigInvalid as exc:
        _fail_config(exc)
        return
    started = time.monotonic()
    # Until two hours after the last post: the last escalation timers run too.
    worker.run_simulated(clock, step=timedelta(minutes=step), until=last + timedelta(hours=2))
    summarise(worker.engine, settings.timezone, time.monotonic() - started)


# Command groups living in monitor/commands/<name>.py, each with register(app).
COMMAND_MODULES: tuple[str, ...] = ("backtest", "escalation", "silences", "sources", "digest", "privacy", "poll",
                                     "console")


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"monitor.commands.{name}").register(app)


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
