"""Claims and the flags that tie new text to them.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from store.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("en", sa.Text, nullable=False),
        sa.Column("ar", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("active", sa.Integer, nullable=False),
        sa.Column("loaded_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "flags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("claim_id", sa.String(100), sa.ForeignKey("claims.id"), nullable=False),
        sa.Column(
            "source_id", sa.Integer, sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("change_id", sa.Integer, sa.ForeignKey("changes.id", ondelete="CASCADE")),
        sa.Column("stance", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_flags_claim", "flags", ["claim_id", "created_at"])
    op.create_index("ix_flags_created", "flags", ["created_at"])


def downgrade() -> None:
    op.drop_table("flags")
    op.drop_table("claims")
