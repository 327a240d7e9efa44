"""``monitor digest``: the weekly report for any week, written to a file and optionally posted.

The command is the digest job run by hand: for a past week, to re-post after
an outage, or to look before Monday. It only reads the store (no migration,
no writes), so it is safe against a live worker's database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from monitor.commands.common import fail, fail_config, open_store_or_exit, settings_or_exit
from monitor.digest.figures import DEFAULT_REACH_THRESHOLD
from monitor.i18n import LOCALES

_fail = fail


def digest(
    week: Annotated[str | None, typer.Option(help="ISO week, e.g. 2026-W47 (default: the last complete week, "
                                                  "local time)")] = None,
    out: Annotated[Path | None, typer.Option(help="Where to write the HTML report (default: "
                                                  "digest-<week>.html)")] = None,
    post: Annotated[bool, typer.Option("--post", help="Post the Slack version (needs SLACK_BOT_TOKEN)")] = False,
    channel: Annotated[str | None, typer.Option(help="Slack channel for --post, e.g. '#reputation' (default: "
                                                    "MONITOR_SLACK_CHANNEL, where the worker posts it)")] = None,
    escalation: Annotated[Path | None, typer.Option(help="Escalation file with the acknowledgement targets "
                                                         "(default: MONITOR_ESCALATION_FILE)")] = None,
    reach_threshold: Annotated[int, typer.Option(min=0, envvar="MONITOR_DIGEST_REACH_THRESHOLD",
                                                 help="Followers from which an author is named by handle")
                               ] = DEFAULT_REACH_THRESHOLD,
    db_url: Annotated[str | None, typer.Option(help="Store URL (default: MONITOR_DB_URL)")] = None,
    locale: Annotated[str | None, typer.Option(help="Language of the report and summary: nl_BE, fr_BE or en "
                                                    "(default: the escalation file's 'locale')")] = None,
) -> None:
    """Write the weekly digest (HTML, one file) and print its summary; --post sends it to Slack."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from monitor.digest.html import render_html
    from monitor.digest.job import make_digest, report_name, write_report
    from monitor.digest.slack import ATTACHED, SlackPoster, SlackPostError, build_message, report_link, to_text
    from monitor.digest.week import IsoWeek
    from monitor.escalation.schema import load_escalation
    from monitor.yamlconfig import ConfigInvalid

    settings = settings_or_exit()
    try:
        chosen = (IsoWeek.parse(week, settings.timezone) if week
                  else IsoWeek.last_complete(datetime.now(UTC), settings.timezone))
    except ValueError as exc:
        _fail(str(exc), 2)

    config = None
    escalation_file = escalation or settings.escalation_file
    if escalation_file.exists():
        try:
            config = load_escalation(escalation_file)
        except ConfigInvalid as exc:
            fail_config(exc)
    else:
        typer.echo(f"note: no escalation file at {escalation_file}: times to acknowledge have no target", err=True)

    url = db_url or settings.db_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") and not Path(
            str(parsed.database)).exists():
        _fail(f"no store at {parsed.database} (set MONITOR_DB_URL or --db-url)")
    engine = open_store_or_exit(url, migrate=False)
    try:
        if not inspect(engine).has_table("mentions"):
            _fail(f"{parsed.render_as_string(hide_password=True)} has no monitor tables (run the worker once)")
        result = make_digest(engine, config, chosen, reach_threshold=reach_threshold)
    finally:
        engine.dispose()

    if locale is not None and locale not in LOCALES:
        _fail(f"--locale {locale!r} is not one of {', '.join(LOCALES)}", 2)
    path = write_report(render_html(result, locale), out or Path(report_name(chosen)))
    link = report_link(settings.digest_url, path.name)
    message = build_message(result, link or (ATTACHED if post else None), locale)
    typer.echo(to_text(message))
    typer.echo(f"wrote {path}")
    if not post:
        return
    from monitor.notify.factory import slack_client

    client = slack_client(settings)  # the worker's client: MONITOR_SLACK_API_URL and the retry policy
    if client is None:
        typer.echo("Slack is not configured (SLACK_BOT_TOKEN is not set): the digest was not posted.")
        return
    channel = channel or settings.slack_channel  # the worker posts the digest there too
    if not channel:
        _fail("--post needs a channel: --channel '#reputation', or MONITOR_SLACK_CHANNEL", 2)
    try:
        poster = SlackPoster(client, channel)
        ts = poster.post(message)
        if link is None:
            poster.upload(path, ts)
    except SlackPostError as exc:
        _fail(str(exc))
    typer.echo(f"posted to {channel}" + (f" (ts {ts})" if ts else ""))


def register(app: typer.Typer) -> None:
    app.command("digest")(digest)
