"""Feed entries seen (so each is judged once), and coverage's decay origin.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from store.schema import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("decay_from", UTCDateTime))
    op.create_table(
        "feed_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "feed_id", sa.Integer, sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("published", sa.Text),
        sa.Column("summary", sa.Text),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id", ondelete="SET NULL")),
        sa.Column("seen_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("feed_id", "url", name="uq_feed_entries_feed_url"),
    )


def downgrade() -> None:
    op.drop_table("feed_entries")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("decay_from")
