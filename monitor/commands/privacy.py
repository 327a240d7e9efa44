"""``monitor forget`` (erase one author) and ``monitor purge`` (apply the retention periods now).

Both open the store named by ``MONITOR_DB_URL`` (migrating it first, like the
worker) and are safe to run beside a live worker: each change is a
transaction of its own, and SQLite's WAL lets the worker keep going.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from monitor.commands.common import open_store_or_exit, settings_or_exit


def forget(
    author: Annotated[str, typer.Option("--author", help="Handle to erase, with or without '@' (any case)")],
    source: Annotated[str | None, typer.Option(help="Only this platform (x, reddit, news...); default: all")] = None,
) -> None:
    """Erase an author: delete their posts and replace their handle everywhere else by \\[erased].

    Their posts' platform ids go too: replies' conversation ids, incident and
    signal keys and links to their posts are rewritten. Running it twice is
    harmless: the second run finds nothing. Messages already posted to Slack
    and digest files already written are outside the store: the command
    reminds you to remove those by hand.
    """
    from monitor.privacy.erasure import forget as erase

    settings = settings_or_exit()
    engine = open_store_or_exit(settings)
    try:
        report = erase(engine, author, source=source)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(f"forget {author.strip()}" + (f" on {source}" if source else " on every source") + ":")
    for line in report.lines():
        typer.echo(line)
    if report.mentions_deleted or report.rewritten["outbox"]:
        typer.echo("note: Slack messages already sent and digest reports already written are not in the store; "
                   "delete those by hand if they name this person.")


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
