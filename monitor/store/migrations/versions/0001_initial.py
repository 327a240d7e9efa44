"""Initial schema: mentions, sentiments, cursors, signals, incidents, outbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mentions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("brand", sa.String(128), nullable=False),
        sa.Column("url", sa.Text()),
        sa.Column("author_handle", sa.String(256)),
        sa.Column("author_reach", sa.Integer(), nullable=False),
        sa.Column("engagement", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8)),
        sa.Column("conversation_id", sa.String(128)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("stored_at", UTCDateTime(), nullable=False),
        sa.Column("detected_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_mentions"),
        sa.UniqueConstraint("source", "source_id", name="uq_mentions_source_source_id"),
    )
    op.create_index("ix_mentions_brand_created", "mentions", ["brand", "created_at"])
    op.create_index("ix_mentions_created_at", "mentions", ["created_at"])
    op.create_index("ix_mentions_detected_at", "mentions", ["detected_at"])
    op.create_index("ix_mentions_text_hash", "mentions", ["text_hash"])

    op.create_table(
        "sentiments",
        sa.Column("mention_id", Id, nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("negative", sa.Float(), nullable=False),
        sa.Column("neutral", sa.Float(), nullable=False),
        sa.Column("positive", sa.Float(), nullable=False),
        sa.Column("scored_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("mention_id", name="pk_sentiments"),
        sa.ForeignKeyConstraint(["mention_id"], ["mentions.id"], ondelete="CASCADE",
                                name="fk_sentiments_mention_id_mentions"),
    )

    op.create_table(
        "cursors",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("cursor", sa.Text()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_cursors"),
    )

    op.create_table(
        "incidents",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("brand", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("policy", sa.String(128), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("last_mention_at", UTCDateTime(), nullable=False),
        sa.Column("next_action_at", UTCDateTime()),
        sa.Column("acknowledged_by", sa.String(128)),
        sa.Column("acknowledged_at", UTCDateTime()),
        sa.Column("closed_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_key_state", "incidents", ["key", "state"])
    op.create_index("ix_incidents_next_action", "incidents", ["next_action_at"])

    op.create_table(
        "signals",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("brand", sa.String(128), nullable=False),
        sa.Column("group_key", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=False),
        sa.Column("mention_ids", sa.JSON(), nullable=False),
        sa.Column("incident_id", Id),
        sa.PrimaryKeyConstraint("id", name="pk_signals"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="SET NULL",
                                name="fk_signals_incident_id_incidents"),
    )
    op.create_index("ix_signals_rule_group", "signals", ["rule", "group_key", "fired_at"])

    op.create_table(
        "incident_mentions",
        sa.Column("incident_id", Id, nullable=False),
        sa.Column("mention_id", Id, nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "mention_id", name="pk_incident_mentions"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE",
                                name="fk_incident_mentions_incident_id_incidents"),
        sa.ForeignKeyConstraint(["mention_id"], ["mentions.id"], ondelete="CASCADE",
                                name="fk_incident_mentions_mention_id_mentions"),
    )

    op.create_table(
        "incident_events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("incident_id", Id, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("from_state", sa.String(16)),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("note", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_incident_events"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE",
                                name="fk_incident_events_incident_id_incidents"),
    )
    op.create_index("ix_incident_events_incident", "incident_events", ["incident_id", "at"])

    op.create_table(
        "outbox",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("incident_id", Id, nullable=False),
        sa.Column("dedupe_key", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(128)),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("external_ref", sa.String(256)),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE",
                                name="fk_outbox_incident_id_incidents"),
    )
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at", "id"])


def downgrade() -> None:
    for table in ("outbox", "incident_events", "incident_mentions", "signals", "incidents", "cursors",
                  "sentiments", "mentions"):
        op.drop_table(table)
