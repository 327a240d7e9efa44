"""Two indexes for the weekly digest: one that covers its per-week mention counts, one for the week's reviews.

``ix_mentions_brand_week`` holds every mention column the digest's week
queries read (brand, time, source, author handle and reach), so counting a
week and grouping its authors walk the index instead of fetching each row
(text, URL, hash: most of a row) from the table. ``ix_mentions_reviews`` is
partial: only reviews of the business are in it, so the week's reviews are
found without reading every mention of the week. On a million stored
mentions the digest took 2.3 s of CPU without them, 1.6 s with them
(README, "Benchmarks").

Revision ID: 0016_digest_indexes
Revises: 0015_reviews
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_digest_indexes"
down_revision = "0015_reviews"
branch_labels = None
depends_on = None

REVIEWS_ONLY = sa.text("review_rating IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_mentions_brand_week", "mentions",
                    ["brand", "created_at", "source", "author_handle", "author_reach"])
    op.create_index("ix_mentions_reviews", "mentions", ["brand", "created_at"], sqlite_where=REVIEWS_ONLY,
                    postgresql_where=REVIEWS_ONLY)


def downgrade() -> None:
    op.drop_index("ix_mentions_reviews", table_name="mentions")
    op.drop_index("ix_mentions_brand_week", table_name="mentions")
