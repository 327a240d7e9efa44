"""A choice in a post's menu on an alert: stored as the clicking responder's label on that post.

Only people named in ``escalation.yaml`` (found through their Slack id) may label,
so every label names a responder id, never a free-text name; a second choice by
the same person replaces the first (``store.feedback.record_label``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor.classify.calibration import LABEL_WORDS, LABELS
from monitor.i18n import Translator, translator
from monitor.notify.slack.directory import SlackDirectory
from monitor.store import feedback as feedback_repo
from monitor.store import transaction

log = logging.getLogger(__name__)


def post_feedback(action: Mapping[str, Any], user: str, *, engine: Engine, directory: SlackDirectory,
                  now: dt.datetime, t: Translator | None = None) -> str:
    """Store the label; return what the clicker is told (privately), in ``t``'s language (the clicker's)."""
    t = t or translator()
    value = str(((action.get("selected_option") or {}).get("value")) or "")
    mid_text, _, label = value.partition(":")
    if not mid_text.isdigit() or label not in LABELS:
        return t._("This menu does not name a post and a label. Nothing was stored.")
    responder = directory.responder_for(user)
    if responder is None:
        return t._("Only responders named in the escalation procedure can label posts. Nothing was stored.")
    mention_id = int(mid_text)
    try:
        with transaction(engine) as conn:
            result = feedback_repo.record_label(conn, mention_id, label, responder, now, "slack")
    except SQLAlchemyError:
        log.exception("label on post %s by %s could not be saved", mention_id, responder)
        return t._("Sorry, that could not be saved just now. Please try again.")
    log.info("label %s on post %s by %s: %s", label, mention_id, responder, result.value)
    words = t._(LABEL_WORDS[label])
    if result is feedback_repo.Recorded.NO_POST:
        return t._("Post #{id} is no longer stored (erased or past retention). Nothing was stored.", id=mention_id)
    if result is feedback_repo.Recorded.SAME:
        return t._("You had already said post #{id} is {label}.", id=mention_id, label=words)
    tune = t._("`monitor tune` learns from these; choose again to correct it.")
    if result is feedback_repo.Recorded.CHANGED:
        return t._("Thanks: post #{id} noted as {label} (your earlier label on it is replaced). {tune}",
                   id=mention_id, label=words, tune=tune)
    return t._("Thanks: post #{id} noted as {label}. {tune}", id=mention_id, label=words, tune=tune)
