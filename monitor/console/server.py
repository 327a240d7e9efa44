"""uvicorn in a thread: starts with the worker (or alone), stops when asked, on loopback unless allowed.

The console shows posts and handles (personal data). It binds to 127.0.0.1 by
default and refuses any other address unless the operator allowed it
explicitly, so a typo in a host setting cannot publish it.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from typing import Any

import uvicorn

log = logging.getLogger(__name__)


class ConsoleRefused(ValueError):
    """The bind address is not allowed; the message says which setting would allow it."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind_address(host: str, *, allow_remote: bool) -> None:
    if not is_loopback(host) and not allow_remote:
        raise ConsoleRefused(f"the console would listen on {host}, which is not a loopback address; it shows "
                             "personal data, so set MONITOR_CONSOLE_ALLOW_REMOTE=true to allow it (and put a TLS "
                             "reverse proxy in front), or keep MONITOR_CONSOLE_HOST=127.0.0.1")


class ConsoleServer:
    """``start()`` returns once the port is open; ``stop()`` closes connections and joins the thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8470, *, allow_remote: bool = False) -> None:
        check_bind_address(host, allow_remote=allow_remote)
        self.host = host
        # Bind here, in the caller's thread: a port in use fails start-up at once, and port 0 picks a free one.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port = int(self._socket.getsockname()[1])
        # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 (its default
        # forwarded_allow_ips), so anyone able to reach it through a local hop could pick their own address.
        # The app reads the header itself, from the proxies named in MONITOR_CONSOLE_TRUSTED_PROXIES only.
        config = uvicorn.Config(app, log_config=None, access_log=False, server_header=False,
                                timeout_graceful_shutdown=5, lifespan="off", proxy_headers=False,
                                forwarded_allow_ips="")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="console", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the console did not start")
            time.sleep(0.02)
        log.info("console listening on %s", self.url)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()


def console_server(settings: Any, engine: Any, clock: Any, *, model: Any = None, lock: Any = None,
                   on_applied: Any = None, collect_file: Any = None) -> ConsoleServer:
    """A console for these settings (not started). Raises ``ConfigInvalid`` (one line each, no traceback in
    ``monitor run``) for a broken users file or a non-loopback host that was not allowed.

    ``collect_file`` is the ``monitor.yaml`` whose brands the silences offer (default: ./monitor.yaml).
    ``model`` (a ``SentimentModel``) is used as is when given (the worker's own); otherwise the one the
    settings name is loaded on the first "Try it".
    """
    from datetime import timedelta

    from monitor.classify import load_model
    from monitor.console.tryit import LazyModel
    from monitor.console.users import UserDirectory
    from monitor.console.web import ConsoleConfig, create_app
    from monitor.yamlconfig import ConfigError, ConfigInvalid

    try:
        check_bind_address(settings.console_host, allow_remote=settings.console_allow_remote)
    except ConsoleRefused as exc:
        raise ConfigInvalid([ConfigError("MONITOR_CONSOLE_HOST", 0, 0, "", str(exc))]) from None
    if settings.console_trusted_header and not settings.console_trusted_proxies:
        raise ConfigInvalid([ConfigError(
            "MONITOR_CONSOLE_TRUSTED_HEADER", 0, 0, "",
            f"the header {settings.console_trusted_header} would sign in whoever sends it; name the reverse proxy "
            "that sets it in MONITOR_CONSOLE_TRUSTED_PROXIES (e.g. [\"127.0.0.1\"])")])
    if collect_file is None:
        from pathlib import Path

        collect_file = Path("monitor.yaml")
    if settings.console_users is not None:
        users = UserDirectory.load(settings.console_users)
    else:
        log.warning("MONITOR_CONSOLE_USERS is not set: nobody can sign in to the console")
        users = UserDirectory.empty()
    config = ConsoleConfig(
        engine=engine, rules_dir=settings.rules_dir, escalation_file=settings.escalation_file, users=users,
        clock=clock, model=LazyModel(lambda: load_model(settings.sentiment_model, settings.sentiment_precision),
                                     model),
        languages=tuple(settings.languages), cookie_secure=settings.console_cookie_secure,
        trusted_header=settings.console_trusted_header, trusted_proxies=tuple(settings.console_trusted_proxies),
        max_verifies=settings.console_max_verifies, collect_file=collect_file,
        session_lifetime=timedelta(hours=settings.console_session_hours))
    if lock is not None:
        config.lock = lock
    config.on_applied = on_applied
    return ConsoleServer(create_app(config), settings.console_host, settings.console_port,
                         allow_remote=settings.console_allow_remote)
