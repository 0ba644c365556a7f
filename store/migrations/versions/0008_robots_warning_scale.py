"""robots.txt kept per origin with its freshness; a warning per source; the partial
indexes that keep the claim, status and failure counts off full scans at scale.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from store.schema import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _partial(name: str, table: str, column: str, where: str) -> None:
    op.create_index(
        name,
        table,
        [column],
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("warning", sa.Text))
    _partial("ix_sources_leased", "sources", "lease_until", "lease_until IS NOT NULL")
    _partial("ix_sources_warning", "sources", "id", "warning IS NOT NULL")
    _partial("ix_captures_failed", "captures", "id", "outcome = 'failed'")
    op.create_table(
        "robots",
        sa.Column("origin", sa.Text, primary_key=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("fetched_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("robots")
    op.drop_index("ix_captures_failed", "captures")
    op.drop_index("ix_sources_warning", "sources")
    op.drop_index("ix_sources_leased", "sources")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("warning")
