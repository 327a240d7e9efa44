"""Reasons as facts: ``reason_data`` beside the English ``reason`` of signals and incidents.

Each reader sees the reason in their language (``monitor.reasons``); rows written
before this revision keep only their sentence and show it as it is.

Revision ID: 0016_reason_data
Revises: 0015_reviews
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_reason_data"
down_revision = "0015_reviews"
branch_labels = None
depends_on = None

TABLES = ("signals", "incidents")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("reason_data", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("reason_data")
