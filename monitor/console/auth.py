"""Sign-in sessions, CSRF tokens, the client's address behind a proxy, and the cap on parallel password checks.

Sessions are server-side (the cookie holds only a random id): signing out or a
restart ends them for good, and no user data travels in the cookie. Every form
carries the session's CSRF token and every POST is checked against it. The
sign-in limit itself lives in the store (``monitor.store.signin``), shared by
every worker.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.clock import Clock

COOKIE = "monitor_console"


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    csrf: str
    expires: datetime


class Sessions:
    def __init__(self, clock: Clock, lifetime: timedelta) -> None:
        self._clock = clock
        self._lifetime = lifetime
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, user: str) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), self._clock.now() + self._lifetime)
        with self._lock:
            now = self._clock.now()
            for old in [k for k, s in self._by_id.items() if s.expires <= now]:
                del self._by_id[old]
            self._by_id[sid] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            session = self._by_id.get(sid)
            if session is not None and session.expires <= self._clock.now():
                del self._by_id[sid]
                return None
            return session

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)

    @property
    def lifetime(self) -> timedelta:
        return self._lifetime


def csrf_ok(session: Session, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf, str(given))


def _matches(peer: str, entry: str) -> bool:
    try:
        return ipaddress.ip_address(peer) in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return peer == entry  # a name (the test client's "testclient"), compared as it is


def is_trusted_proxy(peer: str, proxies: Sequence[str]) -> bool:
    return any(_matches(peer, p) for p in proxies)


def client_address(peer: str, forwarded_for: str | None, proxies: Sequence[str]) -> str:
    """The client's address: the peer's own, unless the peer is one of ``proxies`` (the setting
    ``console_trusted_proxies``). Then ``X-Forwarded-For`` is read from the right, skipping our own
    proxies, and the first address no trusted proxy wrote is the client (anything left of it may be
    made up by the client itself, so rotating it changes nothing)."""
    if not forwarded_for or not is_trusted_proxy(peer, proxies):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted_proxy(hop, proxies):
            return hop[:64]
    return hops[0][:64] if hops else peer


class VerifySlots:
    """At most ``size`` password checks at a time in this process; ``try_take`` never waits.

    argon2 takes 64 MiB and most of a core per check: 40 sign-ins at once took the
    worker from 100 MiB to 2 GB. Answering the excess "busy" at once costs nothing.
    """

    def __init__(self, size: int) -> None:
        self._slots = threading.BoundedSemaphore(size)

    def try_take(self) -> bool:
        return self._slots.acquire(blocking=False)

    def give_back(self) -> None:
        self._slots.release()
