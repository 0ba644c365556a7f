"""Version, change, flag and feed-entry ids are 64-bit on PostgreSQL, with every
column that holds one: after capture ids (0014), these grow fastest. A million
sources with a tenth of them edited every hour write 100,000 versions, changes and
flags an hour, and would pass int4's 2,147,483,647 in about two and a half years;
every check that found an edit would fail from then on.

Each table's columns change type in one ALTER TABLE, which rewrites the table once
under an exclusive lock: stop the service, run ``claimwatch init --no-seeds``, then
start it again (26 s on two cores for a million rows in each table it rewrites;
docs/benchmarks.md). SQLite needs nothing: its integers are 64-bit already.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Each table's ids and the columns that refer to one: one ALTER TABLE a table, so
# PostgreSQL rewrites each table once, not once per column.
COLUMNS = {
    "versions": ("id",),
    "changes": ("id", "from_version_id", "to_version_id"),
    "flags": ("id", "version_id", "change_id"),
    "feed_entries": ("id",),
    "sources": ("current_version_id",),
    "captures": ("version_id",),
    "claim_examples": ("flag_id",),
    "alerts": ("item_id",),
}
SERIAL = ("versions", "changes", "flags", "feed_entries")  # tables whose id has a sequence


def _sequence(table: str) -> str | None:
    query = sa.text("SELECT pg_get_serial_sequence(:t, 'id')")
    return op.get_bind().execute(query, {"t": table}).scalar()


def _retype(sql_type: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        clauses = ", ".join(f"ALTER COLUMN {c} TYPE {sql_type}" for c in columns)
        op.execute(f"ALTER TABLE {table} {clauses}")
    for table in SERIAL:
        sequence = _sequence(table)
        if sequence:
            op.execute(f"ALTER SEQUENCE {sequence} AS {sql_type}")


def upgrade() -> None:
    _retype("bigint")


def downgrade() -> None:
    _retype("integer")
