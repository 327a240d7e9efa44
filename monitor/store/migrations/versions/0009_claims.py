"""Claims: several workers on one store share the scoring backlog and the outbox without doing anything twice.

Revision ID: 0009_claims
Revises: 0007

``claimed_by`` (the worker) and ``claimed_until`` (when the claim lapses) on
mentions (a batch being scored) and on outbox rows (a notification being sent).
A claim is taken with a conditional UPDATE, so two workers never hold the same
row; one whose worker died lapses and the row is taken again. Nothing to fill
in: no row is claimed when this runs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.tables import UTCDateTime

revision = "0009_claims"
down_revision = "0008_cluster"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("mentions", "outbox"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("claimed_by", sa.String(128)))
            batch.add_column(sa.Column("claimed_until", UTCDateTime()))


def downgrade() -> None:
    for table in ("outbox", "mentions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("claimed_until")
            batch.drop_column("claimed_by")
