"""What delivery looks like right now, for ``/healthz`` and ``/metrics``.

Delivery is the one failure the worker cannot report through its own alerts:
when Slack refuses the token, an incident about it would be refused too. So it
is reported outside, loudly: ``/healthz`` is not OK with the reason, and
``monitor_delivery_ok`` drops to 0 for whoever watches the metrics. Fed by the
start-up and periodic checks (``monitor.notify.slack.checks``), by each delivery
attempt (``deliver_pending``), by the Socket Mode listener, and by the store's
count of blocked notifications.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from monitor.i18n import translator
from monitor.models import Notification
from monitor.notify.base import DeliveryError
from monitor.store import outbox, transaction


class DeliveryStatus:
    def __init__(self, clock: Callable[[], datetime], engine: Engine | None = None,
                 zone: Callable[[], str] = lambda: "UTC") -> None:
        """``zone``: the team's time zone now (it follows a reloaded escalation file), for the times it names."""
        self.clock = clock
        self.engine = engine
        self.zone = zone
        self._lock = threading.Lock()
        self.check_problems: list[str] = []
        self.check_unreachable: str | None = None
        self.outage_since: datetime | None = None
        self.last_error: str | None = None
        self.buttons_problem: str | None = None

    # --- fed by the checks, the delivery loop and the listener -----------------------------------------
    def checked(self, problems: list[str], *, unreachable: str | None = None) -> None:
        """The periodic check's findings. ``unreachable`` (one of ``problems``): Slack did not answer; it is
        cleared as soon as a delivery succeeds, not at the next check minutes later."""
        with self._lock:
            self.check_problems = [p for p in problems if p != unreachable]
            self.check_unreachable = unreachable

    @property
    def unreachable(self) -> bool:
        """Slack did not answer the last check, nor any delivery since."""
        with self._lock:
            return self.check_unreachable is not None or self.outage_since is not None

    def delivered(self, notification: Notification) -> None:
        with self._lock:
            self.outage_since = None
            self.last_error = None
            self.check_unreachable = None  # Slack answered: whatever the last check said about reaching it

    def failed(self, notification: Notification, error: DeliveryError) -> None:
        with self._lock:
            if error.recoverable and self.outage_since is None:
                self.outage_since = self.clock()
            self.last_error = str(error)

    def buttons(self, problem: str | None) -> None:
        with self._lock:
            self.buttons_problem = problem

    # --- read by /healthz and /metrics --------------------------------------------------------------------
    def blocked(self) -> int:
        if self.engine is None:
            return 0
        try:
            with transaction(self.engine) as conn:
                return outbox.count_by_status(conn).get(outbox.BLOCKED, 0)
        except Exception:  # the store's own health is reported elsewhere
            return 0

    def problems(self) -> list[str]:
        """Each thing wrong with delivery, in words; empty when alerts flow."""
        with self._lock:
            out = list(self.check_problems)
            if self.check_unreachable is not None and self.outage_since is None:
                out.append(self.check_unreachable)
            if self.outage_since is not None:
                since = translator("en", self.zone()).datetime_zone(self.outage_since)
                out.append(f"Slack unreachable since {since} ({self.last_error}); alerts wait in the outbox")
        blocked = self.blocked()
        if blocked:
            out.append(f"{blocked} notification(s) blocked: see `monitor outbox`")
        return out

    def notes(self) -> list[str]:
        """What is degraded without holding back any alert (the buttons)."""
        with self._lock:
            return [self.buttons_problem] if self.buttons_problem else []

    def report(self) -> dict[str, object]:
        """The ``delivery`` part of ``/healthz``."""
        problems = self.problems()
        return {"ok": not problems, "problems": problems, "buttons": self.notes() or "online"}

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(_Collector(self))


class _Collector(Collector):
    def __init__(self, status: DeliveryStatus) -> None:
        self.status = status

    def collect(self) -> Iterator[GaugeMetricFamily]:
        problems = self.status.problems()
        yield GaugeMetricFamily("monitor_delivery_ok", "1 while alerts can be delivered and nothing is blocked",
                                value=0 if problems else 1)
        yield GaugeMetricFamily("monitor_buttons_online", "1 while Slack's buttons reach the worker (Socket Mode)",
                                value=0 if self.status.notes() else 1)
        yield GaugeMetricFamily("monitor_outbox_blocked", "Notifications refused by the receiver, kept for retry",
                                value=self.status.blocked())
