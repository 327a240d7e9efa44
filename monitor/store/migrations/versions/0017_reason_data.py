"""Reasons and timeline notes as facts: ``reason_data`` beside the English ``reason`` of signals and
incidents, ``note_data`` beside the ``note`` of incident events.

Each reader sees them in their language (``monitor.reasons``, ``monitor.notes``); rows
written before this revision keep only their sentence and show it as it is.

Revision ID: 0017_reason_data
Revises: 0016_digest_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_reason_data"
down_revision = "0016_digest_indexes"
branch_labels = None
depends_on = None

COLUMNS = (("signals", "reason_data"), ("incidents", "reason_data"), ("incident_events", "note_data"))


def upgrade() -> None:
    for table, column in COLUMNS:
        op.add_column(table, sa.Column(column, sa.JSON(), nullable=True))


def downgrade() -> None:
    # Not a batch (copy and move) on SQLite: other tables refer to ``incidents`` with ON DELETE CASCADE,
    # so dropping the old copy would take their rows with it. SQLite (3.35+) drops a plain column in place.
    for table, column in reversed(COLUMNS):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)
