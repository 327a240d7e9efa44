"""``monitor reload``: every running worker re-reads its configuration files now.

The request is a row in the store, so it reaches every worker on every machine
that shares it; a worker acts on it within one pass (``MONITOR_PASS_SECONDS``).
On the worker's own machine ``kill -HUP <pid>`` does the same at once.
Also here: what ``monitor check`` says an edit would change against the version in force.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path

import typer
from sqlalchemy import inspect

from monitor.i18n import translator
from monitor.settings import Settings


def in_force_changes(settings: Settings, files: dict[str, Path]) -> list[str] | None:
    """Lines saying what ``files`` (kind -> path) change against the versions in force in the store.

    None when there is no store to compare with (no database yet, or one without versions): ``check``
    then validates the files alone. Never creates or migrates a store.
    """
    from monitor.config_diff import changes
    from monitor.store import config_versions, create_store_engine, transaction

    if settings.db_url.startswith("sqlite:///") and not Path(settings.db_url.removeprefix("sqlite:///")).exists():
        return None
    try:
        engine = create_store_engine(settings.db_url)
        if not inspect(engine).has_table("config_versions"):
            return None
    except Exception:  # no database to compare with is not a problem of the files being checked
        return None
    lines: list[str] = []
    try:
        with transaction(engine) as conn:
            for kind, path in files.items():
                stored = config_versions.in_force(conn, kind)
                if stored is None:
                    continue
                found = changes(kind, stored.content, path)
                since = translator("en", settings.timezone).datetime_zone(stored.took_effect_at)
                if not found:
                    lines.append(f"{path}: same as the version in force (since {since})")
                lines.extend(f"{path}: {line}" for line in found)
    finally:
        engine.dispose()
    return lines


def register(app: typer.Typer) -> None:
    @app.command("reload")
    def reload() -> None:
        """Ask every running worker to re-read escalation.yaml, monitor.yaml and rules/ now."""
        from monitor.commands.common import open_store_or_exit, settings_or_exit
        from monitor.store import config_versions, transaction

        settings = settings_or_exit()
        engine = open_store_or_exit(settings)
        try:
            with transaction(engine) as conn:
                request = config_versions.request_reload(conn, datetime.now(UTC), getpass.getuser())
        finally:
            engine.dispose()
        typer.echo(f"reload #{request} requested: running workers re-read their configuration within "
                   f"{settings.pass_seconds:g} s; the worker's log says what took effect")
