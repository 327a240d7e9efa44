"""Reviews of the business: a mention's stars, the business's reply, the reviewer's edit time, where to answer.

Revision ID: 0015_reviews
Revises: 0014_health_blind
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.tables import UTCDateTime

revision = "0015_reviews"
down_revision = "0014_health_blind"
branch_labels = None
depends_on = None

COLUMNS = ("review_rating", "review_reply", "review_reply_at", "review_edited_at", "review_answer_url")


def upgrade() -> None:
    with op.batch_alter_table("mentions") as batch:
        batch.add_column(sa.Column("review_rating", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("review_reply", sa.Text(), nullable=True))
        batch.add_column(sa.Column("review_reply_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("review_edited_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("review_answer_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mentions") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
