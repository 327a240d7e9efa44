"""The pages: Now, Silences, Rules, Try it, Escalation plan. Each handler reads its form, then works in a thread.

Changes go through the same code as everywhere else: incident actions through
``EscalationEngine`` with the Slack buttons' membership rule
(``policy_members``), silences through ``store.silences``; each change writes
one audit line naming who did it.
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
from monitor.console.tryit import check_rule_file, compare, try_post
from monitor.console.web import ConsoleApp, Handler, Visitor, audit
from monitor.detect import load_rules
from monitor.escalation import ActionResult, EscalationConfig, EscalationEngine
from monitor.escalation.plan import hours_of, plan
from monitor.escalation.schema import load_escalation
from monitor.models import Mention, Severity
from monitor.notify.slack.actions import policy_members
from monitor.store import silences as silence_repo
from monitor.store import transaction
from monitor.store.feedback import imply_from_false_positive
from monitor.yamlconfig import ConfigInvalid

MAX_UPLOAD = 256 * 1024
ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved", "false_positive": "marked as a false positive",
           "snooze": "snoozed for an hour"}


def whole_number(text: str, what: str, *, default: int, low: int, high: int) -> int:
    """A form's whole number within [low, high]; ValueError with a sentence a person can act on."""
    text = text.strip().replace(",", "").replace("_", "")
    if not text:
        return default
    if not text.isdigit():
        raise ValueError(f"{what}: write a whole number from {low:,} to {high:,}, not “{text[:40]}”")
    value = int(text[:12])
    if not low <= value <= high:
        raise ValueError(f"{what}: write a whole number from {low:,} to {high:,}")
    return value


def _escalation(app: ConsoleApp) -> EscalationConfig:
    return load_escalation(app.config.escalation_file)


def _local(app: ConsoleApp, text: str, zone: Any) -> dt.datetime:
    """A local 'YYYY-MM-DD HH:MM' from a form, or now; ValueError with a readable message."""
    if not text.strip():
        return app.config.clock.now()
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("T", " "))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use e.g. 2026-11-18 21:40)") from None
    return (when.replace(tzinfo=zone) if when.tzinfo is None else when).astimezone(dt.UTC)


