"""``monitor forget`` (erase one author) and ``monitor purge`` (apply the retention periods now).

Both open the store named by ``MONITOR_DB_URL`` (migrating it first, like the
worker) and are safe to run beside a live worker: each change is a
transaction of its own, and SQLite's WAL lets the worker keep going.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from sqlalchemy import Engine

from monitor.commands.common import open_store_or_exit, settings_or_exit
from monitor.settings import Settings


def forget(
    author: Annotated[str, typer.Option("--author", help="Handle to erase, with or without '@' (any case)")],
    source: Annotated[str | None, typer.Option(help="Only this platform (x, reddit, news, youtube...; an unknown one "
                                                    "is refused, naming the known ones); default: all")] = None,
) -> None:
    """Erase an author: delete their posts and replace their handle everywhere else by \\[erased].

    Their posts' platform ids go too: replies' conversation ids, incident and
    signal keys and links to their posts are rewritten. With SLACK_BOT_TOKEN
    set, the Slack messages already posted about those incidents (the channel
    card and its thread) are drawn again from the rewritten store
    (chat.update); one deleted in Slack meanwhile is reported as gone. Running
    it twice is harmless: the second run finds nothing. Direct messages and
    digest files already written are outside its reach: the command reminds
    you to remove those by hand.
    """
    from monitor.privacy.erasure import forget as erase
    from monitor.sources.registry import known_sources, suggest

    if source is not None and source not in known_sources():
        # A misspelt platform would erase nothing and look done: refuse it instead.
        hint = suggest(source)
        typer.echo(f"error: --source {source!r} is no platform" + (f" (did you mean {hint!r}?)" if hint else "")
                   + f"; known: {', '.join(known_sources())}", err=True)
        raise typer.Exit(2)
    settings = settings_or_exit()
    engine = open_store_or_exit(settings)
    try:
        report = erase(engine, author, source=source)
        typer.echo(f"forget {author.strip()}" + (f" on {source}" if source else " on every source") + ":")
        for line in report.lines():
            typer.echo(line)
        if report.incidents:
            for line in _redraw_slack(settings, engine, sorted(report.incidents)):
                typer.echo(line)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if report.mentions_deleted or report.rewritten["outbox"]:
        typer.echo("note: direct messages in Slack and digest reports already written are not updated; "
                   "delete those by hand if they name this person.")


def _redraw_slack(settings: Settings, engine: Engine, incident_ids: list[int]) -> list[str]:
    """Update the Slack messages of these incidents from the rewritten store; the lines to print."""
    from monitor.escalation.schema import load_escalation
    from monitor.notify.factory import slack_client
    from monitor.notify.slack.notifier import SlackNotifier
    from monitor.notify.slack.redraw import Redrawn, redraw_incident
    from monitor.yamlconfig import ConfigInvalid

    client = slack_client(settings)
    if client is None:
        return ["note: SLACK_BOT_TOKEN is not set, so Slack messages already posted were not updated"]
    try:
        config = load_escalation(settings.escalation_file)
    except (ConfigInvalid, OSError) as exc:
        return [f"note: Slack messages not updated: {settings.escalation_file} cannot be read ({exc})"]
    notifier = SlackNotifier(client, engine, config)
    result = Redrawn()
    for incident_id in incident_ids:
        redraw_incident(notifier, incident_id, result)
    return result.lines()


def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go, change nothing")] = False,
) -> None:
    """Apply the retention periods (MONITOR_RETENTION_*) now; the worker also does this nightly at 03:30."""
    from monitor.privacy.retention import RetentionPolicy
    from monitor.privacy.retention import purge as run_purge

    settings = settings_or_exit()
    policy = RetentionPolicy.from_settings(settings)
    engine = open_store_or_exit(settings)
    try:
        report = run_purge(engine, policy, datetime.now(UTC), dry_run=dry_run)
    finally:
        engine.dispose()

    def period(days: int) -> str:
        return f"{days} days" if days else "kept forever"

    typer.echo(f"retention: author handles {period(policy.author_days)}, post texts {period(policy.text_days)}, "
               f"closed incidents {period(policy.incident_days)}, mentions {period(policy.mention_days)}")
    for line in report.lines():
        typer.echo(line)
    if dry_run:
        typer.echo("dry run: nothing was changed; the counts are what a purge would do now.")


def register(app: typer.Typer) -> None:
    app.command("forget")(forget)
    app.command("purge")(purge)
