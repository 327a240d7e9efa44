"""``monitor label``: say what the model got wrong about stored posts, without Slack buttons.

Three ways in: one post (``--id 12 --as not_negative``), a JSONL file of
``{"id": 12, "label": "not_negative"}`` lines (every line is checked first; any
problem is listed as ``file:line: problem`` and nothing is stored), or one by one
at the terminal over the alerted posts this person has not judged yet. A label
is stored once per person and post; giving another replaces it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine, and_, exists, select

from monitor.classify.calibration import LABEL_WORDS, LABELS
from monitor.commands.common import BadInput, fail, fail_config, open_store_or_exit, settings_or_exit, text_lines
from monitor.store import feedback as feedback_repo
from monitor.store import transaction
from monitor.store.tables import incident_mentions, labels, mentions, sentiments
from monitor.text import shorten
from monitor.yamlconfig import ConfigInvalid

KEYS = {"n": "not_negative", "w": "wrong_language", "a": "not_about_us", "y": "negative"}


def _responder(by: str) -> None:
    """Labels name a responder of escalation.yaml (an id, not a free-text name): refuse anyone else."""
    from monitor.escalation.schema import load_escalation

    settings = settings_or_exit()
    try:
        config = load_escalation(settings.escalation_file)
    except ConfigInvalid as exc:
        fail_config(exc)
    if by not in config.responders:
        fail(f"--by {by!r} is not a responder of {settings.escalation_file} "
             f"(known: {', '.join(sorted(config.responders))})")


def read_jsonl(stream: Iterable[bytes], name: str) -> tuple[list[tuple[int, int, str]], list[tuple[int, str]]]:
    """(line, id, label) for each good line, and (line, ``name:line: problem``) for each bad one."""
    found: list[tuple[int, int, str]] = []
    errors: list[tuple[int, str]] = []
    for number, line in text_lines(stream, name):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append((number, f"{name}:{number}: not JSON ({exc.msg})"))
            continue
        if not isinstance(obj, dict):
            errors.append((number, f"{name}:{number}: not a JSON object with 'id' and 'label'"))
            continue
        mid, label = obj.get("id"), obj.get("label")
        if not isinstance(mid, int) or isinstance(mid, bool):
            errors.append((number, f"{name}:{number}: 'id' must be a post id (a whole number), "
                                   f"got {json.dumps(mid)}"))
        elif label not in LABELS:
            errors.append((number, f"{name}:{number}: 'label' must be one of {', '.join(LABELS)}, "
                                   f"got {json.dumps(label)}"))
        else:
            found.append((number, mid, str(label)))
    return found, errors


def store_file(engine: Engine, path: str, by: str, now: datetime, stream: Iterable[bytes]) -> tuple[int, int]:
    """All lines or none: (new, changed). Raises ``BadInput`` listing every problem."""
    rows, errors = read_jsonl(stream, path)
    with transaction(engine) as conn:
        known = {int(r[0]) for start in range(0, len(rows), 500) for r in conn.execute(
            select(mentions.c.id).where(mentions.c.id.in_([m for _, m, _ in rows[start: start + 500]])))}
        errors += [(number, f"{path}:{number}: no stored post with id {mid} (erased, purged, or a typo)")
                   for number, mid, _ in rows if mid not in known]
        if errors:
            raise BadInput("\n".join(message for _, message in sorted(errors)))
        results = [feedback_repo.record_label(conn, mid, label, by, now, "cli") for _, mid, label in rows]
    return (sum(r is feedback_repo.Recorded.NEW for r in results),
            sum(r is feedback_repo.Recorded.CHANGED for r in results))


def _interactive(engine: Engine, by: str, limit: int, everything: bool) -> None:
    judged = exists().where(and_(labels.c.mention_id == mentions.c.id, labels.c.by == by, ~labels.c.implied))
    stmt = (select(mentions.c.id, mentions.c.text, mentions.c.language, mentions.c.brand, sentiments.c.negative)
            .outerjoin(sentiments, sentiments.c.mention_id == mentions.c.id).where(~judged)
            .order_by(mentions.c.created_at.desc()).limit(limit))
    if not everything:
        stmt = stmt.where(exists().where(incident_mentions.c.mention_id == mentions.c.id))
    with transaction(engine) as conn:
        todo = list(conn.execute(stmt))
    if not todo:
        typer.echo("Nothing left to label" + ("" if everything else " among alerted posts (--all: every post)"))
        return
    keys = ", ".join(f"[{k}] {LABEL_WORDS[v]}" for k, v in KEYS.items())
    typer.echo(f"{len(todo)} post(s) to label. {keys}, [s] skip, [q] quit.")
    done = 0
    for row in todo:
        score = f"negative {row.negative:.0%}" if row.negative is not None else "not scored"
        typer.echo(f"\n#{row.id} · {row.brand} · {row.language or '?'} · {score}\n  {shorten(row.text, 400)}")
        while True:
            typer.echo("label> ", nl=False)
            answer = sys.stdin.readline()
            key = answer.strip().lower()[:1]
            if not answer or key == "q":
                typer.echo(f"\n{done} label(s) stored.")
                return
            if key == "s" or key in KEYS:
                break
            typer.echo(f"  one of {', '.join(KEYS)}, s or q")
        if key in KEYS:
            with transaction(engine) as conn:
                feedback_repo.record_label(conn, row.id, KEYS[key], by, datetime.now(UTC), "cli")
            done += 1
    typer.echo(f"\n{done} label(s) stored.")


def label(
    by: Annotated[str, typer.Option(help="Your responder id in escalation.yaml")],
    file: Annotated[Path | None, typer.Option("--file", help="JSONL of {\"id\": 12, \"label\": \"not_negative\"} "
                                                            "lines ('-' for stdin)")] = None,
    post: Annotated[int | None, typer.Option("--id", help="One post's id (with --as)")] = None,
    as_: Annotated[str | None, typer.Option("--as", help=f"The label for --id: {', '.join(LABELS)}")] = None,
    limit: Annotated[int, typer.Option(help="At most this many posts in one interactive session")] = 50,
    everything: Annotated[bool, typer.Option("--all", help="Interactive: every stored post, not only alerted ones")
                          ] = False,
) -> None:
    """Label stored posts (not negative, wrong language, not about us, negative) so `monitor tune` can learn."""
    _responder(by)
    engine = open_store_or_exit(settings_or_exit())
    now = datetime.now(UTC)
    if file is not None:
        name = "<stdin>" if str(file) == "-" else str(file)
        try:
            with (file.open("rb") if str(file) != "-" else open(sys.stdin.fileno(), "rb", closefd=False)) as fh:
                new, changed = store_file(engine, name, by, now, fh)
        except BadInput as exc:
            for line in str(exc).splitlines():
                typer.echo(f"error: {line}", err=True)
            fail(f"nothing stored from {name}; fix the line(s) above and run it again")
        except OSError as exc:
            fail(f"{name}: {exc.strerror or exc}")
        typer.echo(f"{new} label(s) stored, {changed} replaced an earlier label of yours")
        return
    if post is not None or as_ is not None:
        if post is None or as_ not in LABELS:
            fail(f"--id and --as go together; --as is one of {', '.join(LABELS)}", code=2)
        with transaction(engine) as conn:
            result = feedback_repo.record_label(conn, post, str(as_), by, now, "cli")
        if result is feedback_repo.Recorded.NO_POST:
            fail(f"no stored post with id {post} (erased, purged, or a typo)")
        typer.echo(f"post #{post}: {LABEL_WORDS[str(as_)]} ({result.value})")
        return
    _interactive(engine, by, limit, everything)


def register(app: typer.Typer) -> None:
    app.command("label")(label)
