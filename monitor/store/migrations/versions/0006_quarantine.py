"""Quarantine: posts the store or the model could not take, set aside with a reason.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("mention_id", Id, sa.ForeignKey("mentions.id", ondelete="CASCADE",
                                                  name="fk_quarantine_mention_id_mentions")),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
    )
    op.create_index("ix_quarantine_source_at", "quarantine", ["source", "at"])
    op.create_index("ix_quarantine_mention_id", "quarantine", ["mention_id"])


def downgrade() -> None:
    op.drop_table("quarantine")
