"""A local SMTP server for tests (aiosmtpd), on a port the OS picks: bound first, the port read back."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    to: list[str]
    message: EmailMessage


@dataclass
class LocalSmtp:
    """``LocalSmtp(user="monitor", password="pw").start()``; ``refuse_login`` to refuse every login."""

    user: str | None = None
    password: str | None = None
    refuse_login: bool = False
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def start(self) -> LocalSmtp:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            server = self._loop.run_until_complete(self._loop.create_server(self._protocol, "127.0.0.1", 0))
            self._server = server
            self.port = int(server.sockets[0].getsockname()[1])
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="local-smtp", daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        def close() -> None:
            self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(close)
        self._thread.join(5)

    def _protocol(self) -> SMTP:
        return SMTP(self, authenticator=self._authenticate, auth_require_tls=False, auth_required=bool(self.user))

    def _authenticate(self, server: Any, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (not self.refuse_login and isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == self.user and auth_data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, _class=EmailMessage, policy=policy.default)
        self.received.append(Received(list(envelope.rcpt_tos), message))
        return "250 OK"
