"""The matcher's cache: the probes fitted from the story's examples, kept between runs.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from store.schema import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "matcher_cache",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("matcher_cache")
