"""Garbage collection: drop old raw bodies on request, delete blobs nothing uses, compact.

Only raw HTML is ever released, and only when the user asks (by age or by count
per source); each source's newest version keeps its raw body. The text of every
version stays: changes and flags point at versions, and no version is deleted.
A blob no version names any more (its raw body was released, or its source was
removed) is deleted; a blob that was stored as a delta on such a blob is first
rewritten as a full copy, so no chain loses its base. It all happens in one
transaction; ``dry_run`` rolls it back. VACUUM then returns the space to the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select, update

from store.blobstore import full_copy, read_blob
from store.schema import blobs, sources, versions
from store.verify import unused_blobs, used_digests

if TYPE_CHECKING:
    from store.repo import Store


@dataclass(frozen=True)
class GcOptions:
    keep_raw_days: int | None = None  # release raw bodies of versions older than this
    keep_raw_versions: int | None = None  # per source, keep raw bodies of the newest N
    dry_run: bool = False
    vacuum: bool = True


@dataclass
class GcReport:
    raw_released: int = 0  # versions whose raw body was released
    blobs_deleted: int = 0
    blobs_rewritten: int = 0  # deltas rewritten as full copies (their base was deleted)
    bytes_before: int = 0  # stored blob bytes
    bytes_after: int = 0


class _Rollback(Exception):
    pass


def collect(store: Store, options: GcOptions, now: datetime) -> GcReport:
    report = GcReport()
    try:
        with store.transaction() as conn:
            report.bytes_before = _stored(conn)
            report.raw_released = _release_raw(conn, options, now)
            report.blobs_rewritten = _rebase_survivors(store, conn)
            report.blobs_deleted = _delete_unused(conn)
            report.bytes_after = _stored(conn)
            if options.dry_run:
                raise _Rollback
    except _Rollback:
        return report
    if options.vacuum:
        _vacuum(store)
    return report


def _stored(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.sum(blobs.c.stored_size), 0))).scalar_one())


def _release_raw(conn: Connection, options: GcOptions, now: datetime) -> int:
    if options.keep_raw_days is None and options.keep_raw_versions is None:
        return 0
    newest = (
        select(versions.c.source_id, func.max(versions.c.number).label("last"))
        .group_by(versions.c.source_id)
        .subquery()
    )
    query = (
        select(versions.c.id)
        .join(newest, newest.c.source_id == versions.c.source_id)
        .where(versions.c.raw_digest.is_not(None), versions.c.number < newest.c.last)
    )
    current = select(sources.c.current_version_id).where(sources.c.current_version_id.is_not(None))
    query = query.where(versions.c.id.not_in(current))  # what the page shows now stays whole
    doomed: set[int] = set()
    if options.keep_raw_days is not None:
        cutoff = now - timedelta(days=options.keep_raw_days)
        doomed |= set(conn.execute(query.where(versions.c.captured_at < cutoff)).scalars())
    if options.keep_raw_versions is not None:
        keep = max(options.keep_raw_versions, 1)
        old = query.where(versions.c.number <= newest.c.last - keep)
        doomed |= set(conn.execute(old).scalars())
    ids = sorted(doomed)
    for i in range(0, len(ids), 500):
        conn.execute(
            update(versions).where(versions.c.id.in_(ids[i : i + 500])).values(raw_digest=None)
        )
    return len(ids)


def _rebase_survivors(store: Store, conn: Connection) -> int:
    """Rewrite as full copies the used blobs whose delta base is about to be deleted."""
    survivors = list(
        conn.execute(
            select(blobs.c.digest)
            .where(blobs.c.digest.in_(used_digests()))
            .where(blobs.c.base_digest.in_(unused_blobs()))
        ).scalars()
    )
    # One at a time: rewriting a blob whole leaves its bytes, so every other chain
    # still decodes through it; the unused bases are deleted only afterwards.
    for digest in survivors:
        data = read_blob(conn, store.options, digest)
        conn.execute(
            update(blobs).where(blobs.c.digest == digest).values(**full_copy(store.options, data))
        )
    return len(survivors)


def _delete_unused(conn: Connection) -> int:
    unused = unused_blobs()
    digests = list(conn.execute(unused).scalars())
    # Children first: an unused delta may be the base of another unused one.
    conn.execute(update(blobs).where(blobs.c.digest.in_(unused)).values(base_digest=None))
    for i in range(0, len(digests), 500):
        conn.execute(blobs.delete().where(blobs.c.digest.in_(digests[i : i + 500])))
    return len(digests)


def _vacuum(store: Store) -> None:
    if store.engine.dialect.name == "sqlite":
        raw = store.engine.raw_connection()  # outside any transaction, as VACUUM needs
        try:
            cursor = raw.cursor()
            cursor.execute("VACUUM")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()
        return
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE) blobs")
