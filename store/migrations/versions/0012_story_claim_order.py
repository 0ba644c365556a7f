"""The story's summary, and each claim's place in the claims file.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from store.schema import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "story",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("loaded_at", UTCDateTime, nullable=False),
    )
    with op.batch_alter_table("claims") as batch:
        batch.add_column(sa.Column("position", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("claims") as batch:
        batch.drop_column("position")
    op.drop_table("story")
