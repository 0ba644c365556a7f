"""Tables of the archive, as SQLAlchemy Core objects.

The migrations under ``store/migrations`` create exactly these tables; a test
compares the migrated database with this metadata so the two cannot drift.
Times are stored as UTC and always read back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class SafeText(TypeDecorator[str]):
    """Text from outside (titles, feed entries, URLs, error messages) may hold a NUL,
    which PostgreSQL refuses in text: a feed with one such title failed whole. A NUL is
    stored as U+FFFD, the replacement character, on every backend, so a lookup holding
    one never matches a stored value without it."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and "\x00" in value:
            return value.replace("\x00", "\ufffd")
        return value


# The newest migration; tests/test_store.py checks it against alembic's head.
SCHEMA_HEAD = "0016"

metadata = MetaData()

# Ids that grow with every check or edit: a million sources checked hourly pass
# 2**31 captures in about 90 days (0014), and with a tenth of them edited every hour,
# 2**31 versions, changes and flags in about two and a half years (0015). BIGINT on
# PostgreSQL, for the ids and every column holding one; SQLite's INTEGER is 64-bit
# already, and its INTEGER PRIMARY KEY must stay INTEGER to be the rowid.
BIG_ID = BigInteger().with_variant(Integer(), "sqlite")

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", SafeText, nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # article | page | feed | seed
    Column("label", SafeText, unique=True),
    Column("tags", JSON, nullable=False, default=list),
    Column("origin", String(16), nullable=False, default="user"),  # seed | user | feed
    Column("found_by", Integer, ForeignKey("sources.id", ondelete="SET NULL")),
    Column("interval_seconds", Integer),
    Column("cron", SafeText),
    Column("options", JSON, nullable=False, default=dict),
    Column("etag", SafeText),
    Column("last_modified", SafeText),
    Column("last_raw_digest", String(64)),
    Column("next_check_at", UTCDateTime),
    Column("last_checked_at", UTCDateTime),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime),
    Column("lease_owner", SafeText),
    Column("lease_until", UTCDateTime),
    # The version the page shows now: the latest, or an earlier one it flipped back to.
    # (No foreign key: sources and versions would reference each other.)
    Column("current_version_id", BIG_ID),
    Column("decay_from", UTCDateTime),  # coverage: the origin of its decaying schedule
    Column("digest_id", Integer),  # coverage: the sent digest that announced it
    Column("body_hint", JSON),  # {path, digest} of the article element (archiver.text.fingerprint)
    # The last successful check's warning (mostly undecodable text, a feed recovered
    # from malformed XML, ...); None when it had none. ``status`` lists them.
    Column("warning", SafeText),
    Index("ix_sources_next_check_at", "next_check_at"),
    # and the partial indexes ix_sources_leased and ix_sources_warning (PARTIAL_INDEXES)
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", String(64), primary_key=True),  # SHA-256 of the uncompressed bytes
    Column("size", Integer, nullable=False),
    Column("stored_size", Integer, nullable=False),
    Column("codec", String(16), nullable=False),  # zstd | zstd-delta
    Column("base_digest", String(64), ForeignKey("blobs.digest")),
    Column("depth", Integer, nullable=False),  # 0 for a full copy
    Column("data", LargeBinary, nullable=False),
)

