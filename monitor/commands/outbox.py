"""``monitor outbox``: what is waiting to be delivered, what is blocked and why, what was superseded.

The communications officer's answer to "did that alert go out?": every
notification not yet delivered is listed with its error and what to do about it,
so nothing the worker could not deliver is lost in a log file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from monitor.settings import Settings

STATUSES = ("pending", "blocked", "superseded")


def _local(when: datetime | None, zone: ZoneInfo) -> str:
    return when.astimezone(zone).strftime("%a %d %b %H:%M") if when else "-"


def describe(row: dict[str, Any], zone: ZoneInfo) -> list[str]:
    """Two or three lines for one notification: what, since when, and why it is not delivered."""
    from monitor.notify.slack.client import ADVICE

    head = (f"#{row['id']:<5} {row['status'].upper():<10} incident #{row['incident_id']} {row['kind']}"
            f" queued {_local(row['created_at'], zone)}")
    if row["status"] == "blocked":
        head += f", blocked since {_local(row['blocked_since'], zone)}"
    lines = [head]
    if row["status"] == "superseded":
        lines.append(f"       not sent: {row['note']}")
        return lines
    error = row["last_error"]
    if error:
        lines.append(f"       last error: {error}")
        advice = next((a for code, a in ADVICE.items() if code in error), None)
        if advice:
            lines.append(f"       to fix: {advice}")
    elif row["status"] == "pending":
        lines.append("       not tried yet" if not row["attempts"] else "       being delivered")
    if row["next_attempt_at"]:
        lines.append(f"       next try: {_local(row['next_attempt_at'], zone)} (and at every start)")
    if row["email_sent_at"]:
        lines.append(f"       sent by e-mail {_local(row['email_sent_at'], zone)}")
    return lines


def register(app: typer.Typer) -> None:
    @app.command("outbox")
    def outbox_command(
        status: Annotated[list[str] | None, typer.Option(
            "--status", help="pending, blocked or superseded (repeat for several; default: all three)")] = None,
        limit: Annotated[int, typer.Option(help="At most this many rows")] = 200,
    ) -> None:
        """List notifications not delivered (pending, blocked) or overtaken (superseded), and why.

        Exit 1 when something is blocked: a person has to fix Slack (see "to fix").
        """
        from monitor.app import open_store
        from monitor.store import outbox, transaction

        wanted = tuple(status or STATUSES)
        unknown = [s for s in wanted if s not in STATUSES]
        if unknown:
            raise typer.BadParameter(f"unknown status {', '.join(unknown)}; use {', '.join(STATUSES)}")
        settings = Settings()
        zone = ZoneInfo(settings.timezone)
        with transaction(open_store(settings.db_url)) as conn:
            rows = outbox.listing(conn, wanted, limit)
            counts = outbox.count_by_status(conn)
        for row in rows:
            typer.echo("\n".join(describe(row, zone)))
        summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("sent", *STATUSES))
        typer.echo(f"outbox: {summary}")
        if counts.get("blocked"):
            typer.echo("Blocked notifications are kept and retried every 15 minutes and at every start; "
                       "fix the cause above, or restart the worker once it is fixed.", err=True)
            raise typer.Exit(1)
