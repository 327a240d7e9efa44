"""The console as one Starlette application: sign-in, sessions, CSRF, security headers, rendering.

Why Starlette (with Jinja2 and uvicorn): it is a small, typed, maintained ASGI
toolkit whose ``TestClient`` drives the real app without a socket, Jinja2
renders server-side HTML with autoescaping (no JavaScript, no build step), and
uvicorn is a production server that runs in a thread beside the worker and
stops on request (``ConsoleServer``). Flask would have served equally; its
development server is not meant for production and waitress cannot close its
kept-alive connections on demand, so stopping with the worker is cleaner here.

The pages themselves are in ``pages.py``; this module decides who is signed in
and what every response carries, including its language: each visitor picks
Dutch, French or English with the switch in the header (a cookie; before
that, the browser's ``Accept-Language``), and every page is rendered with that
locale's gettext catalog (``jinja2.ext.i18n``, the callables passed per
request, so two visitors in two languages never share a translation) and its
dates in the escalation file's zone.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
import threading
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from markupsafe import Markup
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from monitor import notes, reasons
from monitor.clock import Clock
from monitor.console.auth import COOKIE, Session, Sessions, VerifySlots, client_address, csrf_ok, is_trusted_proxy
from monitor.console.plain import describe_rule, plain_error
from monitor.console.tryit import LazyModel
from monitor.console.users import ConsoleUser, UserDirectory
from monitor.i18n import LOCALES, N_, Translator, normalise, translator
from monitor.links import web_link
from monitor.models import Incident, IncidentEvent
from monitor.notify.render import title
from monitor.sources.registry import display_name
from monitor.store import audit as audit_repo
from monitor.store import signin, transaction
from monitor.yamlconfig import ConfigError

audit = logging.getLogger("monitor.console.audit")
TEMPLATES = Path(__file__).parent / "templates"
PRE_COOKIE = "monitor_console_login"  # the sign-in form's CSRF token (double submit: there is no session yet)
LANGUAGE_COOKIE = "monitor_console_language"  # the visitor's choice of nl_BE, fr_BE or en
LANGUAGE_NAMES = {"nl_BE": "Nederlands", "fr_BE": "Français", "en": "English"}  # each in its own words
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(slots=True)
class ConsoleConfig:
    """Everything the console reads and acts on; ``monitor console`` and ``monitor run`` both build one."""

    engine: Engine
    rules_dir: Path
    escalation_file: Path
    users: UserDirectory
    clock: Clock
    model: LazyModel
    languages: Sequence[str] = ("nl", "fr", "en")
    cookie_secure: bool = True
    trusted_header: str | None = None
    # Reverse proxies whose X-Forwarded-For and trusted header are believed (addresses or networks).
    trusted_proxies: Sequence[str] = ()
    max_verifies: int = 2  # password checks at the same time in this process
    collect_file: Path | None = None  # monitor.yaml: the brands a silence or a filter may name
    session_lifetime: timedelta = timedelta(hours=12)
    # Orders the console's own actions; an action and an escalation tick (on any worker) are ordered by the
    # incident's row lock in the store (``store.incidents.lock``), not by this.
    lock: AbstractContextManager[Any] = field(default_factory=threading.Lock)
    on_applied: Callable[[], None] | None = None  # e.g. the worker's pass_soon, to deliver at once
    locale: str | None = None  # the console's language before a visitor chooses (None: the browser's, else English)


@dataclass(frozen=True, slots=True)
class Visitor:
    user: ConsoleUser
    session: Session
    new_sid: str | None = None  # set when the proxy header signed them in on this request


Handler = Callable[["ConsoleApp", Request, Visitor], Awaitable[Response]]


@pass_context
def _reason(context: Any, incident: Incident) -> str:
    """The incident's reason as ``monitor.reasons`` renders it for every reader (its stored words on older rows)."""
    t: Translator | None = context.get("t")
    return reasons.text(incident.reason_data, incident.reason, t or translator())


@pass_context
def _plain_error(context: Any, error: ConfigError) -> str:
    t: Translator | None = context.get("t")
    return plain_error(error, t or translator())


