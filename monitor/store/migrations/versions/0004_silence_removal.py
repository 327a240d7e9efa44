"""Silences stay on the record: who ended one early, and when, instead of deleting the row.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("silences") as batch:
        batch.add_column(sa.Column("removed_at", UTCDateTime()))
        batch.add_column(sa.Column("removed_by", sa.String(128)))


def downgrade() -> None:
    with op.batch_alter_table("silences") as batch:
        batch.drop_column("removed_by")
        batch.drop_column("removed_at")