async def now_page(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    def work() -> dict[str, Any]:
        with transaction(app.config.engine) as conn:
            view = data.now_view(conn)
        try:
            config: EscalationConfig | None = _escalation(app)
        except ConfigInvalid:
            config = None
        may_act = {i.incident.id for i in view.incidents
                   if config is not None and visitor.user.responder in policy_members(config, i.incident.policy)}
        zone = config.zone if config else dt.UTC
        return {"view": view, "may_act": may_act, "zone": zone, "config": config}
    return app.render(request, visitor, "now.html", **await run_in_threadpool(work))


async def incident_action(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    action = request.path_params["action"]
    incident_id = int(request.path_params["incident_id"])
    if action not in ACTIONS:
        return app.refuse(request, visitor, 404, "No such action.")

    def work() -> tuple[int, str]:
        config = _escalation(app)
        escalation = EscalationEngine(config)
        now = app.config.clock.now()
        who = visitor.user.responder
        with app.config.lock, transaction(app.config.engine) as conn:
            row = data.get_incident(conn, incident_id)
            if row is None:
                return 404, f"Incident #{incident_id} no longer exists."
            if who not in policy_members(config, row.policy):
                return 403, (f"Only the people on the escalation policy {row.policy} can act on incident "
                             f"#{incident_id}. Nothing was changed.")
            if action == "acknowledge":
                result = escalation.acknowledge(conn, incident_id, who, now)
            elif action == "snooze":
                result = escalation.snooze(conn, incident_id, who, now + dt.timedelta(hours=1), now)
            else:
                result = escalation.resolve(conn, incident_id, who, now, false_positive=action == "false_positive")
                if result is ActionResult.APPLIED and action == "false_positive":
                    # As from Slack: one post, that post was not negative (the responder can say otherwise).
                    imply_from_false_positive(conn, incident_id, who, now, "console")
        if result is not ActionResult.APPLIED:
            return 200, f"Nothing changed: incident #{incident_id} is {row.state.value}."
        audit.info("console: incident #%d %s by %s (responder %s)", incident_id, action, visitor.user.name, who)
        if app.config.on_applied is not None:
            app.config.on_applied()
        return 200, f"Incident #{incident_id} {ACTIONS[action]}."
    status, message = await run_in_threadpool(work)
    if status != 200:
        return app.refuse(request, visitor, status, message)
    app.flash(visitor, message)
    return app.redirect("/")


async def silences_page(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    def work() -> list[data.SilenceRow]:
        with transaction(app.config.engine) as conn:
            return data.silence_rows(conn, app.config.clock.now())
    zone = _zone(app)
    return app.render(request, visitor, "silences.html", rows=await run_in_threadpool(work), zone=zone, error=None)


def _zone(app: ConsoleApp) -> Any:
    try:
        return _escalation(app).zone
    except ConfigInvalid:
        return dt.UTC


async def silence_add(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    if not visitor.user.editor:
        audit.warning("console: silence refused for %s: not an editor", visitor.user.name)
        return app.refuse(request, visitor, 403, "Only editors may add silences. Ask the PR lead.")
    form = await request.form()
    field: Callable[[str], str | None] = lambda k: str(form.get(k) or "").strip() or None  # noqa: E731
    zone = _zone(app)

    def work() -> int:
        reason = field("reason")
        if reason is None:
            raise ValueError("say why: the reason is shown with the silence and in the digest")
        now = app.config.clock.now()
        ends = _local(app, field("until") or "", zone)
        with transaction(app.config.engine) as conn:
            return silence_repo.add(conn, brand=field("brand"), rule=field("rule"), author=field("author"),
                                    starts_at=now, ends_at=ends, reason=reason, created_by=visitor.user.name)
    try:
        sid = await run_in_threadpool(work)
    except ValueError as exc:
        def rows() -> list[data.SilenceRow]:
            with transaction(app.config.engine) as conn:
                return data.silence_rows(conn, app.config.clock.now())
        return app.render(request, visitor, "silences.html", status=400, rows=await run_in_threadpool(rows),
                          zone=zone, error=str(exc))
    audit.info("console: silence #%d added by %s (brand=%s rule=%s author=%s until=%s): %s", sid, visitor.user.name,
               field("brand"), field("rule"), "set" if field("author") else None, field("until"), field("reason"))
    app.flash(visitor, f"Silence #{sid} added.")
    return app.redirect("/silences")


async def silence_expire(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    if not visitor.user.editor:
        return app.refuse(request, visitor, 403, "Only editors may expire silences.")
    silence_id = int(request.path_params["silence_id"])

    def work() -> bool:
        with transaction(app.config.engine) as conn:
            # Expired on the record (who, when), like `monitor silence remove --by`.
            return silence_repo.remove(conn, silence_id, by=visitor.user.name, now=app.config.clock.now())
    if not await run_in_threadpool(work):
        return app.refuse(request, visitor, 404, f"No silence #{silence_id}.")
    audit.info("console: silence #%d expired by %s", silence_id, visitor.user.name)
    app.flash(visitor, f"Silence #{silence_id} expired.")
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
                                                          "brand", "at")}

    def work() -> Any:
        config = _escalation(app)
        mention = Mention(source=post["source"] or "x", source_id="console-try", brand=post["brand"] or "Lumora",
                          text=post["text"], created_at=app.config.clock.now(), author_handle="someone",
                          author_reach=int(post["reach"] or 0), engagement=int(post["engagement"] or 0),
                          language=post["language"] or None)
        at = _local(app, post["at"], config.zone)
        return try_post(mention, load_rules(app.config.rules_dir), app.config.model.get(), config, at,
                        detector=app.detector)
    try:
        verdict = await run_in_threadpool(work)
    except ValueError as exc:
        return app.render(request, visitor, "try.html", status=400, **_try_context(app, post=post, error=str(exc)))
    except ConfigInvalid as exc:
        return app.render(request, visitor, "try.html", status=400,
                          **_try_context(app, post=post, error=f"the saved configuration is invalid: {exc.errors[0]}"))
    return app.render(request, visitor, "try.html", **_try_context(app, post=post, verdict=verdict))


async def try_rules_page(app: ConsoleApp, request: Request, visitor: Visitor) -> Response:
    form = await request.form()
    upload = form.get("file")
    name = str(form.get("name") or "").strip()
    content = b""
    if isinstance(upload, UploadFile) and upload.filename:
        content = await upload.read(MAX_UPLOAD + 1)
        name = name or upload.filename
    elif form.get("text"):
        content = str(form.get("text")).encode("utf-8")
    try:
        days = whole_number(str(form.get("days") or ""), "days", default=30, low=1, high=400)
    except ValueError as exc:
        return app.render(request, visitor, "try.html", status=400, **_try_context(app, error=str(exc)))
    if len(content) > MAX_UPLOAD:
        return app.render(request, visitor, "try.html", status=400,
                          **_try_context(app, error="that file is larger than 256 KB; a rule file is a few KB"))

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
    chosen = {"severity": q.get("severity", "critical"), "brand": q.get("brand", ""), "rule": q.get("rule", ""),
              "at": q.get("at", "")}

    def work() -> dict[str, Any]:
        config = _escalation(app)
        at = _local(app, chosen["at"], config.zone)
        policy, steps = plan(config, Severity(chosen["severity"]), chosen["brand"], chosen["rule"], at)
        hours = hours_of(config)
        marked = [(s, hours.is_open(s.at), hours.local(s.at).date() in set(config.business_hours.holidays))
                  for s in steps]
        return {"config": config, "policy": policy, "steps": marked, "start": hours.local(at),
                "guideline": config.guideline_for(Severity(chosen["severity"]), chosen["brand"], chosen["rule"])}
    try:
        result = await run_in_threadpool(work)
    except (ValueError, ConfigInvalid) as exc:
        message = str(exc.errors[0]) if isinstance(exc, ConfigInvalid) else str(exc)
        return app.render(request, visitor, "plan.html", status=400, chosen=chosen, error=message, config=None)
    return app.render(request, visitor, "plan.html", chosen=chosen, error=None, **result)


ROUTES: list[tuple[str, Handler, list[str]]] = [
    ("/", now_page, ["GET"]),
    ("/incidents/{incident_id:int}/{action}", incident_action, ["POST"]),
    ("/silences", silences_page, ["GET"]),
    ("/silences", silence_add, ["POST"]),
    ("/silences/{silence_id:int}/expire", silence_expire, ["POST"]),
    ("/rules", rules_page, ["GET"]),
    ("/try", try_page, ["GET"]),
    ("/try/post", try_post_page, ["POST"]),
    ("/try/rules", try_rules_page, ["POST"]),
    ("/plan", plan_page, ["GET"]),
]
