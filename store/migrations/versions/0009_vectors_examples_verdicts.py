"""Sentence vectors cached by text digest; the story's labelled examples; the
reviewer's verdict on each flag.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from store.schema import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sentence_vectors",
        sa.Column("model", sa.String(64), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "claim_examples",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("claim_id", sa.String(100)),
        sa.Column("stance", sa.String(16)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("flag_id", sa.Integer),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_claim_examples_origin", "claim_examples", ["origin"])
    with op.batch_alter_table("flags") as batch:
        batch.add_column(sa.Column("verdict", sa.String(16)))
        batch.add_column(sa.Column("verdict_stance", sa.String(16)))
        batch.add_column(sa.Column("reviewed_at", UTCDateTime))
        batch.add_column(sa.Column("evidence_digest", sa.String(64)))
    op.create_index("ix_flags_evidence", "flags", ["claim_id", "evidence_digest"])


def downgrade() -> None:
    op.drop_index("ix_flags_evidence", "flags")
    with op.batch_alter_table("flags") as batch:
        batch.drop_column("evidence_digest")
        batch.drop_column("reviewed_at")
        batch.drop_column("verdict_stance")
        batch.drop_column("verdict")
    op.drop_index("ix_claim_examples_origin", "claim_examples")
    op.drop_table("claim_examples")
    op.drop_table("sentence_vectors")
