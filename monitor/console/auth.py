"""Sign-in sessions, CSRF tokens and the login rate limit, all in this process's memory.

Sessions are server-side (the cookie holds only a random id): signing out or a
restart ends them for good, and no user data travels in the cookie. Every form
carries the session's CSRF token and every POST is checked against it. The
login limit counts failures per user name and per client address in a sliding
window, on the injected clock, so the tests need no sleeping.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import defaultdict, deque
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


class LoginLimiter:
    """At most ``attempts`` failed sign-ins per user name and per address within ``window``."""

    def __init__(self, clock: Clock, *, attempts: int = 5, window: timedelta = timedelta(minutes=15)) -> None:
        self._clock = clock
        self._attempts = attempts
        self._window = window
        self._failures: defaultdict[str, deque[datetime]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str) -> deque[datetime]:
        times = self._failures[key]
        cutoff = self._clock.now() - self._window
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def blocked(self, user: str, address: str) -> bool:
        with self._lock:
            return any(len(self._recent(k)) >= self._attempts for k in (f"u:{user}", f"a:{address}"))

    def failed(self, user: str, address: str) -> None:
        with self._lock:
            for key in (f"u:{user}", f"a:{address}"):
                self._recent(key).append(self._clock.now())

    def succeeded(self, user: str) -> None:
        with self._lock:
            self._failures.pop(f"u:{user}", None)
