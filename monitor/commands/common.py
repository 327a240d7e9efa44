"""What every command shares for failing cleanly: one ``error:`` line and a non-zero exit, never a traceback.

Each command used to build ``Settings()`` and open the store its own way, so a
``MONITOR_PASS_SECONDS=abc`` or a PostgreSQL database that does not exist
ended in a pydantic or SQLAlchemy traceback in some commands and not in
others. The three ways in (settings, configuration files, the store) go
through here instead, and each turns its failure into lines an operator can
act on: which variable or file line is wrong, which database is missing and
the command that creates it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from monitor.inputs import BadInput, scrub, text_lines
from monitor.redact import redact
from monitor.settings import Settings, load_settings
from monitor.yamlconfig import ConfigInvalid

if TYPE_CHECKING:  # SQLAlchemy is imported by the commands that open the store, not by every start
    from sqlalchemy import Engine

_MISSING_DB = re.compile(r'database "([^"]+)" does not exist')
_FIRST_LINE_NOISE = re.compile(r"^\((?:[\w.]+)\)\s*")


def fail(message: str, code: int = 1) -> NoReturn:
    """One ``error:`` line on stderr and exit ``code`` (1: a problem found; 2: a usage mistake)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def fail_config(exc: ConfigInvalid) -> NoReturn:
    """Every problem of a configuration (file:line:col: key: problem), a count, exit 1."""
    for error in exc.errors:
        typer.echo(f"error: {error}", err=True)
    typer.echo(f"{len(exc.errors)} problem(s) found.", err=True)
    raise typer.Exit(1)


def settings_or_exit(**overrides: Any) -> Settings:
    """The settings from the environment and ``.env``, or the bad variables listed and exit 1."""
    try:
        return load_settings(**overrides)
    except ConfigInvalid as exc:
        fail_config(exc)


def _where(url: str) -> str:
    """host:port (or the SQLite path) of a store URL, without credentials."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:  # an unparseable URL is reported by the caller with its own message
        return "the configured store"
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database or ":memory:")
    host = parsed.host or "localhost"
    return f"{host}:{parsed.port}" if parsed.port else host


def store_problem(url: str, exc: BaseException) -> str:
    """What went wrong opening the store at ``url``, as one line that says what to do."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    missing = _MISSING_DB.search(text)
    if missing:
        name = missing.group(1)
        return f"database '{name}' does not exist on {_where(url)}; create it with createdb {name}"
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return f"MONITOR_DB_URL is not a usable database URL ({redact(' '.join(str(exc).split()))})"
    if isinstance(exc, DBAPIError):
        first = _FIRST_LINE_NOISE.sub("", text).split("(Background on this error")[0].strip()
        return f"cannot open the store on {_where(url)}: {redact(first)}"
    return f"cannot open the store on {_where(url)}: {redact(type(exc).__name__ + ': ' + text)}"


def open_store_or_exit(settings_or_url: Settings | str, *, migrate: bool = True) -> Engine:
    """An engine on the store, brought to the newest schema unless ``migrate`` is False; else one line, exit 1."""
    from sqlalchemy.exc import SQLAlchemyError

    from monitor.store import create_store_engine
    from monitor.store import migrate as upgrade

    url = settings_or_url if isinstance(settings_or_url, str) else settings_or_url.db_url
    engine: Engine | None = None
    try:
        engine = create_store_engine(url)
        if migrate:
            upgrade(engine)
        else:
            with engine.connect():
                pass
    except (SQLAlchemyError, OSError) as exc:
        if engine is not None:
            engine.dispose()
        fail(store_problem(url, exc))
    return engine



__all__ = ["BadInput", "fail", "fail_config", "open_store_or_exit", "scrub", "settings_or_exit", "store_problem",
           "text_lines"]
