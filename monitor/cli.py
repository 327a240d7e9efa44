"""Command line: `monitor run | demo | check | classify | schema`, plus the groups in `monitor/commands/`.

Errors in files people edit are printed as ``file:line:col: key: problem``
lines with exit code 1 — never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

from monitor.clock import FakeClock, SystemClock
from monitor.commands.common import fail_config as _fail_config
from monitor.commands.common import settings_or_exit
from monitor.settings import Settings
from monitor.yamlconfig import ConfigError, ConfigInvalid

# Command name -> the module of monitor/commands/ whose register(app) defines it. A module is imported only
# when one of its commands runs (or for --help, which lists them all): importing all of them (SQLAlchemy,
# Alembic, the escalation engine, ...) cost about a second before `monitor classify` read its first line.
LAZY_COMMANDS: dict[str, str] = {
    "backtest": "backtest", "escalation": "escalation", "silence": "silences", "import": "sources",
    "sources": "sources", "digest": "digest", "forget": "privacy", "purge": "privacy", "poll": "poll",
    "reload": "reload", "outbox": "outbox", "console": "console", "label": "label", "tune": "tune",
    "workers": "workers",
}
# Command groups living in monitor/commands/<name>.py, each with register(app), in --help order.
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(LAZY_COMMANDS.values()))


class LazyCommands(TyperGroup):
    """The top-level group: the commands of ``monitor/commands/`` are registered when first asked for.

    A name missing from ``LAZY_COMMANDS`` (a command added to a module without adding it there) still
    works: every module is then registered, which is only slower.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._registered: set[str] = set()

    def list_commands(self, ctx: Any) -> list[str]:  # typer's own (vendored) click.Context
        self._register(COMMAND_MODULES)
        # Commands, then groups of commands: the order typer gives an app that registers them all at once.
        self.commands = dict(sorted(self.commands.items(), key=lambda item: isinstance(item[1], TyperGroup)))
        return super().list_commands(ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is None:
            module = LAZY_COMMANDS.get(cmd_name)
            self._register((module,) if module else COMMAND_MODULES)
            found = super().get_command(ctx, cmd_name)
        return found

    def _register(self, modules: tuple[str, ...]) -> None:
        import importlib

        for name in modules:
            if name in self._registered:
                continue
            sub = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
            importlib.import_module(f"monitor.commands.{name}").register(sub)
            for command_name, command in typer.main.get_group(sub).commands.items():
                self.add_command(command, command_name)
            self._registered.add(name)


app = typer.Typer(cls=LazyCommands, help="Reputation monitoring and escalation worker.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)

PACKAGE_ROOT = Path(__file__).resolve().parent
SAMPLE_FEED = PACKAGE_ROOT / "data" / "sample_mentions.jsonl"
CHECKOUT = PACKAGE_ROOT.parent  # rules/ and escalation.yaml beside the package in a checkout
STOP_TIMEOUT_S = 10  # SIGTERM: what a process supervisor waits for is usually more than this


def _default_path(given: Path, fallback: Path) -> Path:
    """Use the file in the working directory, else the one shipped in the checkout."""
    return given if given.exists() or not fallback.exists() else fallback


@app.command()
def check(
    rules: Annotated[Path | None, typer.Option(help="Folder of rule files (default: MONITOR_RULES_DIR, rules)")
                     ] = None,
    escalation: Annotated[Path | None, typer.Option(
        help="Escalation procedure file (default: MONITOR_ESCALATION_FILE, escalation.yaml)")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="What to collect (default: MONITOR_COLLECT_FILE, monitor.yaml)")] = None,
    collect: Annotated[Path | None, typer.Option("--collect", hidden=True, help="Old name of --config")] = None,
    compare: Annotated[bool, typer.Option(help="Say what the files change against the versions in force in the "
                                               "store (when there is one)")] = True,
    slack: Annotated[bool, typer.Option("--slack", help="Also check Slack: the tokens, auth.test, and that every "
                                                        "channel of the escalation file exists with the app in it")
                     ] = False,
) -> None:
    """Validate the settings (environment and .env), rules/, escalation.yaml and monitor.yaml, as `run` reads them.

    Exit 1 listing every problem with file and line (or the variable): `check` reads the
    same files with the same settings and the same checks as `monitor run`, so what passes
    here starts. Warnings (settings that work, but not as written) do not fail the check.
    With a store, also says what a valid edit would change against the version the workers run.
    """
    from monitor.configuration import load_configuration
    from monitor.settings import load_settings_lenient

    settings, errors = load_settings_lenient()
    if not errors:
        typer.echo("ok: settings (environment and .env)")
    checked = load_configuration(settings, rules_dir=rules, escalation_file=escalation,
                                 collect_file=config or collect, feed=settings.feed)
    if checked.rules is not None:
        typer.echo(f"ok: {len(checked.rules.rules)} rule(s) in {len(checked.rules.files)} file(s) "
                   f"({len(checked.rules.enabled)} enabled)")
    if checked.escalation is not None:
        typer.echo(f"ok: {checked.escalation_file}: {len(checked.escalation.responders)} responder(s), "
                   f"{len(checked.escalation.policies)} policy(ies)")
    if checked.collect is not None:
        typer.echo(f"ok: {checked.collect_file}: {len(checked.collect.brands)} brand(s)")
    for warning in checked.warnings:
        typer.echo(f"warning: {warning}", err=True)
    errors = [*errors, *_check_sentiment(settings), *checked.errors]
    if errors:
        _fail_config(ConfigInvalid(errors))
    if checked.escalation is not None and checked.collect is not None:
        # both files are valid here: every guideline speaks every language its brands are read in
        brand_languages = {name: list(b.languages) for name, b in checked.collect.brands.items()}
        for line in checked.escalation.statement_gaps(brand_languages):
            typer.echo(f"warning: {checked.escalation_file}: {line}")
    if compare:
        from monitor.commands.reload import in_force_changes

        files = {"escalation": checked.escalation_file, "rules": checked.rules_dir,
                 **({"collect": checked.collect_file} if checked.collect_file is not None else {})}
        for line in in_force_changes(settings, files) or []:
            typer.echo(f"in force: {line}")
    if slack:
        from monitor.notify.slack.checks import run_from_settings
        assert checked.escalation is not None  # errors above would have exited
        ok = run_from_settings(settings, checked.escalation, typer.echo)
        if not ok:
            raise typer.Exit(1)


def _check_sentiment(settings: Settings) -> list[ConfigError]:
    """The offline model's head loads, and which encoder weights it will run on this CPU, and why (no encoder
    is started: that costs seconds). A head validated on other weights is said, not refused."""
    from monitor.classify import ModelUnavailable, load_model
    from monitor.classify.offline import OfflineSentimentModel

    spec = settings.sentiment_model
    if not (spec in ("default", "offline", "") or spec.endswith(".npz")):
        return []  # a Hugging Face model: loading it needs PyTorch and minutes; the worker says at start
    try:
        model = load_model(spec, engine=settings.sentiment_engine, weights=settings.sentiment_weights)
    except ModelUnavailable as exc:
        return [ConfigError("MONITOR_SENTIMENT_MODEL", 0, 0, "", str(exc))]
    assert isinstance(model, OfflineSentimentModel)
    status = model.encoder_status()
    typer.echo(f"ok: sentiment encoder: {status['engine']}, {status['weights']} weights ({status['why']}); "
               f"head validated on {status['head_validated_on']}, thresholds measured on "
               f"{', '.join(status['thresholds_measured_on'])}")
    if "note" in status:
        typer.echo(f"note: sentiment: {status['note']}")
    return []


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
    from monitor.classify import LanguageDetector, ModelUnavailable, load_model
    from monitor.commands.common import BadInput, fail

    name = "<stdin>" if file is None or str(file) == "-" else str(file)
    try:
        texts, skipped = _read_texts(file, name)
    except BadInput as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{name}: {exc.strerror or exc}")
    settings = settings_or_exit()  # MONITOR_SENTIMENT_ENGINE / _WEIGHTS / _THREADS apply here too
    # One detector for the model's language offsets and the output: the same answer, computed once.
    detector = LanguageDetector([x.strip() for x in languages.split(",") if x.strip()])
    try:
        scorer = load_model(model, language_detector=detector, engine=settings.sentiment_engine,
                            threads=settings.sentiment_threads, weights=settings.sentiment_weights)
    except ModelUnavailable as exc:
        fail(str(exc))
    for text, scores in zip(texts, scorer.predict(texts), strict=True):
        typer.echo(json.dumps({"text": text, "label": scores.label.value,
                               "scores": {k: round(v, 4) for k, v in scores.as_dict().items()},
                               "language": detector.detect(text)}, ensure_ascii=False))
    if skipped:
        fail(f"{skipped} line(s) of {name} skipped (see the warnings above); the others were scored")


def _read_texts(file: Path | None, name: str) -> tuple[list[str], int]:
    """The texts to score and how many lines were skipped, with a warning naming each line not read as given.

    The first non-blank line decides the format: a JSON object makes the input
    JSONL. There a plain line is still scored, but with a warning naming it
    (one line of prose in an export is usually a mistake worth seeing), and a
    line that looks like JSON but is not an object with a string ``text``
    (cut short, ``{"txt": ...}``) is skipped with a warning: scoring its
    braces and keys as prose would invent a sentiment.
    """
    from monitor.commands.common import scrub, text_lines

    texts: list[str] = []
    skipped = 0
    jsonl: bool | None = None
    with contextlib.ExitStack() as stack:
        stream = sys.stdin.buffer if file is None or str(file) == "-" else stack.enter_context(file.open("rb"))
        for number, line in text_lines(stream, name):
            if not line.strip():
                continue
            looks_json = line.lstrip().startswith(("{", "["))
            if jsonl is None:
                jsonl = looks_json
            if not looks_json:
                if jsonl:
                    typer.echo(f"warning: {name}:{number}: not JSON; scored as plain text", err=True)
                texts.append(scrub(line))
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                obj, why = None, f"not JSON ({exc.msg})"
            else:
                why = "not a JSON object with a string 'text' field"
            text = obj.get("text") if isinstance(obj, dict) else None
            if not isinstance(text, str):
                typer.echo(f"warning: {name}:{number}: skipped: {why}", err=True)
                skipped += 1
                continue
            texts.append(scrub(text))
    return texts, skipped


@app.command()
def run(
    feed: Annotated[Path | None, typer.Option(help="Replay this JSONL file (instead of the live sources, "
                                                   "unless --config is given too)")] = None,
    collect: Annotated[Path | None, typer.Option(
        "--config", "--collect", help="What to collect (default: MONITOR_COLLECT_FILE, monitor.yaml)")] = None,
) -> None:
    """Run the worker until stopped (Ctrl-C or SIGTERM: the current chunk finishes, for at most 10 s)."""
    from monitor.app import build_worker, plan_sources
    from monitor.commands.common import fail
    from monitor.membership import WorkerRefused
    from monitor.ops import setup_logging
    from monitor.ops.logging import wants_json

    # Handlers first: a SIGTERM during start-up must still mean "stop cleanly", not "die".
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    reload_asked = threading.Event()  # SIGHUP: re-read escalation.yaml, monitor.yaml and rules/ now
    signal.signal(signal.SIGHUP, lambda *_: reload_asked.set())
    settings = settings_or_exit()  # every variable judged, store URL and time zone included
    setup_logging(settings.log_level, json=wants_json(settings.log_format))
    from monitor.configuration import load_configuration

    # Every file judged as `monitor check` judges it, before the store is touched.
    checked = load_configuration(settings, collect_file=collect, feed=feed or settings.feed)
    for warning in checked.warnings:
        logging.getLogger("monitor").warning("%s", warning)
    try:
        checked.raise_errors()
        sources = plan_sources(settings, feed=feed, collect_named=collect is not None,
                               collect_file=checked.collect_file or collect or settings.collect_file)
        worker = build_worker(settings, SystemClock(), sources=sources, escalation_config=checked.escalation)
        if not stop.is_set():  # a SIGTERM while loading the model: stop before starting anything
            worker.start()
    except ConfigInvalid as exc:
        _fail_config(exc)
        return
    except WorkerRefused as exc:  # a second worker on one SQLite store
        fail(str(exc))
    log = logging.getLogger("monitor")
    if not stop.is_set():
        while not stop.wait(0.5):
            if reload_asked.is_set():
                reload_asked.clear()
                worker.reload_now()
    log.info("stopping: finishing the current chunk")
    if not worker.stop(timeout=STOP_TIMEOUT_S):
        # A job stuck in a slow API: every stage commits with its watermark, so leaving now loses nothing.
        log.warning("stopping: work still running after %d s; exiting anyway (it will be redone)", STOP_TIMEOUT_S)
        logging.shutdown()
        os._exit(0)


@app.command()
def demo(
    feed: Annotated[Path, typer.Option(help="JSONL feed to replay")] = SAMPLE_FEED,
    step: Annotated[int, typer.Option(help="Minutes of feed time per step")] = 15,
    keep_db: Annotated[Path | None, typer.Option(help="Keep the SQLite store at this path")] = None,
    locale: Annotated[str | None, typer.Option(help="Print the alerts in nl_BE, fr_BE or en (default: the "
                                                    "escalation file's 'locale')")] = None,
) -> None:
    """Run the worker on the bundled feed in simulated time, print the alerts and a summary."""
    from monitor.app import Mode, SourcePlan, build_worker
    from monitor.demo import feed_bounds, summarise
    from monitor.notify import ConsoleNotifier
    from monitor.ops import setup_logging
    from monitor.sources import ReplaySource

    setup_logging("WARNING", json=False)
    from monitor.i18n import LOCALES

    if locale is not None and locale not in LOCALES:
        from monitor.commands.common import fail

        fail(f"--locale {locale!r} is not one of {', '.join(LOCALES)}", 2)
    first, last = feed_bounds(feed)
    clock = FakeClock(first - timedelta(minutes=1))
    db = keep_db or Path(tempfile.mkdtemp(prefix="monitor-demo-")) / "demo.db"
    settings = settings_or_exit(
        db_url=f"sqlite:///{db}",
        rules_dir=_default_path(Path("rules"), CHECKOUT / "rules"),
        escalation_file=_default_path(Path("escalation.yaml"), CHECKOUT / "escalation.yaml"),
        sentiment_model="default",
    )
    typer.echo(f"Replaying {feed.name} ({first:%d %b} to {last:%d %b}) in simulated time; store: {db}")
    typer.echo("Loading the offline sentiment model ...")
    if settings.slack_bot_token is not None and settings.slack_bot_token.get_secret_value().strip():
        typer.echo("SLACK_BOT_TOKEN is set: the alerts go to Slack")
    try:
        # No notifier given with a Slack token: Slack (as README promises); else the console, in --locale.
        slack = settings.slack_bot_token is not None and bool(settings.slack_bot_token.get_secret_value().strip())
        worker = build_worker(settings, clock, mode=Mode.SIMULATED,
                              notifier=None if slack else ConsoleNotifier(sys.stdout, locale),
                              sources=SourcePlan((ReplaySource(feed, name="demo-feed", release_until=clock.now),)))
    except ConfigInvalid as exc:
        _fail_config(exc)
        return
    started = time.monotonic()
    # Until two hours after the last post: the last escalation timers run too.
    worker.run_simulated(clock, step=timedelta(minutes=step), until=last + timedelta(hours=2))
    summarise(worker.engine, settings.timezone, time.monotonic() - started)


def main() -> None:
    """The console entry point: an unexpected error is one redacted line and exit code 1, never a traceback
    (an exception's text may carry a token or a database password)."""
    try:
        app()
    except Exception as exc:
        from monitor.redact import describe, redact
        from monitor.store import StoreUnavailable

        line = f"error: {redact(str(exc)) if isinstance(exc, StoreUnavailable) else describe(exc, limit=500)}"
        print(line, file=sys.stderr, flush=True)  # stderr, as the worker's log lines: one line, whatever the format
        sys.exit(1)


if __name__ == "__main__":
    main()