@pass_context
def _note(context: Any, event: IncidentEvent) -> str:
    """A timeline note as ``monitor.notes`` renders it for every reader (as written when a person wrote it)."""
    t: Translator | None = context.get("t")
    return notes.text(event.note_data, event.note, t or translator())


@pass_context
def _facts(context: Any, facts: Sequence[reasons.Fact]) -> list[str]:
    """What made a post match, each fact as the reasons in alerts say it, in the reader's language."""
    t: Translator | None = context.get("t")
    return [reasons.render_fact(f, t or translator()) for f in facts]


class ConsoleApp:
    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.sessions = Sessions(config.clock, config.session_lifetime)
        self.verify_slots = VerifySlots(config.max_verifies)
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        env = self.templates.env
        env.filters["when"] = _when
        env.filters["platform"] = display_name  # "YouTube", as alerts and the digest say it: a proper name
        env.filters["weblink"] = web_link  # a post's URL becomes a link only when it is http(s)
        env.filters["plainerror"] = _plain_error
        env.filters["auditword"] = _audit_word
        env.filters["kindword"] = _kind_word  # a queued notification's kind, as its Slack title names it
        env.filters["reason"] = _reason  # why an incident fired, in the reader's language
        env.filters["facts"] = _facts  # why a post matches a rule (the try page), likewise
        env.filters["note"] = _note  # a timeline line the engine wrote, likewise (a person's note as written)
        # Newstyle gettext (``_("… %(n)s", n=x)``, autoescaped); the real catalog comes with each request
        # (``gettext_callables``); null translations until then.
        if "jinja2.ext.InternationalizationExtension" not in env.extensions:
            env.add_extension("jinja2.ext.i18n")
        if "gettext" not in env.globals:
            env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
        self._flash: dict[str, str] = {}
        self._detector: Any = None
        self._detector_lock = threading.Lock()

    # --- who is this ----------------------------------------------------------------------------
    def peer(self, request: Request) -> str:
        return request.client.host if request.client else "?"

    def address(self, request: Request) -> str:
        """The client's address; ``X-Forwarded-For`` counts only from a proxy named in the settings."""
        return client_address(self.peer(request), request.headers.get("x-forwarded-for"),
                              self.config.trusted_proxies)

    def record(self, request: Request, actor: str, action: str, outcome: audit_repo.Outcome = "done", *,
               incident_id: int | None = None, detail: str | None = None, address: bool = False) -> None:
        """One audit row in its own transaction (for what changes nothing else: sign-ins, refusals)."""
        with transaction(self.config.engine) as conn:
            audit_repo.record(conn, at=self.config.clock.now(), actor=actor, channel="console", action=action,
                              outcome=outcome, incident_id=incident_id, detail=detail,
                              address=self.address(request) if address else None)

    def visitor(self, request: Request) -> Visitor | None:
        sid = request.cookies.get(COOKIE)
        session = self.sessions.get(sid)
        if session is not None:
            user = self.config.users.get(session.user)
            return Visitor(user, session) if user is not None else None
        header = self.config.trusted_header
        # Only a proxy named in the settings may say who is signed in; from anyone else the header is ignored.
        trusted = header is not None and is_trusted_proxy(self.peer(request), self.config.trusted_proxies)
        name = request.headers.get(header) if header and trusted else None
        user = self.config.users.get(name.strip()) if name else None
        if user is None:
            return None
        new_sid, session = self.sessions.start(user.name)
        audit.info("console sign-in by %s (proxy header)", user.name)
        self.record(request, user.name, "sign-in", detail="by the proxy's header", address=True)
        return Visitor(user, session, new_sid)

    def detector(self) -> Any:
        """py3langid loads once, on the first post tried without a language."""
        from monitor.classify import LanguageDetector

        with self._detector_lock:
            if self._detector is None:
                self._detector = LanguageDetector(self.config.languages)
            return self._detector

    # --- responses ------------------------------------------------------------------------------
    def secure(self, response: Response, visitor: Visitor | None = None) -> Response:
        for key, value in SECURITY_HEADERS.items():
            response.headers[key] = value
        if visitor is not None and visitor.new_sid is not None:
            self.set_session_cookie(response, visitor.new_sid)
        return response

    def set_session_cookie(self, response: Response, sid: str) -> None:
        response.set_cookie(COOKIE, sid, max_age=int(self.sessions.lifetime.total_seconds()), path="/",
                            secure=self.config.cookie_secure, httponly=True, samesite="strict")

    def flash(self, visitor: Visitor, message: str) -> None:
        self._flash[visitor.session.csrf] = message

    def locale(self, request: Request) -> str:
        """The visitor's language: their switch, else the browser's first supported language, else the default."""
        chosen = request.cookies.get(LANGUAGE_COOKIE)
        if chosen in LOCALES:
            return chosen
        for part in request.headers.get("accept-language", "").split(","):
            tag = part.split(";")[0].strip()
            if tag.replace("-", "_").split("_")[0].lower() in ("nl", "fr", "en"):
                return normalise(tag)
        return normalise(self.config.locale)

    def translator(self, request: Request, zone: Any = None) -> Translator:
        """The visitor's words (``locale``), times in ``zone`` (the escalation file's, where a page shows one)."""
        return translator(self.locale(request), _zone_key(zone))

    def render(self, request: Request, visitor: Visitor | None, name: str, status: int = 200,
               **context: Any) -> Response:
        message = self._flash.pop(visitor.session.csrf, None) if visitor else None
        locale = self.locale(request)
        t = translator(locale, _zone_key(context.get("zone")))
        context.update(user=visitor.user if visitor else None, csrf=visitor.session.csrf if visitor else "",
                       flash=message, page=name.removesuffix(".html"), t=t, lang=t.language, locale=locale,
                       languages=LANGUAGE_NAMES, describe_rule=describe_rule,
                       **gettext_callables(t, self.templates.env.autoescape))
        return self.secure(self.templates.TemplateResponse(request, name, context, status_code=status), visitor)

    async def choose_language(self, request: Request) -> Response:
        """The language switch: a cookie for a year, then back to the page it was used on."""
        form = await request.form()
        visitor = self.visitor(request)
        if visitor is not None and not csrf_ok(visitor.session, str(form.get("csrf") or "")):
            return self.refuse(request, visitor, 403, N_("This form has expired. Reload the page and try again."))
        chosen = str(form.get("locale") or "")
        back = str(form.get("next") or "/")
        if not back.startswith("/") or back.startswith("//"):
            back = "/"  # only pages of this console: never an open redirect
        response = self.redirect(back, visitor)
        if chosen in LOCALES:
            response.set_cookie(LANGUAGE_COOKIE, chosen, max_age=365 * 24 * 3600, path="/",
                                secure=self.config.cookie_secure, httponly=True, samesite="strict")
        return response

    def redirect(self, to: str, visitor: Visitor | None = None) -> Response:
        return self.secure(RedirectResponse(to, status_code=303), visitor)

    def refuse(self, request: Request, visitor: Visitor, status: int, message: str) -> Response:
        return self.render(request, visitor, "refused.html", status=status, message=message)

    # --- wrapping every page --------------------------------------------------------------------
    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Signed-in only; every POST must carry the session's CSRF token."""
        async def endpoint(request: Request) -> Response:
            visitor = await run_in_threadpool(self.visitor, request)  # may write an audit row
            if visitor is None:
                if request.method == "GET":
                    return self.redirect("/login")
                return self.secure(Response("sign in first\n", status_code=401, media_type="text/plain"))
            if request.method == "POST":
                form = await request.form()
                if not csrf_ok(visitor.session, str(form.get("csrf") or "")):
                    audit.warning("console: %s %s by %s refused: missing or wrong CSRF token", request.method,
                                  request.url.path, visitor.user.name)
                    return self.refuse(request, visitor, 403,
                                       N_("This form has expired. Reload the page and try again."))
            return await handler(self, request, visitor)
        return endpoint

    # --- sign-in --------------------------------------------------------------------------------
    async def login_form(self, request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        response = self.render(request, None, "login.html", login_token=token, error=None)
        response.set_cookie(PRE_COOKIE, token, max_age=1800, path="/login", secure=self.config.cookie_secure,
                            httponly=True, samesite="strict")
        return response

    async def login(self, request: Request) -> Response:
        """Sign-in. Order matters: a free verify slot, then the store's throttle counts the attempt, and only
        then the argon2 check; a success gives the account its count back."""
        form = await request.form()
        name = str(form.get("user") or "").strip()[:200]
        password = str(form.get("password") or "")
        token = str(form.get("csrf") or "")
        address = self.address(request)
        expected = request.cookies.get(PRE_COOKIE) or ""

        def again(error: str, status: int, retry_after: int | None = None) -> Response:
            fresh = secrets.token_urlsafe(24)
            response = self.render(request, None, "login.html", status=status, login_token=fresh, error=error)
            response.set_cookie(PRE_COOKIE, fresh, max_age=1800, path="/login", secure=self.config.cookie_secure,
                                httponly=True, samesite="strict")
            if retry_after is not None:
                response.headers["Retry-After"] = str(retry_after)
            return response

        if not expected or not secrets.compare_digest(expected, token):
            return again(N_("This form has expired. Please try again."), 403)
        if not self.verify_slots.try_take():
            audit.warning("console sign-in for %r from %s turned away: %d password checks already running", name,
                          address, self.config.max_verifies)
            return again(N_("Too many people are signing in right now. Try again in a few seconds."), 503, 2)
        try:
            return await self._check_password(request, name, password, address, again)
        finally:
            self.verify_slots.give_back()

    async def _check_password(self, request: Request, name: str, password: str, address: str,
                              again: Callable[..., Response]) -> Response:
        keys = ((signin.account_key(name), signin.ACCOUNT), (signin.address_key(address), signin.ADDRESS))

        def admit() -> dt.timedelta | None:
            with transaction(self.config.engine) as conn:
                return signin.admit(conn, keys, self.config.clock.now())
        wait = await run_in_threadpool(admit)
        if wait is not None:
            seconds = max(1, math.ceil(wait.total_seconds()))
            audit.warning("console sign-in for %r from %s slowed down: next try in %d s", name, address, seconds)
            await run_in_threadpool(self._record_throttled, request, name, address)
            return again(self.translator(request).ngettext(
                "Too many failed attempts. Wait {n} second and try again.",
                "Too many failed attempts. Wait {n} seconds and try again.", seconds), 429, seconds)
        user = await run_in_threadpool(self.config.users.verify, name, password)
        if user is None:
            audit.info("console sign-in failed for %r from %s", name, address)
            await run_in_threadpool(self.record, request, name, "sign-in", "refused", detail="wrong name or password",
                                    address=True)
            return again(N_("Unknown name or wrong password."), 401)

        def done() -> None:
            with transaction(self.config.engine) as conn:
                now = self.config.clock.now()
                signin.succeeded(conn, keys[0][0], keys[1][0], now)
                audit_repo.record(conn, at=now, actor=user.name, channel="console", action="sign-in",
                                  address=address)
        await run_in_threadpool(done)
        sid, _session = self.sessions.start(user.name)
        audit.info("console sign-in by %s from %s", user.name, address)
        response = self.redirect("/")
        self.set_session_cookie(response, sid)
        response.delete_cookie(PRE_COOKIE, path="/login")
        return response

    def _record_throttled(self, request: Request, name: str, address: str) -> None:
        """At most one row a minute per address for slowed-down sign-ins, so a flood cannot fill the table."""
        with transaction(self.config.engine) as conn:
            now = self.config.clock.now()
            if not audit_repo.seen_since(conn, action="sign-in-slowed", address=address,
                                         since=now - dt.timedelta(minutes=1)):
                audit_repo.record(conn, at=now, actor=name or "?", channel="console", action="sign-in-slowed",
                                  outcome="refused", detail="too many attempts", address=address)

    async def logout(self, request: Request, visitor: Visitor) -> Response:
        self.sessions.end(request.cookies.get(COOKIE))
        audit.info("console sign-out by %s", visitor.user.name)
        await run_in_threadpool(self.record, request, visitor.user.name, "sign-out")
        response = self.redirect("/login")
        response.delete_cookie(COOKIE, path="/")
        return response

    async def stylesheet(self, request: Request) -> Response:
        css = (TEMPLATES / "console.css").read_text(encoding="utf-8")
        response = Response(css, media_type="text/css")
        self.secure(response)
        response.headers["Cache-Control"] = "max-age=300"
        return response


def _zone_key(zone: Any) -> str:
    return str(getattr(zone, "key", zone or "UTC"))


@pass_context
def _when(context: Any, value: Any, zone: Any) -> str:
    """'di 17 nov 21:40' in the escalation file's zone and the visitor's language; '' for no time."""
    if value is None:
        return ""
    t: Translator | None = context.get("t")
    return translator(t.locale if t else None, _zone_key(zone)).datetime(value)


def gettext_callables(t: Translator, autoescape: Any) -> dict[str, Callable[..., str]]:
    """``_``, ``gettext`` and ``ngettext`` for one request, with Jinja's newstyle semantics.

    As ``install_gettext_callables(newstyle=True)`` would make them, but per render instead of on the shared
    environment: the translation is autoescaped like any output, and ``%(name)s`` values are filled in.
    """
    def escaped(text: str) -> str:
        return Markup(text) if autoescape else text

    def gettext(message: str, /, **values: Any) -> str:
        return escaped(t.catalog.gettext(message)) % values

    def ngettext(singular: str, plural: str, n: int, /, **values: Any) -> str:
        values.setdefault("num", n)
        return escaped(t.catalog.ngettext(singular, plural, n)) % values

    def translate(message: str) -> str:
        """A word the code chose at run time (a state, a severity, a refusal): translated, not formatted."""
        return t.catalog.gettext(message)

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext, "translate": translate}


