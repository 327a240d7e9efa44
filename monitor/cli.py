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
from datetime import datetime, timedelta
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
    from monitor.app import build_pipeline, open_store
    from monitor.digest.job import schedule_weekly_digest
    from monitor.digest.slack import ConsolePoster, DigestPoster, SlackPoster
    from monitor.escalation.schema import load_escalation
    from monitor.notify.factory import build_action_listener, build_notifier
    from monitor.notify.slack import SlackNotifier
    from monitor.ops import HealthCheck, Metrics, setup_logging, start_metrics_server
    from monitor.ops.logging import wants_json
    from monitor.privacy import schedule_purge
    from monitor.sources import ReplaySource, Source
    from monitor.sources.factory import build_sources
    from monitor.sources.schema import load_collect
    from monitor.worker import Worker

    # Handlers first: a SIGTERM during start-up must still mean "stop cleanly", not "die".
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    settings = Settings()
    setup_logging(settings.log_level, json=wants_json(settings.log_format))
    log = logging.getLogger("monitor")
    clock = SystemClock()
    engine = open_store(settings.db_url)
    collect_file = _default_path(collect or Path("monitor.yaml"), CHECKOUT / "monitor.yaml")
    try:
        escalation_config = load_escalation(settings.escalation_file)
        notifier = build_notifier(settings, engine, escalation_config, base_url=settings.slack_api_url)
        pipeline = build_pipeline(settings, notifier=notifier, clock=clock, engine=engine,
                                  escalation_config=escalation_config)
        # A replayed feed replaces the live sources unless a collect file is named explicitly.
        wants_live = collect is not None or not (feed or settings.feed)
        collect_config = load_collect(collect_file) if wants_live and collect_file.exists() else None
    except ConfigInvalid as exc:
        _fail_config(exc)
        return
    sources: list[Source] = []
    if collect_config is not None:
        sources.extend(build_sources(collect_config, settings))
        pipeline.unhealthy_after = collect_config.source_unhealthy_after
    if feed or settings.feed:
        sources.append(ReplaySource(feed or settings.feed, batch_size=settings.feed_batch))  # type: ignore[arg-type]
    if not sources:
        log.warning("no sources configured: only escalation timers will run")
    pipeline.watched_sources = [s for s in sources if not isinstance(s, ReplaySource)]
    worker = Worker(pipeline, sources, timezone=settings.timezone,
                    poll_every=timedelta(seconds=settings.poll_seconds),
                    pass_every=timedelta(seconds=settings.pass_seconds))

    metrics = Metrics()
    metrics.watch_store(engine, unhealthy_after=pipeline.unhealthy_after)
    pipeline.metrics = metrics
    stop_metrics = start_metrics_server(metrics, settings.metrics_port, settings.metrics_host, health=HealthCheck(
        metrics, pass_interval=timedelta(seconds=settings.pass_seconds)))
    # Under the pass lock: a pass must not copy a post into a notification while the purge removes it.
    schedule_purge(worker.scheduler, engine, settings, clock, settings.timezone, lock=worker.pass_lock)
    poster: DigestPoster = ConsolePoster()
    if isinstance(notifier, SlackNotifier) and settings.slack_channel:
        poster = SlackPoster(notifier.client, settings.slack_channel)
    schedule_weekly_digest(worker.scheduler, engine, escalation_config, poster, clock, timezone=settings.timezone)

    def pass_now() -> None:  # after a button click: update Slack at once, on the worker's thread
        worker.scheduler.modify_job("pass", next_run_time=datetime.now(worker.scheduler.timezone))

    listener = build_action_listener(settings, notifier, pipeline.escalation, on_applied=pass_now,
                                     lock=worker.pass_lock)
    worker.start()
    if listener is not None:
        listener.start()
    stop.wait()
    log.info("stopping: finishing the current batch")
    if listener is not None:
        listener.stop()
    worker.stop()
    stop_metrics()


@app.command()
def demo(
    feed: Annotated[Path, typer.Option(help="JSONL feed to replay")] = SAMPLE_FEED,
    step: Annotated[int, typer.Option(help="Minutes of feed time per scheduler tick")] = 15,
    keep_db: Annotated[Path | None, typer.Option(help="Keep the SQLite store at this path")] = None,
) -> None:
    """Run the worker on the bundled feed in simulated time, print the alerts and a summary."""
    from monitor.app import build_pipeline
    from monitor.demo import feed_bounds, summarise
    from monitor.notify import ConsoleNotifier
    from monitor.ops import setup_logging
    from monitor.settings import Settings
    from monitor.sources import ReplaySource
    from monitor.worker import Worker

    setup_logging("WARNING", json=False)
    # Steps are back to back on purpose; "skipped: maximum number of running instances" is expected here.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    first, last = feed_bounds(feed)
    clock = FakeClock(first - timedelta(minutes=1))
    workdir = Path(tempfile.mkdtemp(prefix="monitor-demo-"))
    db = keep_db or workdir / "demo.db"
    settings = Settings(
        db_url=f"sqlite:///{db}",
        rules_dir=_default_path(Path("rules"), CHECKOUT / "rules"),
        escalation_file=_default_path(Path("escalation.yaml"), CHECKOUT / "escalation.yaml"),
        sentiment_model="default",
    )
    typer.echo(f"Replaying {feed.name} ({first:%d %b} to {last:%d %b}) in simulated time; store: {db}")
    typer.echo("Loading the offline sentiment model ...")
    try:
        pipeline = build_pipeline(settings, notifier=ConsoleNotifier(sys.stdout), clock=clock)
    except ConfigInvalid as exc:
        _fail_config(exc)
        return
    source = ReplaySource(feed, name="demo-feed", release_until=clock.now)
    tick = timedelta(seconds=0.01)
    worker = Worker(pipeline, [source], timezone=settings.timezone, poll_every=tick, pass_every=tick)
    end = last + timedelta(hours=2)  # let the last escalation timers run

    def advance_feed_clock() -> None:
        if clock.now() < end:
            clock.advance(timedelta(minutes=step))

    started = time.monotonic()
    worker.start_lockstep(tick, before=advance_feed_clock)
    try:
        while not (worker.finished() and clock.now() >= end):
            time.sleep(0.05)
    finally:
        worker.stop()
    summarise(pipeline.engine, settings.timezone, time.monotonic() - started)


# Command groups living in monitor/commands/<name>.py, each with register(app).
COMMAND_MODULES: tuple[str, ...] = ("backtest", "escalation", "silences", "sources", "digest", "privacy", "poll")


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"monitor.commands.{name}").register(app)


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
