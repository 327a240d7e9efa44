"""Fencing of sending claims: ``outbox.claim_token``, raised by every claim.

Revision ID: 0013_claim_token
Revises: 0012_source_arrivals

A worker frozen longer than its claim (a GC or VM pause, SIGSTOP) must not record,
nor post again, what another worker took over meanwhile: every statement that
records the outcome of a send checks the token it got when it claimed. Existing
rows start at 0; no row is claimed while a migration runs.

``workers.lease_seconds``: each worker's own lease length, so that ``monitor
workers`` judges who is alive by what the worker itself runs with (NULL for a
worker of an older version: judged by the caller's setting).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_claim_token"
down_revision = "0012_source_arrivals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claim_token", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("lease_seconds", sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("lease_seconds")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claim_token")
