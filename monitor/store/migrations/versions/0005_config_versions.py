"""Configuration versions: which escalation.yaml, monitor.yaml and rules were in force, and when.

Every incident event and every notification records the version of the procedure that
decided it, so an audit can answer "who was on call under which procedure when this happened".
A reload request row lets ``monitor reload`` reach every live worker through the store.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "config_versions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("took_effect_at", UTCDateTime(), nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_config_versions"),
    )
    op.create_index("ix_config_versions_kind", "config_versions", ["kind", "took_effect_at"])
    op.create_table(
        "reload_requests",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reload_requests"),
    )
    with op.batch_alter_table("incident_events") as batch:
        batch.add_column(sa.Column("config_version", sa.String(64)))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("config_version", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("config_version")
    with op.batch_alter_table("incident_events") as batch:
        batch.drop_column("config_version")
    op.drop_table("reload_requests")
    op.drop_table("config_versions")
