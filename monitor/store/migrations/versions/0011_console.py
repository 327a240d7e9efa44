"""Console: sign-in throttling shared by every worker, the audit trail, incident notes.

Revision ID: 0011_console
Revises: 0010_feedback
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.tables import UTCDateTime

revision = "0011_console"
down_revision = "0010_feedback"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.Column("next_allowed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_login_attempts"),
    )
    op.create_index("ix_login_attempts_last_at", "login_attempts", ["last_at"])
    op.create_table(
        "audit",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("incident_id", Id, sa.ForeignKey("incidents.id", ondelete="CASCADE",
                                                   name="fk_audit_incident_id_incidents")),
        sa.Column("detail", sa.String(500)),
        sa.Column("address", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_incident_id", "audit", ["incident_id"])
    op.create_table(
        "incident_notes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("incident_id", Id, sa.ForeignKey("incidents.id", ondelete="CASCADE",
                                                   name="fk_incident_notes_incident_id_incidents"),
                  nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incident_notes"),
    )
    op.create_index("ix_incident_notes_incident_id", "incident_notes", ["incident_id"])


def downgrade() -> None:
    op.drop_table("incident_notes")
    op.drop_table("audit")
    op.drop_table("login_attempts")
