"""The local HTTP endpoint: ``/metrics`` for Prometheus, ``/healthz`` for a probe.

A small threaded WSGI server from the standard library in a daemon thread: two
read-only routes need no framework, and a slow scrape never blocks the worker.
It binds to 127.0.0.1 by default: metrics name sources and volumes, which is
for a local scraper or sidecar, not the network. Requests are not logged (a
scrape every 15 s would drown the worker's own log lines).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST

from monitor.ops.health import HealthCheck
from monitor.ops.metrics import Metrics

log = logging.getLogger(__name__)
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_app(metrics: Metrics, health: HealthCheck) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI application (usable under any WSGI server, and in tests without a socket)."""
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")])
            return [b"GET only\n"]
        if path in ("/metrics", "/"):
            body = metrics.exposition()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/healthz":
            report = health.check()
            body = (json.dumps(report.body, separators=(",", ":")) + "\n").encode()
            status = "200 OK" if report.status == 200 else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
                                    ("Content-Length", str(len(body)))])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /healthz\n"]
    return app


class MetricsServer:
    """The endpoint on ``host:port`` (port 0 here: any free port, for tests; see ``start_metrics_server``)."""

    def __init__(self, metrics: Metrics, *, port: int, host: str = "127.0.0.1",
                 health: HealthCheck | None = None) -> None:
        self.health = health or HealthCheck(metrics)
        self._server = make_server(host, port, make_app(metrics, self.health), server_class=_ThreadingServer,
                                   handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="metrics-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]!s}:{self.port}"

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("metrics and health on %s/metrics and %s/healthz", self.url, self.url)
        return self

    def stop(self) -> None:
        """Stop serving and free the port; safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


def start_metrics_server(metrics: Metrics, port: int, host: str = "127.0.0.1", *,
                         health: HealthCheck | None = None) -> MetricsServer | None:
    """Serve ``/metrics`` and ``/healthz`` on ``host:port``; call ``stop()`` on the result.

    Port 0 disables the endpoint (``MONITOR_METRICS_PORT=0``): no socket, no thread, and None
    returned. (``MetricsServer`` itself takes port 0 as "any free port", for tests.)
    """
    if port == 0:
        log.info("metrics endpoint disabled (MONITOR_METRICS_PORT=0)")
        return None
    return MetricsServer(metrics, port=port, host=host, health=health).start()
