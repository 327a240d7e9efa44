"""Feedback: labels on posts, calibrations fitted on them, and the calibration each score used.

Revision ID: 0010_feedback
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.tables import UTCDateTime

revision = "0010_feedback"
down_revision = "0009_claims"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("sentiments") as batch:
        batch.add_column(sa.Column("calibration", sa.Integer()))
    op.create_table(
        "labels",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("mention_id", Id, sa.ForeignKey("mentions.id", ondelete="CASCADE",
                                                  name="fk_labels_mention_id_mentions"), nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("implied", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_labels"),
        sa.UniqueConstraint("mention_id", "by", name="uq_labels_mention_id_by"),
    )
    op.create_index("ix_labels_at", "labels", ["at"])
    op.create_table(
        "calibrations",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("offsets", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("activated_at", UTCDateTime()),
        sa.Column("activated_by", sa.String(128)),
        sa.PrimaryKeyConstraint("version", name="pk_calibrations"),
    )
    op.create_table(
        "calibration_changes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_version", sa.Integer()),
        sa.Column("to_version", sa.Integer()),
        sa.PrimaryKeyConstraint("id", name="pk_calibration_changes"),
    )
    op.create_index("ix_calibration_changes_at", "calibration_changes", ["at"])


def downgrade() -> None:
    op.drop_table("calibration_changes")
    op.drop_table("calibrations")
    op.drop_table("labels")
    with op.batch_alter_table("sentiments") as batch:
        batch.drop_column("calibration")
