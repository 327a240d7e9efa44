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
from monitor.notify.slack.directory import SlackDirectory
from monitor.store import feedback as feedback_repo
from monitor.store import transaction

log = logging.getLogger(__name__)


def post_feedback(action: Mapping[str, Any], user: str, *, engine: Engine, directory: SlackDirectory,
                  now: dt.datetime) -> str:
    """Store the label; return what the clicker is told (privately)."""
    value = str(((action.get("selected_option") or {}).get("value")) or "")
    mid_text, _, label = value.partition(":")
    if not mid_text.isdigit() or label not in LABELS:
        return "This menu does not name a post and a label. Nothing was stored."
    responder = directory.responder_for(user)
    if responder is None:
        return "Only responders named in the escalation procedure can label posts. Nothing was stored."
    mention_id = int(mid_text)
    try:
        with transaction(engine) as conn:
            result = feedback_repo.record_label(conn, mention_id, label, responder, now, "slack")
    except SQLAlchemyError:
        log.exception("label on post %s by %s could not be saved", mention_id, responder)
        return "Sorry, that could not be saved just now. Please try again."
    log.info("label %s on post %s by %s: %s", label, mention_id, responder, result.value)
    if result is feedback_repo.Recorded.NO_POST:
        return f"Post #{mention_id} is no longer stored (erased or past retention). Nothing was stored."
    if result is feedback_repo.Recorded.SAME:
        return f"You had already said post #{mention_id} is {LABEL_WORDS[label]}."
    changed = " (your earlier label on it is replaced)" if result is feedback_repo.Recorded.CHANGED else ""
    return (f"Thanks: post #{mention_id} noted as {LABEL_WORDS[label]}{changed}. "
            "`monitor tune` learns from these; choose again to correct it.")
