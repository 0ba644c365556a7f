"""Changes between consecutive versions, and the version a source shows now.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("current_version_id", sa.Integer))
    op.execute(
        "UPDATE sources SET current_version_id = (SELECT v.id FROM versions v "
        "WHERE v.source_id = sources.id ORDER BY v.number DESC LIMIT 1)"
    )
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "source_id", sa.Integer, sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "from_version_id",
            sa.Integer,
            sa.ForeignKey("versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "to_version_id",
            sa.Integer,
            sa.ForeignKey("versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("significance", sa.Float, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("stats", sa.JSON, nullable=False),
        sa.Column("units", sa.JSON, nullable=False),
    )
    op.create_index("ix_changes_created", "changes", ["created_at"])
    op.create_index("ix_changes_source", "changes", ["source_id", "created_at"])


def downgrade() -> None:
    op.drop_table("changes")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("current_version_id")
