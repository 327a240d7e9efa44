"""Outbox delivery state: blocked, superseded, deferred, e-mailed; rows once marked "failed: ..." come back.

Revision ID: 0007
Revises: 0006

Until now a notification Slack refused was recorded as sent with ``external_ref``
"failed: <error>", and so never retried. Those rows are turned back into what they
were: *blocked* (still to deliver) for incidents that are still open, *superseded*
for incidents closed since, whose old news nobody needs now.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CLOSED = ("resolved", "false_positive", "expired")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="pending"))
        batch.add_column(sa.Column("next_attempt_at", UTCDateTime()))
        batch.add_column(sa.Column("blocked_since", UTCDateTime()))
        batch.add_column(sa.Column("delivered_via", sa.String(16)))
        batch.add_column(sa.Column("email_sent_at", UTCDateTime()))
        batch.add_column(sa.Column("note", sa.Text()))
    op.create_index("ix_outbox_status", "outbox", ["status", "id"])
    outbox = sa.table("outbox", sa.column("status"), sa.column("sent_at"), sa.column("external_ref"),
                      sa.column("last_error"), sa.column("blocked_since"), sa.column("incident_id"),
                      sa.column("note"), sa.column("delivered_via"))
    incidents = sa.table("incidents", sa.column("id"), sa.column("state"))
    failed = outbox.c.external_ref.like("failed: %")
    op.execute(outbox.update().where(outbox.c.sent_at.is_not(None) & ~failed)
               .values(status="sent", delivered_via="slack"))
    still_open = outbox.c.incident_id.in_(sa.select(incidents.c.id).where(incidents.c.state.not_in(CLOSED)))
    op.execute(outbox.update().where(failed & still_open).values(
        status="blocked", blocked_since=outbox.c.sent_at, last_error=sa.func.substr(outbox.c.external_ref, 9),
        sent_at=None, external_ref=None))
    op.execute(outbox.update().where(failed).values(
        status="superseded", note="refused by Slack before this upgrade; the incident has closed since",
        last_error=sa.func.substr(outbox.c.external_ref, 9), sent_at=None, external_ref=None))


def downgrade() -> None:
    op.drop_index("ix_outbox_status", "outbox")
    with op.batch_alter_table("outbox") as batch:
        for column in ("note", "email_sent_at", "delivered_via", "blocked_since", "next_attempt_at", "status"):
            batch.drop_column(column)
