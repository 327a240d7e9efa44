"""Source health: whether the last failure means "we cannot see" (token, permission, login refused).

Such a failure will not heal by itself, so the source-health alert is raised at
once rather than after ``source_unhealthy_after`` (see ``sources.health``).

Revision ID: 0014_health_blind
Revises: 0013_claim_token
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_health_blind"
down_revision = "0013_claim_token"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source_health") as batch:
        batch.add_column(sa.Column("blind", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("source_health") as batch:
        batch.drop_column("blind")
