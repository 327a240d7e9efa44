"""The pages: Now, an incident, History, Silences, Rules, Try it, Escalation plan, Audit.

Each handler reads its form, then works in a thread. Changes go through the
same code as everywhere else: incident actions through ``EscalationEngine`` with
the Slack buttons' membership rule (``policy_members``), silences through
``store.silences``; each change, and each refused attempt, writes an audit row
(``store.audit``) in the same transaction, naming who signed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from monitor.console import data
from monitor.console.plain import plain_error
from monitor.console.tryit import check_rule_file, compare, try_post
from monitor.console.web import ConsoleApp, Handler, Visitor, audit
from monitor.detect import load_rules
from monitor.escalation import ActionResult, EscalationConfig, EscalationEngine
from monitor.escalation.plan import hours_of, plan
from monitor.escalation.schema import load_escalation
from monitor.escalation.snooze import DEFAULT_MINUTES, SNOOZES
from monitor.i18n import N_, Translator
from monitor.models import Mention, Severity
from monitor.notify.slack.actions import policy_members
from monitor.privacy.scrub import normalise_handle
from monitor.sources.schema import load_collect
from monitor.store import audit as audit_repo
from monitor.store import silences as silence_repo
from monitor.store import transaction
from monitor.store.feedback import imply_from_false_positive
from monitor.store.history import Filters
from monitor.yamlconfig import ConfigInvalid

MAX_UPLOAD = 256 * 1024
# What the visitor reads after an action (translated when shown; ``{id}`` the incident, ``{time}`` a snooze).
ACTIONS = {"acknowledge": N_("Incident #{id} acknowledged."), "resolve": N_("Incident #{id} resolved."),
           "false_positive": N_("Incident #{id} marked as a false positive."),
           "snooze": N_("Incident #{id} snoozed for {time}.")}
STATES = ("open", "acknowledged", "resolved", "false_positive", "expired")
# An incident's state in words (the same words as Now and the digest; translated where shown).
STATE_WORDS = {"open": N_("open"), "notified": N_("notified"), "acknowledged": N_("acknowledged"),
               "snoozed": N_("snoozed"), "resolved": N_("resolved"), "false_positive": N_("false positive"),
               "expired": N_("expired")}
MAX_REASON = 500
MAX_AUTHOR = 100


def whole_number(text: str, what: str, t: Translator, *, default: int, low: int, high: int) -> int:
    """A form's whole number within [low, high]; ValueError with a sentence a person can act on (``what``: the
    field's name, already in the visitor's words)."""
    text = text.strip().replace(",", "").replace("_", "")
    if not text:
        return default
    if not (text.isascii() and text.isdigit()):
        raise ValueError(t._("{what}: write a whole number from {low} to {high}, not “{text}”", what=what,
                             low=t.number(low), high=t.number(high), text=text[:40]))
    value = int(text[:12])
    if not low <= value <= high:
        raise ValueError(t._("{what}: write a whole number from {low} to {high}", what=what, low=t.number(low),
                             high=t.number(high)))
    return value


def _escalation(app: ConsoleApp) -> EscalationConfig:
    return load_escalation(app.config.escalation_file)


def _local(app: ConsoleApp, text: str, zone: Any, t: Translator) -> dt.datetime:
    """A local 'YYYY-MM-DD HH:MM' from a form, or now; ValueError with a readable message."""
    if not text.strip():
        return app.config.clock.now()
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("T", " "))
    except ValueError:
        raise ValueError(t._("not a time: “{text}” (write it as 2026-11-18 21:40)", text=text.strip()[:40])) from None
    return (when.replace(tzinfo=zone) if when.tzinfo is None else when).astimezone(dt.UTC)


def _zone(app: ConsoleApp) -> Any:
    try:
        return _escalation(app).zone
    except ConfigInvalid:
        return dt.UTC


def _choices(app: ConsoleApp) -> data.Choices:
    """Configured brands (monitor.yaml, the rules) and rule names, for the selects."""
    brands: list[str] = []
    problems = []
    collect = app.config.collect_file
    if collect is not None and collect.exists():
        try:
            brands = list(load_collect(collect).brands)
        except ConfigInvalid as exc:
            problems = exc.errors
    choices = data.configured_choices(app.config.rules_dir, brands)
    return data.Choices(choices.brands, choices.rules, problems + choices.problems)


def _may_act(config: EscalationConfig | None, visitor: Visitor, policy: str) -> bool:
    return config is not None and visitor.user.responder in policy_members(config, policy)


def _config_or_none(app: ConsoleApp) -> EscalationConfig | None:
    try:
        return _escalation(app)
    except ConfigInvalid:
        return None


async def now_page(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    def work() -> dict[str, Any]:
        with transaction(app.config.engine) as conn:
            view = data.now_view(conn)
        config = _config_or_none(app)
        may_act = {i.incident.id for i in view.incidents if _may_act(config, visitor, i.incident.policy)}
        zone = config.zone if config else dt.UTC
        return {"view": view, "may_act": may_act, "zone": zone, "config": config, "snoozes": SNOOZES,
                "snooze_default": DEFAULT_MINUTES, "now": app.config.clock.now()}
    return app.render(request, visitor, "now.html", **await run_in_threadpool(work))


async def incident_page(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    incident_id = int(request.path_params["incident_id"])
    t = app.translator(request)

    def work() -> dict[str, Any] | None:
        with transaction(app.config.engine) as conn:
            page = data.incident_page(conn, incident_id)
        if page is None:
            return None
        config = _config_or_none(app)
        return {"p": page, "i": page.item.incident, "may_act": _may_act(config, visitor, page.item.incident.policy),
                "may_note": visitor.user.editor or _may_act(config, visitor, page.item.incident.policy),
                "zone": config.zone if config else dt.UTC, "snoozes": SNOOZES, "snooze_default": DEFAULT_MINUTES,
                "now": app.config.clock.now(),
                "error": None}
    context = await run_in_threadpool(work)
    if context is None:
        return app.refuse(request, visitor, 404, t._("There is no incident #{id}.", id=incident_id))
    return app.render(request, visitor, "incident.html", **context)


def _back(form_value: object, incident_id: int) -> str:
    """Where to go after an action: the incident's page when it came from there, else Now."""
    return f"/incidents/{incident_id}" if str(form_value or "") == "incident" else "/"


