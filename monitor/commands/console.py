"""``monitor console``: the PR team's web console on its own, against the store (``monitor run`` can serve it too).

``monitor console hash-password`` prints the argon2 hash to put in the users file.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

group = typer.Typer(help="The PR team's web console (see README: 'Console for the PR team').")


@group.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address (default MONITOR_CONSOLE_HOST, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default MONITOR_CONSOLE_PORT, 8470)")] = None,
) -> None:
    """Serve the console until Ctrl-C or SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    from monitor.app import open_store
    from monitor.clock import SystemClock
    from monitor.console.server import console_server
    from monitor.ops import setup_logging
    from monitor.ops.logging import wants_json
    from monitor.settings import load_settings
    from monitor.yamlconfig import ConfigInvalid

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        overrides = {k: v for k, v in (("console_host", host), ("console_port", port)) if v is not None}
        settings = load_settings(**overrides)
        setup_logging(settings.log_level, json=wants_json(settings.log_format))
        server = console_server(settings, open_store(settings.db_url), SystemClock())
    except ConfigInvalid as exc:
        for error in exc.errors:
            typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:  # the port is taken
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    server.start()
    typer.echo(f"console on {server.url} (Ctrl-C to stop)")
    stop.wait()
    server.stop()


@group.command("hash-password")
def hash_password_command() -> None:
    """Ask for a password twice and print its argon2 hash for the users file (the password is not shown)."""
    from monitor.console.users import hash_password

    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        typer.echo("error: use at least 12 characters", err=True)
        raise typer.Exit(1)
    typer.echo(hash_password(password))


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="console")
