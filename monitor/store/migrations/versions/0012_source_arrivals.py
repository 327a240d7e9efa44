"""Source arrivals: per configured source, each poll that brought posts (per-source counts, absence alert).

Revision ID: 0012_source_arrivals
Revises: 0011_console
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.tables import UTCDateTime

revision = "0012_source_arrivals"
down_revision = "0011_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_arrivals",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("source", "at", name="pk_source_arrivals"),
    )


def downgrade() -> None:
    op.drop_table("source_arrivals")
