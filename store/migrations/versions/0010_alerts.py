"""Instant alerts: which changes and flags were announced, and the failures.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from store.schema import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("item_id", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("error", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("alerts")
