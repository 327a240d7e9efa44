"""``monitor tune``: fit a calibration on the team's labels, show it, put it in force, take it back.

``--dry-run`` shows and stores nothing; plain ``monitor tune`` stores a new,
inactive version; ``--apply`` stores and activates it (or activates ``--version N``);
``--rollback`` returns to the version in force before. Running workers follow with
the next post they score; scores already stored keep the version that produced them.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from monitor.classify.calibration import MIN_BRAND_LABELS, MIN_LABELS
from monitor.commands.common import fail, fail_config, open_store_or_exit, settings_or_exit
from monitor.digest.feedback import language_name
from monitor.store import transaction
from monitor.tuning import BACKTEST_DAYS, DEFAULT_THRESHOLD, Plan, TooFewLabels
from monitor.yamlconfig import ConfigInvalid


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def report(p: Plan) -> list[str]:
    """What the PR team reads before deciding: quality per language, then the alert forecast per rule."""
    out = [f"Calibration {p.calibration.version} from {p.labels} labelled post(s), on {p.model}; "
           f"a post counts as negative from P(negative) {p.threshold:.2f} (cross-validated, {len(p.quality)} "
           "language(s)):"]
    for code, (before, after) in p.quality.items():
        offset = p.calibration.language.get(code)
        shift = f"offset {offset:+.2f}" if offset is not None else "too few labels: unchanged"
        out.append(f"  {language_name(code)} ({code}), {before.labels} labels, {shift}: precision "
                   f"{_pct(before.precision)} → {_pct(after.precision)}, recall {_pct(before.recall)} → "
                   f"{_pct(after.recall)}")
    for s in p.shortfalls:
        out.append(f"  {language_name(s.language)} ({s.language}): {s.labels} labels, {s.needed} more needed "
                   "before it is calibrated")
    for brand, offset in sorted(p.calibration.brand.items()):
        out.append(f"  brand {brand}: offset {offset:+.2f} on top of its languages")
    rows = p.alerts_per_week()
    if rows:
        days = p.before.days if p.before is not None else 0
        out.append(f"Alerts per week per rule on the stored posts of the last {days} day(s), now → with this "
                   "calibration:")
        out.extend(f"  {rule}: {now:.1f} → {then:.1f}" for rule, now, then in rows)
        out.append(f"  all rules: {sum(r[1] for r in rows):.1f} → {sum(r[2] for r in rows):.1f}")
    return out


def tune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the effect; store nothing")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="Store the new calibration and put it in force")] = False,
    version: Annotated[int | None, typer.Option(help="With --apply: put this stored version in force instead")
                       ] = None,
    rollback: Annotated[bool, typer.Option("--rollback", help="Back to the calibration in force before")] = False,
    by: Annotated[str | None, typer.Option(help="Who decides (for the record; default: your login)")] = None,
    threshold: Annotated[float, typer.Option(help="P(negative) from which a post counts as negative")
                         ] = DEFAULT_THRESHOLD,
    min_labels: Annotated[int, typer.Option(help="Labels a language needs")] = MIN_LABELS,
    min_brand_labels: Annotated[int, typer.Option(help="Labels a brand needs for an offset of its own")
                                ] = MIN_BRAND_LABELS,
    days: Annotated[int, typer.Option(help="Days of stored posts for the alert forecast")] = BACKTEST_DAYS,
    out: Annotated[Path | None, typer.Option(help="Also write the calibration (numbers only) to this JSON file")
                   ] = None,
) -> None:
    """Recalibrate the sentiment per language (and brand) from the team's labels; see before/after first."""
    from monitor import tuning
    from monitor.detect import load_rules
    from monitor.escalation.schema import load_escalation

    if sum((dry_run, apply, rollback)) > 1:
        fail("choose one of --dry-run, --apply and --rollback", code=2)
    if version is not None and not apply:
        fail("--version goes with --apply", code=2)
    settings = settings_or_exit()
    engine = open_store_or_exit(settings)
    who = by or getpass.getuser()
    now = datetime.now(UTC)
    if rollback:
        try:
            with transaction(engine) as conn:
                before, after = tuning.rollback(conn, by=who, at=now)
        except ValueError as exc:
            fail(str(exc))
        typer.echo(f"calibration {before if before is not None else 'none'} → "
                   f"{after if after is not None else 'none (the model alone)'}: workers use it from their next post")
        return
    if apply and version is not None:
        try:
            with transaction(engine) as conn:
                replaced = tuning.apply(conn, version, by=who, at=now)
        except ValueError as exc:
            fail(str(exc))
        typer.echo(f"calibration {version} in force (was {replaced if replaced is not None else 'none'}); "
                   "workers use it from their next post")
        return
    try:
        rules = load_rules(settings.rules_dir).rules
        escalation = load_escalation(settings.escalation_file)
    except ConfigInvalid as exc:
        fail_config(exc)
    try:
        with transaction(engine) as conn:
            p = tuning.plan(conn, threshold=threshold, min_labels=min_labels, min_brand_labels=min_brand_labels,
                            rules=rules, grouping_window=escalation.grouping.window, timezone=escalation.timezone,
                            since=now - timedelta(days=days))
    except TooFewLabels as exc:
        fail(str(exc))
    for line in report(p):
        typer.echo(line)
    if out is not None:
        out.write_text(json.dumps({"version": p.calibration.version, "offsets": p.calibration.to_json(),
                                   "summary": p.summary()}, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"wrote {out}")
    if dry_run:
        typer.echo("dry run: nothing stored; `monitor tune` stores it, `monitor tune --apply` puts it in force")
        return
    with transaction(engine) as conn:
        tuning.save(conn, p, by=who, at=now)
        if apply:
            replaced = tuning.apply(conn, p.calibration.version, by=who, at=now)
    if apply:
        typer.echo(f"calibration {p.calibration.version} in force (was "
                   f"{replaced if replaced is not None else 'none'}); workers use it from their next post")
    else:
        typer.echo(f"calibration {p.calibration.version} stored, not in force; "
                   f"`monitor tune --apply --version {p.calibration.version}` puts it in force")


def register(app: typer.Typer) -> None:
    app.command("tune")(tune)