# The audit log's actions and channels as stored (``store.audit``), in words a reader knows: ``auditword``.
AUDIT_WORDS = {"acknowledge": N_("acknowledge"), "resolve": N_("resolve"), "false_positive": N_("false positive"),
               "snooze": N_("snooze"), "note": N_("note"), "silence-add": N_("add a silence"),
               "silence-expire": N_("end a silence"), "sign-in": N_("sign in"), "sign-out": N_("sign out"),
               "sign-in-slowed": N_("sign-in slowed down"), "console": N_("console"), "slack": N_("Slack"),
               "email": N_("e-mail"), "cli": N_("command line")}


@pass_context
def _kind_word(context: Any, kind: str) -> str:
    """'alert' → 'new incident' / 'nieuw incident': the title the notification carries, in lower case."""
    t: Translator | None = context.get("t")
    return title(kind, t or translator()).lower()


@pass_context
def _audit_word(context: Any, value: str) -> str:
    """An audit row's action or channel in the reader's language; one this version does not know as stored."""
    t: Translator | None = context.get("t")
    word = AUDIT_WORDS.get(value)
    return (t or translator())._(word) if word else value


# Words the console shows that reach it as data: marked here so that ``pybabel extract`` finds them.
DATA_WORDS = (N_("page"), N_("wait"), N_("open"), N_("notified"), N_("acknowledged"), N_("snoozed"),
              N_("resolved"), N_("false positive"), N_("expired"), N_("critical"), N_("warning"), N_("info"),
              N_("active"), N_("future"), N_("ended"), N_("done"), N_("refused"), N_("failed"),
              N_("pending"), N_("sent"), N_("blocked"), N_("superseded"))  # outbox statuses


def create_app(config: ConsoleConfig) -> Starlette:
    """The ASGI application; serve it with ``ConsoleServer`` or drive it with Starlette's ``TestClient``."""
    from monitor.console.pages import ROUTES

    console = ConsoleApp(config)
    routes = [
        Route("/login", console.login_form, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/console.css", console.stylesheet, methods=["GET"]),
        Route("/language", console.choose_language, methods=["POST"]),
        Route("/logout", console.page(ConsoleApp.logout), methods=["POST"]),
        *[Route(path, console.page(handler), methods=methods) for path, handler, methods in ROUTES],
    ]
    app = Starlette(routes=routes)
    app.state.console = console
    return app
