"""The archive spine: sources, blobs, versions, captures.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("url", sa.Text, nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("label", sa.Text, unique=True),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("found_by", sa.Integer, sa.ForeignKey("sources.id", ondelete="SET NULL")),
        sa.Column("interval_seconds", sa.Integer),
        sa.Column("cron", sa.Text),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("last_raw_digest", sa.String(64)),
        sa.Column("next_check_at", UTCDateTime),
        sa.Column("last_checked_at", UTCDateTime),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("retired_at", UTCDateTime),
        sa.Column("lease_owner", sa.Text),
        sa.Column("lease_until", UTCDateTime),
    )
    op.create_index("ix_sources_next_check_at", "sources", ["next_check_at"])
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("stored_size", sa.Integer, nullable=False),
        sa.Column("codec", sa.String(16), nullable=False),
        sa.Column("base_digest", sa.String(64), sa.ForeignKey("blobs.digest")),
        sa.Column("depth", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "source_id",
            sa.Integer,
            sa.ForeignKey("sources.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("captured_at", UTCDateTime, nullable=False),
        sa.Column("text_digest", sa.String(64), sa.ForeignKey("blobs.digest"), nullable=False),
        sa.Column("raw_digest", sa.String(64), sa.ForeignKey("blobs.digest")),
        sa.Column("text_length", sa.Integer, nullable=False),
        sa.Column("raw_length", sa.Integer),
        sa.Column("title", sa.Text),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("published", sa.Text),
        sa.Column("updated", sa.Text),
        sa.Column("site_name", sa.Text),
        sa.Column("language", sa.Text),
        sa.Column("final_url", sa.Text),
        sa.Column("content_type", sa.Text),
        sa.UniqueConstraint("source_id", "number", name="uq_versions_source_number"),
    )
    op.create_table(
        "captures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "source_id",
            sa.Integer,
            sa.ForeignKey("sources.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("final_url", sa.Text),
        sa.Column("content_type", sa.Text),
        sa.Column("bytes", sa.Integer),
        sa.Column("raw_digest", sa.String(64)),
        sa.Column("encoding", sa.Text),
        sa.Column("headers", sa.JSON),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error_class", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id", ondelete="SET NULL")),
    )
    op.create_index("ix_captures_source_started", "captures", ["source_id", "started_at"])


def downgrade() -> None:
    op.drop_table("captures")
    op.drop_table("versions")
    op.drop_table("blobs")
    op.drop_table("sources")