versions = Table(
    "versions",
    metadata,
    Column("id", BIG_ID, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("captured_at", UTCDateTime, nullable=False),
    Column("text_digest", String(64), ForeignKey("blobs.digest"), nullable=False),
    Column("raw_digest", String(64), ForeignKey("blobs.digest")),
    Column("text_length", Integer, nullable=False),
    Column("raw_length", Integer),
    Column("title", SafeText),
    Column("authors", JSON, nullable=False, default=list),
    Column("published", SafeText),
    Column("updated", SafeText),
    Column("site_name", SafeText),
    Column("language", SafeText),
    Column("final_url", SafeText),
    Column("content_type", SafeText),
    UniqueConstraint("source_id", "number", name="uq_versions_source_number"),
)

captures = Table(
    "captures",
    metadata,
    Column("id", BIG_ID, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    # new_version | not_modified | same_bytes | same_text | failed
    Column("outcome", String(16), nullable=False),
    Column("http_status", Integer),
    Column("final_url", SafeText),
    Column("content_type", SafeText),
    Column("bytes", Integer),
    Column("raw_digest", String(64)),
    Column("encoding", SafeText),
    Column("headers", JSON),
    Column("attempts", Integer, nullable=False, default=1),
    Column("error_class", SafeText),
    Column("error_message", SafeText),
    Column("version_id", BIG_ID, ForeignKey("versions.id", ondelete="SET NULL")),
    Index("ix_captures_source_started", "source_id", "started_at"),
    # and the partial index ix_captures_failed (PARTIAL_INDEXES)
)

changes = Table(
    "changes",
    metadata,
    Column("id", BIG_ID, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column(
        "from_version_id", BIG_ID, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("to_version_id", BIG_ID, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # edit | revert
    Column("created_at", UTCDateTime, nullable=False),
    Column("significance", Float, nullable=False),
    Column("summary", SafeText, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("stats", JSON, nullable=False),
    Column("units", JSON, nullable=False),
    Column("digest_id", Integer),  # the sent digest that covered it
    Index("ix_changes_created", "created_at"),
    Index("ix_changes_source", "source_id", "created_at"),
)

claims = Table(
    "claims",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("en", SafeText, nullable=False),
    Column("ar", SafeText, nullable=False),
    Column("data", JSON, nullable=False),  # the whole claim: entities, terms, cues
    Column("active", Integer, nullable=False, default=1),  # 0 once gone from the claims file
    Column("loaded_at", UTCDateTime, nullable=False),
    Column("position", Integer),  # its place in the claims file (None: loaded before 0012)
)

# The story the claims come from: one row, its summary as the claims file gives it.
story = Table(
    "story",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("summary", SafeText, nullable=False),
    Column("loaded_at", UTCDateTime, nullable=False),
)

flags = Table(
    "flags",
    metadata,
    Column("id", BIG_ID, primary_key=True),
    Column("claim_id", String(100), ForeignKey("claims.id"), nullable=False),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("version_id", BIG_ID, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    Column("change_id", BIG_ID, ForeignKey("changes.id", ondelete="CASCADE")),
    Column("stance", String(16), nullable=False),  # supports | contradicts | mentions
    Column("score", Float, nullable=False),
    Column("evidence", SafeText, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("status", String(16), nullable=False, default="new"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("digest_id", Integer),  # the sent digest that covered it
    Column("verdict", String(16)),  # the reviewer's: confirmed | rejected (None: not reviewed)
    Column("verdict_stance", String(16)),  # the stance the reviewer gave, when confirmed
    Column("reviewed_at", UTCDateTime),
    Column("evidence_digest", String(64)),  # of the evidence sentence: rejected stays rejected
    # 1: raised by a sentence an edit removed; the version no longer says it (0013)
    Column("removed", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_flags_claim", "claim_id", "created_at"),
    Index("ix_flags_created", "created_at"),
    Index("ix_flags_evidence", "claim_id", "evidence_digest"),
)

sentence_vectors = Table(
    "sentence_vectors",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("digest", String(64), primary_key=True),  # SHA-256 of the embedded text
    Column("vector", LargeBinary, nullable=False),  # float32, unit length
)

# What the matcher derives from the story's examples and would otherwise compute again
# in every run (the probes): one row per kind, replaced when its key (a digest of
# everything it was computed from) changes.
matcher_cache = Table(
    "matcher_cache",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("key", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

claim_examples = Table(
    "claim_examples",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("claim_id", String(100)),  # None: a near miss, bearing on no claim
    Column("stance", String(16)),
    Column("text", SafeText, nullable=False),
    Column("origin", String(16), nullable=False),  # corpus | verdict
    Column("flag_id", BIG_ID),  # the reviewed flag (origin verdict)
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_claim_examples_origin", "origin"),
)

feed_entries = Table(
    "feed_entries",
    metadata,
    Column("id", BIG_ID, primary_key=True),
    Column("feed_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("url", SafeText, nullable=False),  # canonical
    Column("title", SafeText),
    Column("published", SafeText),
    Column("summary", SafeText),
    Column("decision", String(16), nullable=False),  # added | known | off_topic | failed
    Column("reason", SafeText),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="SET NULL")),
    Column("seen_at", UTCDateTime, nullable=False),
    UniqueConstraint("feed_id", "url", name="uq_feed_entries_feed_url"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("kind", String(16), primary_key=True),  # change | flag
    Column("item_id", BIG_ID, primary_key=True),
    Column("status", String(16), nullable=False),  # sent | failed
    Column("attempts", Integer, nullable=False),
    Column("first_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("error", SafeText),
)

digests = Table(
    "digests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", SafeText, nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # sending | sent | failed
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("subject", SafeText, nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("change_ids", JSON, nullable=False),
    Column("flag_ids", JSON, nullable=False),
    Column("source_ids", JSON, nullable=False),  # new coverage announced
    Column("message", LargeBinary, nullable=False),  # the exact bytes sent (resent as is)
    Column("error", SafeText),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("host", SafeText, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("checks", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False),  # running | stopped
)

# robots.txt per origin, kept with its HTTP freshness (RFC 9309 section 2.4: at most a
# day by default) so a run does not ask every host again.
robots = Table(
    "robots",
    metadata,
    Column("origin", SafeText, primary_key=True),  # scheme://host[:port]
    Column("status", Integer, nullable=False),  # 200, or what 4xx/5xx said
    Column("body", SafeText, nullable=False),  # the rules (at most 500 KiB)
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)


def schema_time(value: Any) -> datetime | None:
    """An aggregate (MAX) of a UTC column comes back raw on SQLite; make it aware."""
    if value is None or isinstance(value, datetime):
        return UTCDateTime().process_result_value(value, None)  # type: ignore[arg-type]
    return UTCDateTime().process_result_value(datetime.fromisoformat(str(value)), None)  # type: ignore[arg-type]


# Partial indexes: few rows hold a lease or a warning or record a failure, and status
# counts them. Migration 0008 creates them. They join the metadata only on request
# (``declare_partial_indexes``, for comparing the metadata with the migrations):
# declaring a ``postgresql_where`` loads the PostgreSQL dialect, a fifth of the
# start-up of a quick command such as ``sources add``.
PARTIAL_INDEXES = (  # name, table, column, condition
    ("ix_sources_leased", "sources", "lease_until", "lease_until IS NOT NULL"),
    ("ix_sources_warning", "sources", "id", "warning IS NOT NULL"),
    ("ix_captures_failed", "captures", "id", "outcome = 'failed'"),
)


def declare_partial_indexes() -> None:
    """Add ``PARTIAL_INDEXES`` to the metadata (once)."""
    for name, table, column, condition in PARTIAL_INDEXES:
        target = metadata.tables[table]
        if not any(index.name == name for index in target.indexes):
            where = text(condition)
            Index(name, target.c[column], sqlite_where=where, postgresql_where=where)
