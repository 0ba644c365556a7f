"""Digests: what each digest covered, so nothing is sent twice or skipped.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from store.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("changes", "flags", "sources"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("digest_id", sa.Integer))
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_id", sa.Text, nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("change_ids", sa.JSON, nullable=False),
        sa.Column("flag_ids", sa.JSON, nullable=False),
        sa.Column("source_ids", sa.JSON, nullable=False),
        sa.Column("message", sa.LargeBinary, nullable=False),
        sa.Column("error", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("digests")
    for table in ("changes", "flags", "sources"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("digest_id")
