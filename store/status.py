"""The numbers ``status`` shows: counts, the failing, the next due, the warned."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, text

from store.models import StoreStatus, source_from_row
from store.schema import blobs, captures, sources, versions


def status(conn: Connection, now: datetime, limit: int, exact_up_to: int) -> StoreStatus:
    """Counts for ``status``. On PostgreSQL a table the planner estimates at over
    ``exact_up_to`` rows is counted from that estimate (``approximate``): an exact
    count of millions of captures is a scan of the whole table."""
    approximate = False

    def count(table: Any) -> int:
        nonlocal approximate
        guess = _estimate(conn, table.name)
        if guess is not None and guess > exact_up_to:
            approximate = True
            return guess
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def first(*where: Any, order: Any) -> list[Any]:
        query = select(sources).where(*where).order_by(order).limit(limit)
        return [source_from_row(r) for r in conn.execute(query).mappings().all()]

    failed = conn.execute(  # the partial index ix_captures_failed answers this
        select(func.count()).select_from(captures).where(captures.c.outcome == "failed")
    ).scalar_one()
    if (_estimate(conn, "blobs") or 0) > exact_up_to:
        approximate = True
        blob_bytes = conn.execute(text("SELECT pg_table_size('blobs')")).scalar_one()
    else:
        blob_bytes = conn.execute(
            select(func.coalesce(func.sum(blobs.c.stored_size), 0))
        ).scalar_one()
    return StoreStatus(
        sources=count(sources),
        versions=count(versions),
        captures=count(captures),
        failed_captures=failed,
        blob_bytes=int(blob_bytes),
        failing=first(
            sources.c.consecutive_failures > 0, order=sources.c.consecutive_failures.desc()
        ),
        next_due=first(
            sources.c.next_check_at.is_not(None),
            sources.c.retired_at.is_(None),
            order=sources.c.next_check_at,
        ),
        warned=first(sources.c.warning.is_not(None), order=sources.c.id),
        approximate=approximate,
    )


def _estimate(conn: Connection, table: str) -> int | None:
    """PostgreSQL's estimate of a table's rows (None on SQLite, or never analysed)."""
    if conn.dialect.name != "postgresql":
        return None
    found = conn.execute(
        text("SELECT reltuples::bigint FROM pg_class WHERE relname = :t"), {"t": table}
    ).scalar()
    return int(found) if found is not None and found >= 0 else None
