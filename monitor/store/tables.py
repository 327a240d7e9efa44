"""Table definitions: the single source of truth the Alembic migrations follow.

SQLAlchemy Core rather than the ORM: the stages move plain dataclasses
(``monitor.models``), so an identity map would only add a second copy of state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, identically on SQLite and PostgreSQL.

    SQLite has no time zones; forcing UTC at the boundary means a value never
    silently shifts by the server's or the container's local offset.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], datetime | None]:
        """``process_result_value`` after the dialect's own conversion, in one call per value, not three.

        A backtest reads three of these columns from a million rows (two of them NULL
        but for reviews); SQLAlchemy's generic wrapper cost a second of CPU there.
        """
        inner = self.impl_instance.result_processor(dialect, coltype)
        convert = self.process_result_value
        if dialect.name == "sqlite" and inner is not None:
            # SQLite holds the text SQLAlchemy wrote ('2026-10-19 08:00:00.000000', naive UTC): read with
            # its UTC offset added, one C call gives the aware value (``replace(tzinfo=...)`` alone cost
            # more than the parse: 1M rows, 1.2 s of CPU -> 0.2 s). Text in any other shape goes the old way.
            parse = datetime.fromisoformat

            def read(value: Any) -> datetime | None:
                if value is None:
                    return None
                try:
                    return parse(value + "+00:00")
                except (TypeError, ValueError):
                    return convert(inner(value), dialect)

            return read
        if inner is None:
            return lambda value: None if value is None else convert(value, dialect)
        return lambda value: None if value is None else convert(inner(value), dialect)


naming = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=naming)

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER keys

mentions = Table(
    "mentions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("source_id", String(128), nullable=False),
    Column("brand", String(128), nullable=False),
    Column("url", Text),
    Column("author_handle", String(256)),
    Column("author_reach", Integer, nullable=False, default=0),
    Column("engagement", Integer, nullable=False, default=0),
    Column("text", Text, nullable=False),
    Column("text_hash", String(64), nullable=False),
    Column("language", String(8)),
    Column("conversation_id", String(128)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("stored_at", UTCDateTime, nullable=False),
    # Watermark of the rules stage: set in the same transaction as the signals it produced.
    Column("detected_at", UTCDateTime),
    # A scoring claim (``mentions.claim_unscored``): which worker scores it, until when; a lapsed one is free.
    Column("claimed_by", String(128)),
    Column("claimed_until", UTCDateTime),
    # A review of the business (``models.Review``); NULL rating for a post.
    Column("review_rating", SmallInteger),
    Column("review_reply", Text),
    Column("review_reply_at", UTCDateTime),
    Column("review_edited_at", UTCDateTime),
    Column("review_answer_url", Text),
    UniqueConstraint("source", "source_id", name="uq_mentions_source_source_id"),
    Index("ix_mentions_brand_created", "brand", "created_at"),
    # The digest's week queries (``digest.queries``) read only these columns: covered, no row fetched.
    Index("ix_mentions_brand_week", "brand", "created_at", "source", "author_handle", "author_reach"),
    # Reviews are few among the posts: the week's reviews without reading the week's every mention.
    Index("ix_mentions_reviews", "brand", "created_at", sqlite_where=text("review_rating IS NOT NULL"),
          postgresql_where=text("review_rating IS NOT NULL")),
    Index("ix_mentions_created_at", "created_at"),
    Index("ix_mentions_detected_at", "detected_at"),
    Index("ix_mentions_text_hash", "text_hash"),
)

sentiments = Table(
    "sentiments",
    metadata,
    Column("mention_id", Id, ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True),
    Column("model", String(256), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("negative", Float, nullable=False),
    Column("neutral", Float, nullable=False),
    Column("positive", Float, nullable=False),
    Column("scored_at", UTCDateTime, nullable=False),
    # The calibration (``calibrations.version``) applied on top of the model; NULL: the model alone.
    Column("calibration", Integer),
)

cursors = Table(
    "cursors",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("cursor", Text),
    Column("updated_at", UTCDateTime, nullable=False),
)

signals = Table(
    "signals",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("rule", String(128), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("brand", String(128), nullable=False),
    Column("group_key", String(512), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("reason", Text, nullable=False),  # in English: search, backtest, logs, rows from before reason_data
    Column("reason_data", JSON),  # the reason as facts (``monitor.reasons``), shown in each reader's language
    Column("fired_at", UTCDateTime, nullable=False),
    Column("mention_ids", JSON, nullable=False),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="SET NULL")),
    Index("ix_signals_rule_group", "rule", "group_key", "fired_at"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(512), nullable=False),
    Column("brand", String(128), nullable=False),
    Column("rule", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("policy", String(128), nullable=False),
    Column("level", Integer, nullable=False, default=0),
    Column("cycle", Integer, nullable=False, default=0),
    Column("reason", Text, nullable=False),  # in English, as ``signals.reason``
    Column("reason_data", JSON),  # as ``signals.reason_data``; None on rows from before it
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_mention_at", UTCDateTime, nullable=False),
    Column("next_action_at", UTCDateTime),
    Column("acknowledged_by", String(128)),
    Column("acknowledged_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Index("ix_incidents_key_state", "key", "state"),
    Index("ix_incidents_next_action", "next_action_at"),
)

incident_mentions = Table(
    "incident_mentions",
    metadata,
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("mention_id", Id, ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True),
    Column("added_at", UTCDateTime, nullable=False),
)

incident_events = Table(
    "incident_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("level", Integer, nullable=False, default=0),
    Column("actor", String(128), nullable=False),
    Column("note", Text),  # in English: the log; a person's note as written
    Column("note_data", JSON),  # the engine's note as facts (``monitor.notes``), shown in the reader's language
    Column("config_version", String(64)),  # sha256 of the escalation.yaml that decided this step
    Index("ix_incident_events_incident", "incident_id", "at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    # Makes "write the notification" idempotent: a replayed transition cannot queue it twice.
    Column("dedupe_key", String(256), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("channel", String(128)),
    Column("recipients", JSON, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("external_ref", String(256)),
    Column("config_version", String(64)),  # sha256 of the escalation.yaml that decided to notify
    # pending | sent | blocked (refused for good until someone fixes Slack) | superseded (overtaken unsent)
    Column("status", String(16), nullable=False, default="pending", server_default="pending"),
    Column("next_attempt_at", UTCDateTime),  # not before this (Retry-After, the slow retry of a blocked one)
    Column("blocked_since", UTCDateTime),
    Column("delivered_via", String(16)),  # slack | console | email
    Column("email_sent_at", UTCDateTime),  # the e-mail fallback went out (at most once)
    Column("note", Text),  # why it was superseded
    # A sending claim (``outbox.claim``): one worker sends it; a lapsed claim (the worker died) is taken again.
    Column("claimed_by", String(128)),
    Column("claimed_until", UTCDateTime),
    # The fencing token: raised by every claim, so a worker whose claim lapsed (frozen longer than it lasts)
    # finds, in the statement that records its send, that the notification is no longer its to record.
    Column("claim_token", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_outbox_sent_at", "sent_at", "id"),
    Index("ix_outbox_status", "status", "id"),
)

# One row per source: what `monitor sources` shows and what the source-health alert reads.
# The daily request budget lives here too, so a restart neither resets nor forgets it.
source_health = Table(
    "source_health",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("last_success_at", UTCDateTime),
    Column("last_error_at", UTCDateTime),
    Column("last_error", String(500)),  # scrubbed of tokens before it is written
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("failing_since", UTCDateTime),  # first failure after the last success
    Column("deferred_until", UTCDateTime),  # no request before this (rate limit, budget spent)
    Column("budget_day", Date),  # UTC day budget_used counts for
    Column("budget_used", Integer, nullable=False, default=0),
    # The last failure means "we cannot see" (token, permission, login refused): alerted at once.
    Column("blind", Boolean, nullable=False, default=False, server_default=false()),
)

# Per configured source, each poll that brought posts: when, how many it delivered, how many were new.
# "Last 24 h" per source (a post is stored once, under its platform, whichever instance brought it) and
# the usual gap that the absence alert compares the current silence with. Pruned after ARRIVALS_KEPT.
source_arrivals = Table(
    "source_arrivals",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("at", UTCDateTime, primary_key=True),
    Column("fetched", Integer, nullable=False),
    Column("new", Integer, nullable=False),
)

# Silences: "mute brand / rule / author until ..." with who and why (Alertmanager-style).
silences = Table(
    "silences",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand", String(128)),
    Column("rule", String(128)),
    Column("author", String(256)),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("removed_at", UTCDateTime),  # ended early by ``monitor silence remove`` (ends_at set to this)
    Column("removed_by", String(128)),
    Index("ix_silences_ends_at", "ends_at"),
)


# Every version of escalation.yaml, monitor.yaml and the rules that took effect, with its text, so
# `monitor check` can say what an edit would change and an audit can read the procedure of a day.
config_versions = Table(
    "config_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # escalation, collect, rules
    Column("sha256", String(64), nullable=False),
    Column("took_effect_at", UTCDateTime, nullable=False),
    Column("worker", String(128), nullable=False),  # host:pid that applied it
    Column("content", Text, nullable=False),
    Index("ix_config_versions_kind", "kind", "took_effect_at"),
)

# `monitor reload` writes a row; every live worker reloads when it sees a newer one.
reload_requests = Table(
    "reload_requests",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("requested_by", String(128), nullable=False),
)

# Posts set aside because the store or the model could not take them (``store.quarantine``). Only
# ids and a short reason: no text and no handle (data minimisation); ``mention_id`` is set when the
# post was stored and its scoring failed, and goes with the mention (purge, ``monitor forget``).
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("source_id", String(128), nullable=False),
    Column("stage", String(16), nullable=False),  # "store" or "classify"
    Column("reason", String(300), nullable=False),  # exception type and message, redacted
    Column("mention_id", Id, ForeignKey("mentions.id", ondelete="CASCADE")),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_quarantine_source_at", "source", "at"),
    Index("ix_quarantine_mention_id", "mention_id"),
)


# What the team said about a post (``monitor.store.feedback``): one row per post and person, a correction
# replaces it. About the post, not its author; goes with the post (``forget``, retention).
labels = Table(
    "labels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("mention_id", Id, ForeignKey("mentions.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(32), nullable=False),  # not_negative, negative, wrong_language, not_about_us
    Column("by", String(128), nullable=False),  # the responder id of escalation.yaml
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(16), nullable=False),  # slack, console, cli
    # Inferred from a "false positive" on a one-post incident; any label the person gives replaces it.
    Column("implied", Boolean, nullable=False, default=False, server_default=false()),
    UniqueConstraint("mention_id", "by", name="uq_labels_mention_id_by"),
    Index("ix_labels_at", "at"),
)

# Per-language / per-brand offsets fitted by ``monitor tune`` on the labels: numbers only, no text.
calibrations = Table(
    "calibrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("model", String(256), nullable=False),  # the model (name and version) it was fitted on
    Column("offsets", JSON, nullable=False),  # {"language": {"nl": -1.2}, "brand": {"Lumora": 0.1}}
    Column("summary", JSON, nullable=False),  # per language: labels, precision and recall before/after
    Column("active", Boolean, nullable=False, default=False, server_default=false()),
    Column("activated_at", UTCDateTime),
    Column("activated_by", String(128)),
)

# Every --apply and --rollback, for the digest ("Dutch calibration updated on ..., by ...").
calibration_changes = Table(
    "calibration_changes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("by", String(128), nullable=False),
    Column("action", String(16), nullable=False),  # apply, rollback
    Column("from_version", Integer),  # NULL: the model without calibration
    Column("to_version", Integer),
    Index("ix_calibration_changes_at", "at"),
)


# Several workers on one store (``store.cluster``): who runs, who holds which lease, which periodic job ran.
workers = Table(
    "workers",
    metadata,
    Column("id", String(128), primary_key=True),  # host:pid:random suffix
    Column("host", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(64), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    # The worker's own lease length: `monitor workers` judges it by this, not by the caller's setting.
    Column("lease_seconds", Float),
    Index("ix_workers_heartbeat_at", "heartbeat_at"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),  # source:<name>, detect
    Column("holder", String(128), nullable=False),  # a workers.id (no foreign key: a lease outlives a pruned row)
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_leases_holder", "holder"),
)

period_claims = Table(
    "period_claims",
    metadata,
    Column("job", String(64), primary_key=True),  # weekly-digest, retention-purge
    Column("period_key", String(64), primary_key=True),  # the period the run is for: 2026-W47, 2026-11-18
    Column("worker", String(128), nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),  # NULL: running, or its worker died before it finished
)


# Sign-in throttling shared by every worker (``store.signin``): one row per account ("u:<name>") and per client
# address ("a:<ip>"); checked and counted in one transaction before the password is verified. Rows fall away a
# day after their last attempt (minimum personal data).
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_at", UTCDateTime, nullable=False),
    Column("next_allowed_at", UTCDateTime, nullable=False),
    Index("ix_login_attempts_last_at", "last_at"),
)

# Who did what, from which channel (console, slack, email, cli), refused attempts too (``store.audit``). Written
# in the same transaction as the change it records, so it does not depend on the log level.
audit = Table(
    "audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(128), nullable=False),  # who signed in (console), the Slack user, the responder id
    Column("channel", String(16), nullable=False),  # console, slack, email, cli
    Column("action", String(64), nullable=False),  # sign-in, acknowledge, silence-add, note, ...
    Column("outcome", String(16), nullable=False),  # done, refused, failed
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE")),
    Column("detail", String(500)),
    Column("address", String(64)),  # client address of console sign-ins only
    Index("ix_audit_at", "at"),
    Index("ix_audit_incident_id", "incident_id"),
)

# Notes and hand-overs on an incident, written in the console; they go with the incident.
incident_notes = Table(
    "incident_notes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("by", String(128), nullable=False),
    Column("text", Text, nullable=False),
    Index("ix_incident_notes_incident_id", "incident_id"),
)
