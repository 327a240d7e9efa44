"""Is Slack ready to carry alerts? The checks ``monitor run`` does at start and ``monitor check --slack`` runs.

Tokens of the wrong kind (a user token ``xoxp-`` where the bot token ``xoxb-`` belongs,
or the bot and app tokens swapped), a token Slack refuses (``auth.test``), and each
channel ``escalation.yaml`` names: does it exist, is it archived, is the app a member.
Each problem is one line that says what to do; the worker reports them on
``/healthz`` and keeps retrying, ``monitor check --slack`` exits 1 with them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from slack_sdk import WebClient

from monitor.escalation.schema import EscalationConfig
from monitor.notify.base import DeliveryError
from monitor.notify.slack.client import ADVICE, CLIENT_ERRORS, RetryPolicy, delivery_error, error_code
from monitor.notify.slack.directory import CHANNEL_ID
from monitor.settings import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SlackCheck:
    """What the check found: ``ok`` lines, ``warnings`` (nothing lost) and ``problems`` (alerts blocked)."""

    ok: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)  # configuration errors that keep only the buttons offline
    unreachable: str | None = None  # the problem, when it is "Slack did not answer" (clears once it does)


def token_kind_problems(bot_token: str | None, app_token: str | None) -> list[str]:
    """Tokens pasted into the wrong variable, caught before any call (the values are never printed)."""
    problems: list[str] = []
    bot = (bot_token or "").strip()
    app = (app_token or "").strip()
    if bot.startswith("xapp-") and app.startswith("xoxb-"):
        return ["SLACK_BOT_TOKEN and SLACK_APP_TOKEN are swapped: the bot token starts with xoxb-, the app-level "
                "token with xapp-"]
    if bot.startswith("xapp-"):
        problems.append("SLACK_BOT_TOKEN holds an app-level token (xapp-): set it to the Bot User OAuth Token "
                        "(xoxb-) from the app's 'OAuth & Permissions' page")
    elif bot.startswith("xoxp-"):
        problems.append("SLACK_BOT_TOKEN holds a user token (xoxp-), which posts as a person: use the Bot User "
                        "OAuth Token (xoxb-) from the app's 'OAuth & Permissions' page")
    elif bot and not bot.startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN does not look like a bot token (it should start with xoxb-)")
    if app and not app.startswith("xapp-"):
        problems.append(APP_TOKEN_KIND)
    return problems


APP_TOKEN_KIND = ("SLACK_APP_TOKEN must be an app-level token (xapp-, 'Basic Information' > 'App-Level Tokens', "
                  "scope connections:write); the buttons stay offline until it is")


def channels_named(config: EscalationConfig, default_channel: str | None) -> list[str]:
    names = [level.channel for p in config.policies for level in p.levels if level.channel]
    if default_channel:
        names.append(default_channel)
    return list(dict.fromkeys(n.strip() for n in names))


def check_slack(client: WebClient, config: EscalationConfig, *, default_channel: str | None = None,
                bot_token: str | None = None, app_token: str | None = None) -> SlackCheck:
    """Run every check; never raises for anything Slack answers (or does not)."""
    result = SlackCheck()
    for problem in token_kind_problems(bot_token, app_token):
        # A wrong app token keeps the buttons offline, never an alert: not a delivery problem (no 503).
        (result.buttons if problem == APP_TOKEN_KIND else result.problems).append(problem)
    try:
        who = client.auth_test()
    except CLIENT_ERRORS as exc:
        error = delivery_error(exc, "auth.test")
        if error.recoverable:
            result.unreachable = f"Slack cannot be reached ({error}); alerts wait in the outbox until it can"
            result.problems.append(result.unreachable)
        else:
            result.problems.append(f"{error}: {error.advice or 'check SLACK_BOT_TOKEN'}")
        return result
    result.ok.append(f"Slack: bot {who.get('user_id')} in workspace {who.get('team')}")
    try:
        known = _channels(client)
    except DeliveryError as exc:
        result.problems.append(f"{exc}: {exc.advice or 'the channels could not be listed'}")
        return result
    for name in channels_named(config, default_channel):
        bare = name.lstrip("#")
        found = known.get(name) if CHANNEL_ID.match(name) else known.get(bare)
        if found is None:
            result.problems.append(f"Slack channel {name} not found: {ADVICE['channel_not_found']}")
        elif found["is_archived"]:
            result.problems.append(f"Slack channel {name} is archived: {ADVICE['is_archived']}")
        elif not found["is_member"]:
            result.problems.append(f"Slack channel {name}: the app is not a member: {ADVICE['not_in_channel']}")
        else:
            result.ok.append(f"Slack channel {name}: found, the app is a member")
    for rid, person in config.responders.items():
        if person.slack or not person.email:
            continue
        try:
            client.users_lookupByEmail(email=person.email)
        except CLIENT_ERRORS as exc:
            if error_code(exc) == "users_not_found":
                result.warnings.append(f"responder {rid}: no Slack user has this e-mail address; they are not "
                                       "messaged in Slack (give their 'slack:' user id in escalation.yaml)")
            else:
                result.warnings.append(f"responder {rid}: {delivery_error(exc, 'users.lookupByEmail')}")
    return result


def _channels(client: WebClient) -> dict[str, dict[str, bool]]:
    """Every channel the app can see, by name and by id."""
    out: dict[str, dict[str, bool]] = {}
    cursor: str | None = None
    try:
        while True:
            page = client.conversations_list(types="public_channel,private_channel", exclude_archived=False,
                                             limit=1000, cursor=cursor)
            for c in page.get("channels") or []:
                info = {"is_archived": bool(c.get("is_archived")), "is_member": bool(c.get("is_member"))}
                out[str(c["name"])] = out[str(c["id"])] = info
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return out
    except CLIENT_ERRORS as exc:
        raise delivery_error(exc, "conversations.list") from exc


def run_from_settings(settings: Settings, config: EscalationConfig, echo: Callable[[str], None]) -> bool:
    """``monitor check --slack``: the worker's checks with the worker's client; True when all passed."""
    from monitor.notify.factory import slack_client

    bot = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    app = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
    client = slack_client(settings, retry=RetryPolicy(rate_limit_retries=1, server_error_retries=1,
                                                      connection_retries=1))
    if client is None:
        echo("error: slack: SLACK_BOT_TOKEN is not set (alerts would go to the console)")
        return False
    result = check_slack(client, config, default_channel=settings.slack_channel, bot_token=bot, app_token=app)
    for line in result.ok:
        echo(f"ok: {line}")
    for line in result.warnings:
        echo(f"warning: {line}")
    for line in (*result.problems, *result.buttons):
        echo(f"error: slack: {line}")
    if not app:
        echo("warning: SLACK_APP_TOKEN is not set: alerts arrive, but their buttons will not work")
    return not result.problems and not result.buttons