async def incident_action(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    action = request.path_params["action"]
    incident_id = int(request.path_params["incident_id"])
    t = app.translator(request)
    if action not in ACTIONS:
        return app.refuse(request, visitor, 404, N_("No such action."))
    form = await request.form()
    minutes = DEFAULT_MINUTES
    if action == "snooze":
        try:
            minutes = whole_number(str(form.get("minutes") or ""), t._("snooze for"), t, default=DEFAULT_MINUTES,
                                   low=1, high=max(SNOOZES))
        except ValueError as exc:
            return app.refuse(request, visitor, 400, str(exc))
        if minutes not in SNOOZES:
            return app.refuse(request, visitor, 400, N_("Choose one of the snooze lengths offered."))

    def work() -> tuple[int, str]:
        config = _escalation(app)
        escalation = EscalationEngine(config)
        now = app.config.clock.now()
        who = visitor.user.responder

        def audit_row(conn: Any, outcome: audit_repo.Outcome, detail: str) -> None:
            audit_repo.record(conn, at=now, actor=visitor.user.name, channel="console", action=action,
                              outcome=outcome, incident_id=incident_id, detail=detail)
        with app.config.lock, transaction(app.config.engine) as conn:
            row = data.get_incident(conn, incident_id)
            if row is None:
                return 404, t._("Incident #{id} no longer exists.", id=incident_id)
            if who not in policy_members(config, row.policy):
                audit_row(conn, "refused", f"responder {who} is not on policy {row.policy}")
                return 403, t._("Only the people on the escalation policy {policy} can act on incident #{id}. "
                                "Nothing was changed.", policy=row.policy, id=incident_id)
            if action == "acknowledge":
                result = escalation.acknowledge(conn, incident_id, who, now)
            elif action == "snooze":
                result = escalation.snooze(conn, incident_id, who, now + dt.timedelta(minutes=minutes), now)
            else:
                result = escalation.resolve(conn, incident_id, who, now, false_positive=action == "false_positive")
                if result is ActionResult.APPLIED and action == "false_positive":
                    # As from Slack: one post, that post was not negative (the responder can say otherwise).
                    imply_from_false_positive(conn, incident_id, who, now, "console")
            if result is not ActionResult.APPLIED:
                audit_row(conn, "refused", f"nothing changed: the incident is {row.state.value}")
                return 200, t._("Nothing changed: incident #{id} is {state}.", id=incident_id,
                                state=t._(STATE_WORDS.get(row.state.value, row.state.value)))
            audit_row(conn, "done", f"as responder {who}" + (f", for {SNOOZES[minutes]}" if action == "snooze"
                                                              else ""))
        audit.info("console: incident #%d %s by %s (responder %s)", incident_id, action, visitor.user.name, who)
        if app.config.on_applied is not None:
            app.config.on_applied()
        return 200, t._(ACTIONS[action], id=incident_id, time=t._(SNOOZES[minutes]))
    status, message = await run_in_threadpool(work)
    if status != 200:
        return app.refuse(request, visitor, status, message)
    app.flash(visitor, message)
    return app.redirect(_back(form.get("back"), incident_id))


async def note_add(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    incident_id = int(request.path_params["incident_id"])
    form = await request.form()
    text = str(form.get("text") or "")
    t = app.translator(request)

    def work() -> tuple[int, str]:
        config = _config_or_none(app)
        now = app.config.clock.now()
        with transaction(app.config.engine) as conn:
            row = data.get_incident(conn, incident_id)
            if row is None:
                return 404, t._("There is no incident #{id}.", id=incident_id)
            if not (visitor.user.editor or _may_act(config, visitor, row.policy)):
                audit_repo.record(conn, at=now, actor=visitor.user.name, channel="console", action="note",
                                  outcome="refused", incident_id=incident_id, detail="not on the policy, not an editor")
                return 403, t._("Only the people on the incident's policy and editors write notes.")
            note_id = audit_repo.add_note(conn, incident_id, by=visitor.user.name, text=text, at=now)
            # The note's number, not its words: the text lives in one place only (it may name someone).
            audit_repo.record(conn, at=now, actor=visitor.user.name, channel="console", action="note",
                              incident_id=incident_id, detail=f"note #{note_id}")
        return 200, t._("Note added.")
    try:
        status, message = await run_in_threadpool(work)
    except ValueError as exc:
        return app.refuse(request, visitor, 400, t._("Note not added: {reason}.", reason=exc))
    if status != 200:
        return app.refuse(request, visitor, status, message)
    app.flash(visitor, message)
    return app.redirect(f"/incidents/{incident_id}#notes")


def _day(text: str, zone: Any, what: str, t: Translator) -> dt.datetime | None:
    """Midnight of a 'YYYY-MM-DD' in ``zone``, as UTC; None for nothing; ValueError in words."""
    text = text.strip()
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(t._("{what}: write a date as 2026-11-18, not “{text}”", what=what, text=text[:40])) from None
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


async def history_page(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    q = request.query_params
    chosen = {k: q.get(k, "").strip()[:200] for k in ("brand", "rule", "author", "state", "from", "to", "words")}
    t = app.translator(request)

    def work() -> dict[str, Any]:
        zone = _zone(app)
        choices = _choices(app)
        error = None
        rows: list[Any] = []
        total = 0
        try:
            if chosen["state"] and chosen["state"] not in STATES:
                raise ValueError(t._("state: choose one of the states offered"))
            until = _day(chosen["to"], zone, t._("to"), t)
            filters = Filters(brand=chosen["brand"] or None, rule=chosen["rule"] or None,
                              author=chosen["author"] or None, state=chosen["state"] or None,
                              opened_from=_day(chosen["from"], zone, t._("from"), t),
                              opened_before=until + dt.timedelta(days=1) if until else None,
                              words=chosen["words"] or None)
            with transaction(app.config.engine) as conn:
                rows, total = data.history(conn, filters, limit=200)
        except ValueError as exc:
            error = str(exc)
        return {"rows": rows, "total": total, "chosen": chosen, "choices": choices, "zone": zone,
                "states": STATES, "error": error}
    context = await run_in_threadpool(work)
    return app.render(request, visitor, "history.html", status=400 if context["error"] else 200, **context)


async def audit_page(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    def work() -> list[audit_repo.AuditEntry]:
        with transaction(app.config.engine) as conn:
            return data.audit_rows(conn)
    return app.render(request, visitor, "audit.html", rows=await run_in_threadpool(work), zone=_zone(app))


def _silences_context(app: ConsoleApp, **extra: Any) -> dict[str, Any]:
    with transaction(app.config.engine) as conn:
        rows = data.silence_rows(conn, app.config.clock.now())
    context: dict[str, Any] = {"rows": rows, "zone": _zone(app), "choices": _choices(app), "error": None,
                               "form": {}}
    context.update(extra)
    return context


async def silences_page(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    return app.render(request, visitor, "silences.html", **await run_in_threadpool(_silences_context, app))


async def silence_add(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    form = await request.form()
    field: Callable[[str], str | None] = lambda k: str(form.get(k) or "").strip() or None  # noqa: E731
    if not visitor.user.editor:
        audit.warning("console: silence refused for %s: not an editor", visitor.user.name)
        await run_in_threadpool(app.record, request, visitor.user.name, "silence-add", "refused",
                                detail="not an editor")
        return app.refuse(request, visitor, 403, N_("Only editors may add silences. Ask the PR lead."))
    zone = _zone(app)
    t = app.translator(request)

    def work() -> int:
        choices = _choices(app)
        brand, rule, author, reason = field("brand"), field("rule"), field("author"), field("reason")
        if brand is not None and brand not in choices.brands:
            raise ValueError(t._("choose the brand from the list: a brand that is not configured would mute "
                                 "nothing"))
        if rule is not None and rule not in choices.rules:
            raise ValueError(t._("choose the rule from the list: a rule that does not exist would mute nothing"))
        if author is not None and len(author) > MAX_AUTHOR:
            raise ValueError(t._("an author is one handle, at most {n} characters", n=MAX_AUTHOR))
        if author is not None and not normalise_handle(author):
            raise ValueError(t._("write the author's handle, e.g. @someone"))
        if reason is None:
            raise ValueError(t._("say why: the reason is shown with the silence and in the digest"))
        if len(reason) > MAX_REASON:
            raise ValueError(t._("keep the reason under {n} characters", n=MAX_REASON))
        now = app.config.clock.now()
        ends = _local(app, field("until") or "", zone, t)
        with transaction(app.config.engine) as conn:
            sid = silence_repo.add(conn, brand=brand, rule=rule, author=author, starts_at=now, ends_at=ends,
                                   reason=reason, created_by=visitor.user.name)
            audit_repo.record(conn, at=now, actor=visitor.user.name, channel="console", action="silence-add",
                              detail=silence_repo.added_detail(sid, brand=brand, rule=rule, author=author,
                                                               ends_at=ends, zone=zone, reason=reason))
            return sid
    try:
        sid = await run_in_threadpool(work)
    except ValueError as exc:
        form_values = {k: field(k) or "" for k in ("brand", "rule", "author", "until", "reason")}
        return app.render(request, visitor, "silences.html", status=400,
                          **await run_in_threadpool(_silences_context, app, error=str(exc), form=form_values))
    audit.info("console: silence #%d added by %s (brand=%s rule=%s author=%s until=%s): %s", sid, visitor.user.name,
               field("brand"), field("rule"), "set" if field("author") else None, field("until"), field("reason"))
    app.flash(visitor, t._("Silence #{id} added.", id=sid))
    return app.redirect("/silences")


async def silence_expire(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    silence_id = int(request.path_params["silence_id"])
    t = app.translator(request)
    if not visitor.user.editor:
        await run_in_threadpool(app.record, request, visitor.user.name, "silence-expire", "refused",
                                detail=f"#{silence_id}: not an editor")
        return app.refuse(request, visitor, 403, N_("Only editors may expire silences."))

    def work() -> bool:
        with transaction(app.config.engine) as conn:
            # Expired on the record (who, when), like `monitor silence remove --by`.
            now = app.config.clock.now()
            done = silence_repo.remove(conn, silence_id, by=visitor.user.name, now=now)
            if done:
                audit_repo.record(conn, at=now, actor=visitor.user.name, channel="console", action="silence-expire",
                                  detail=f"#{silence_id}")
            return done
    if not await run_in_threadpool(work):
        return app.refuse(request, visitor, 404, t._("No silence #{id}.", id=silence_id))
    audit.info("console: silence #%d expired by %s", silence_id, visitor.user.name)
    app.flash(visitor, t._("Silence #{id} expired.", id=silence_id))
    return app.redirect("/silences")


async def rules_page(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    def work() -> data.RulesView:
        with transaction(app.config.engine) as conn:
            return data.rules_view(conn, app.config.rules_dir, app.config.clock.now())
    return app.render(request, visitor, "rules.html", view=await run_in_threadpool(work))


async def try_page(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    return app.render(request, visitor, "try.html", **_try_context(app))


def _try_context(app: ConsoleApp, **extra: Any) -> dict[str, Any]:
    names = sorted(p.name for p in app.config.rules_dir.glob("*.y*ml"))
    context: dict[str, Any] = {"verdict": None, "post": {}, "check": None, "comparison": None, "error": None,
                               "rule_files": names, "zone": _zone(app), "days": 30}
    context.update(extra)
    return context


async def try_post_page(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    form = await request.form()
    post = {k: str(form.get(k) or "").strip() for k in ("text", "language", "reach", "engagement", "source",
                                                          "brand", "at", "author")}
    t = app.translator(request)

    def work() -> Any:
        config = _escalation(app)
        reach = whole_number(post["reach"], t._("followers"), t, default=0, low=0, high=2_000_000_000)
        engagement = whole_number(post["engagement"], t._("interactions"), t, default=0, low=0, high=2_000_000_000)
        at = _local(app, post["at"], config.zone, t)
        mention = Mention(source=post["source"][:32] or "x", source_id="console-try",
                          brand=post["brand"][:128] or "Lumora", text=post["text"][:5000],
                          created_at=app.config.clock.now(), author_handle=post["author"][:MAX_AUTHOR] or "someone",
                          author_reach=reach, engagement=engagement, language=post["language"][:8] or None)
        with transaction(app.config.engine) as conn:
            active = silence_repo.active(conn, at)
        return try_post(mention, load_rules(app.config.rules_dir), app.config.model.get(), config, at,
                        detector=app.detector, silences=active)
    try:
        verdict = await run_in_threadpool(work)
    except ValueError as exc:
        return app.render(request, visitor, "try.html", status=400, **_try_context(app, post=post, error=str(exc)))
    except ConfigInvalid as exc:
        return app.render(request, visitor, "try.html", status=400,
                          **_try_context(app, post=post,
                                         error=t._("the saved configuration is invalid: {problem}",
                                                   problem=plain_error(exc.errors[0], t))))
    return app.render(request, visitor, "try.html", **_try_context(app, post=post, verdict=verdict))


async def try_rules_page(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    form = await request.form()
    upload = form.get("file")
    t = app.translator(request)
    name = str(form.get("name") or "").strip()
    content = b""
    if isinstance(upload, UploadFile) and upload.filename:
        content = await upload.read(MAX_UPLOAD + 1)
        name = name or upload.filename
    elif form.get("text"):
        content = str(form.get("text")).encode("utf-8")
    try:
        days = whole_number(str(form.get("days") or ""), t._("days"), t, default=30, low=1, high=400)
    except ValueError as exc:
        return app.render(request, visitor, "try.html", status=400, **_try_context(app, error=str(exc)))
    if len(content) > MAX_UPLOAD:
        return app.render(request, visitor, "try.html", status=400,
                          **_try_context(app, error=t._("that file is larger than 256 KB; a rule file is a few KB")))

    def work() -> dict[str, Any]:
        check = check_rule_file(app.config.rules_dir, name, content)
        comparison = None
        if not check.errors and check.new is not None and check.old is not None:
            since = app.config.clock.now() - dt.timedelta(days=days)
            with transaction(app.config.engine) as conn:
                comparison = compare(conn, check.old, check.new, _escalation(app), app.config.model.get(), since)
        return {"check": check, "comparison": comparison, "days": days}
    result = await run_in_threadpool(work)
    return app.render(request, visitor, "try.html", status=400 if result["check"].errors else 200,
                      **_try_context(app, **result))


async def plan_page(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    q = request.query_params
    chosen = {"severity": q.get("severity", "critical"), "brand": q.get("brand", "")[:128],
              "rule": q.get("rule", "")[:128], "at": q.get("at", "")[:40]}
    t = app.translator(request)

    def work() -> dict[str, Any]:
        if chosen["severity"] not in {s.value for s in Severity}:
            raise ValueError(t._("severity: choose critical, warning or info"))
        config = _escalation(app)
        at = _local(app, chosen["at"], config.zone, t)
        policy, steps = plan(config, Severity(chosen["severity"]), chosen["brand"], chosen["rule"], at)
        hours = hours_of(config)
        marked = [(s, hours.is_open(s.at), hours.local(s.at).date() in set(config.business_hours.holidays))
                  for s in steps]
        return {"config": config, "policy": policy, "steps": marked, "start": hours.local(at),
                "guideline": config.guideline_for(Severity(chosen["severity"]), chosen["brand"], chosen["rule"])}
    try:
        result = await run_in_threadpool(work)
    except (ValueError, ConfigInvalid) as exc:
        message = plain_error(exc.errors[0], t) if isinstance(exc, ConfigInvalid) else str(exc)
        return app.render(request, visitor, "plan.html", status=400, chosen=chosen, error=message, config=None,
                          choices=await run_in_threadpool(_choices, app), zone=_zone(app))
    return app.render(request, visitor, "plan.html", chosen=chosen, error=None,
                      choices=await run_in_threadpool(_choices, app), zone=result["config"].zone, **result)


ROUTES: list[tuple[str, Handler, list[str]]] = [
    ("/", now_page, ["GET"]),
    ("/incidents", history_page, ["GET"]),
    ("/incidents/{incident_id:int}", incident_page, ["GET"]),
    ("/incidents/{incident_id:int}/note", note_add, ["POST"]),
    ("/incidents/{incident_id:int}/{action}", incident_action, ["POST"]),
    ("/silences", silences_page, ["GET"]),
    ("/silences", silence_add, ["POST"]),
    ("/silences/{silence_id:int}/expire", silence_expire, ["POST"]),
    ("/rules", rules_page, ["GET"]),
    ("/try", try_page, ["GET"]),
    ("/try/post", try_post_page, ["POST"]),
    ("/try/rules", try_rules_page, ["POST"]),
    ("/plan", plan_page, ["GET"]),
    ("/audit", audit_page, ["GET"]),
]
