"""E-mail, the second delivery path: a level call Slack could not deliver in time goes by e-mail.

Standard library only (``smtplib``, ``email.message``). The outbox decides
(``fallback_pass``, run at the end of every delivery pass): a level call
(``alert``, ``escalation``) still undelivered after its policy's
``email_fallback_after``, that Slack did try and fail, and that is not overtaken
(``catchup``), is e-mailed once to the level's people, plain text plus simple
HTML from the same ``render.lines`` as the console. ``email_sent_at`` records
it, in the transaction after the send; the ``Message-ID`` is fixed per
notification, so the rare repeat after a crash between the two is one thread in
the reader's mail client. Each person reads it in their own language (their
``locale`` in ``escalation.yaml``, else the file's): one message per language.
The Slack delivery goes on: once Slack is back, the channel's card appears and
is kept current as usual.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from sqlalchemy import Engine

from monitor.escalation.schema import EscalationConfig
from monitor.models import Notification
from monitor.notify import catchup
from monitor.notify.base import DeliveryError
from monitor.notify.render import lines, reader
from monitor.store import outbox, transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int = 587
    starttls: bool = True
    user: str | None = None
    password: str | None = None
    sender: str = "monitor@localhost"
    timeout: float = 15.0


class EmailSender:
    def __init__(self, smtp: SmtpSettings) -> None:
        self.smtp = smtp

    def send(self, to: Sequence[str], subject: str, text: str, html_body: str, message_id: str) -> None:
        """Send one message; a ``DeliveryError`` (always recoverable) says clearly what failed."""
        s = self.smtp
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = s.sender, ", ".join(to), subject
        msg["Date"], msg["Message-ID"] = formatdate(localtime=False), message_id
        msg.set_content(text)
        msg.add_alternative(html_body, subtype="html")
        where = f"SMTP server {s.host}:{s.port}"
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout) as server:
                if s.starttls:
                    server.starttls(context=ssl.create_default_context())
                if s.user:
                    server.login(s.user, s.password or "")
                server.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"{where} refused the login of {s.user!r} ({exc.smtp_code}): check "
                                "MONITOR_SMTP_USER and MONITOR_SMTP_PASSWORD", recoverable=True) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError(f"{where} does not offer STARTTLS (or login): set MONITOR_SMTP_STARTTLS=false "
                                "only for a server on a trusted network", recoverable=True) from None
        except smtplib.SMTPException as exc:
            raise DeliveryError(f"{where} refused the message: {exc}", recoverable=True) from None
        except OSError as exc:
            raise DeliveryError(f"{where} cannot be reached ({type(exc).__name__}: {exc}): check "
                                "MONITOR_SMTP_HOST and MONITOR_SMTP_PORT", recoverable=True) from None


def render(n: Notification, locale: str | None = None) -> tuple[str, str, str]:
    """Subject, plain text and simple HTML: the same lines the console prints (post, link, reason, guideline).

    In ``locale`` (the reader's), else the team's language; times in the team's zone, named.
    """
    body = lines(n.kind, n.payload, locale)
    t = reader(n.payload, locale)
    intro = t._("Slack could not deliver this alert in time, so it comes by e-mail. You are called at level "
                "{level}: acknowledge it in Slack when you can, or tell the team.", level=n.payload.level or 1)
    text = "\n".join([intro, "", body[0], *("  " + line for line in body[1:])]) + "\n"
    items = "".join(f"<li>{html.escape(line)}</li>" for line in body[1:])
    page = (f'<html lang="{t.language}"><body><p>{html.escape(intro)}</p><h2>{html.escape(body[0])}</h2>'
            f"<ul>{items}</ul></body></html>")
    return body[0], text, page


class EmailFallback:
    def __init__(self, sender: EmailSender, config: EscalationConfig, *, claimant: str | None = None) -> None:
        self.sender = sender
        self.config = config
        # Who claims what it e-mails (``outbox.claim``): the worker's id, so its claims are freed when it dies.
        self.claimant = claimant or outbox.this_process()
        self._nobody: set[int] = set()  # warned once: no e-mail address at that level

    def _after(self, policy: str | None) -> dt.timedelta | None:
        found = next((p for p in self.config.policies if p.name == policy), None)
        return found.email_fallback_after if found is not None else None

    def addresses(self, n: Notification) -> list[str]:
        return [r.email for rid in n.recipients if (r := self.config.responders.get(rid)) is not None and r.email]

    def by_language(self, n: Notification) -> dict[str, list[str]]:
        """The level's addresses per reader's locale, the team's first: one message per language."""
        groups: dict[str, list[str]] = {self.config.locale: []}
        for rid in n.recipients:
            person = self.config.responders.get(rid)
            if person is not None and person.email:
                groups.setdefault(self.config.locale_of(rid), []).append(person.email)
        return {locale: to for locale, to in groups.items() if to}

    def fallback_pass(self, engine: Engine, now: dt.datetime) -> int:
        """E-mail every level call overdue in Slack; returns how many went out."""
        with transaction(engine) as conn:
            queued = outbox.undelivered(conn, 1000)
        sent = 0
        for q in queued:
            n = q.notification
            after = self._after(n.payload.policy)
            if (n.kind not in catchup.LEVEL_CALLS or q.email_sent_at is not None or after is None
                    or now - n.created_at < after):
                continue
            # Claimed like a Slack delivery, so two workers never e-mail it both; held by another: next pass.
            with transaction(engine) as conn:
                if outbox.claim(conn, n.id, self.claimant, now, unemailed=True) is None:
                    continue
                overtaken = catchup.overtaken(conn, n) is not None
                to = [] if overtaken else self.addresses(n)
                if not to:
                    outbox.release(conn, n.id)
            if overtaken:
                continue
            if not to:
                if n.id not in self._nobody:
                    self._nobody.add(n.id)
                    log.warning("notification %d: nobody at level %s has an e-mail address; no e-mail fallback",
                                n.id, n.payload.level or 1)
                continue
            try:
                # A retry after a failure half-way resends the languages already sent: same Message-ID, one thread.
                for locale, group in self.by_language(n).items():
                    subject, text, page = render(n, locale)
                    suffix = "" if locale == self.config.locale else f"-{locale}"
                    self.sender.send(group, subject, text, page, f"<monitor-notification-{n.id}{suffix}@monitor>")
            except DeliveryError as exc:
                with transaction(engine) as conn:
                    outbox.release(conn, n.id)
                log.error("e-mail fallback for notification %d failed, will retry: %s", n.id, exc)
                break
            with transaction(engine) as conn:
                outbox.mark_emailed(conn, n.id, now)
                outbox.release(conn, n.id)
                catchup.log_delivered(conn, n, now, "e-mail")
            log.warning("notification %d (%s) e-mailed to %d person(s): Slack has not delivered it for %s", n.id,
                        n.kind, len(to), now - n.created_at)
            sent += 1
        return sent
