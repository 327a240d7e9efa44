"""Source health: last success and error, failure streak, rate-limit deferral, daily request budget.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_health",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("last_success_at", UTCDateTime()),
        sa.Column("last_error_at", UTCDateTime()),
        sa.Column("last_error", sa.String(500)),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", UTCDateTime()),
        sa.Column("deferred_until", UTCDateTime()),
        sa.Column("budget_day", sa.Date()),
        sa.Column("budget_used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_source_health"),
    )


def downgrade() -> None:
    op.drop_table("source_health")
