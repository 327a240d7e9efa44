"""``monitor escalation test``: who would be called, in what order and when (like ``amtool config routes test``).

Routing assertions (``--expect``) make it usable in CI: a change to
``escalation.yaml`` that silently stops paging the on-call person at night
fails the build instead of an incident.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from monitor.models import Severity
from monitor.yamlconfig import ConfigInvalid

group = typer.Typer(help="Inspect and test the escalation procedure.", no_args_is_help=True)


def _parse_expect(raw: str) -> tuple[int, set[str]]:
    level, sep, who = raw.partition("=")
    if not sep or not level.strip().isdigit():
        raise typer.BadParameter(f"expected LEVEL=ID[,ID...], e.g. 1=sofie, got {raw!r}")
    return int(level), {w.strip() for w in who.split(",") if w.strip()}


@group.command("test")
def test_route(
    severity: Annotated[Severity, typer.Option(help="Severity of the incident")],
    brand: Annotated[str, typer.Option(help="Brand of the incident")] = "",
    rule: Annotated[str, typer.Option(help="Rule that fired")] = "",
    at: Annotated[str | None, typer.Option(help="Local time of the incident, e.g. '2026-11-18 21:40' "
                                                "(default: now)")] = None,
    escalation: Annotated[Path, typer.Option(help="Escalation procedure file")] = Path("escalation.yaml"),
    expect: Annotated[list[str] | None, typer.Option(help="LEVEL=ID[,ID]: who level LEVEL must notify "
                                                          "(repeatable)")] = None,
    expect_first_at: Annotated[str | None, typer.Option(help="Local time the first notification must go "
                                                             "out, e.g. '2026-11-19 08:00'")] = None,
) -> None:
    """Print the notification schedule if nobody acknowledges; exit 1 if an expectation fails."""
    from monitor.escalation.plan import plan
    from monitor.escalation.schema import load_escalation

    try:
        config = load_escalation(escalation)
    except ConfigInvalid as exc:
        for error in exc.errors:
            typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    zone = config.zone

    def local(text: str) -> dt.datetime:
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise typer.BadParameter(f"not a time: {text!r} (use e.g. '2026-11-18 21:40')") from None
        return when.replace(tzinfo=zone) if when.tzinfo is None else when

    start = local(at) if at else dt.datetime.now(zone)
    policy, steps = plan(config, severity, brand, rule, start.astimezone(dt.UTC))
    typer.echo(f"Incident {severity.value} · brand {brand or '-'} · rule {rule or '-'} at "
               f"{start:%a %d %b %Y %H:%M %Z}")
    typer.echo(f"Policy: {policy.name} (after hours: {policy.after_hours})")
    for i, step in enumerate(steps, start=1):
        names = [f"{config.responders[r].name} ({r})" for r in step.recipients]
        target = ", ".join(names + ([step.channel] if step.channel else []))
        typer.echo(f"{i}. {step.at.astimezone(zone):%a %d %b %H:%M}  level {step.level}"
                   f"{f' (round {step.cycle + 1})' if step.cycle else ''} → {target}; "
                   f"acknowledge by {step.ack_deadline.astimezone(zone):%a %d %b %H:%M}")
    guideline = config.guideline_for(severity, brand, rule)
    if guideline is not None:
        typer.echo(f"Guideline: {guideline.who_may_answer}")
    failures = []
    for raw in expect or []:
        level, who = _parse_expect(raw)
        first = next((s for s in steps if s.level == level and s.cycle == 0), None)
        got = set(first.recipients) if first else set()
        if got != who:
            failures.append(f"level {level}: expected {sorted(who)}, got {sorted(got)}")
    if expect_first_at is not None and steps:
        want = local(expect_first_at)
        if steps[0].at != want.astimezone(dt.UTC):
            failures.append(f"first notification: expected {want:%a %d %b %H:%M}, "
                            f"got {steps[0].at.astimezone(zone):%a %d %b %H:%M}")
    for failure in failures:
        typer.echo(f"FAIL: {failure}", err=True)
    if failures:
        raise typer.Exit(1)
    if expect or expect_first_at:
        typer.echo("ok: all expectations hold")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="escalation")
