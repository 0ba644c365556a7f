"""Capture ids are 64-bit on PostgreSQL: every check writes a capture, so a large
watchlist would pass int4's 2,147,483,647 within months (a million sources checked
hourly: about 90 days), and every check after that would fail.

The column and its sequence both change: since PostgreSQL 10 a serial's sequence
has a type of its own, and an int4 sequence stops at the same limit. Changing the
column's type rewrites the captures table under an exclusive lock, so on a large
archive this migration takes a while (about 5 s per million captures on two cores;
docs/benchmarks.md): stop the service, run ``claimwatch init --no-seeds``, then start
it again. SQLite needs nothing: its INTEGER PRIMARY KEY is already 64-bit.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _sequence() -> str | None:
    row = op.get_bind().execute(sa.text("SELECT pg_get_serial_sequence('captures', 'id')"))
    return row.scalar()


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("captures", "id", type_=sa.BigInteger, existing_nullable=False)
    sequence = _sequence()
    if sequence:
        op.execute(f"ALTER SEQUENCE {sequence} AS bigint")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    sequence = _sequence()
    if sequence:
        op.execute(f"ALTER SEQUENCE {sequence} AS integer")
    op.alter_column("captures", "id", type_=sa.Integer, existing_nullable=False)
