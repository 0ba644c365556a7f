"""The versions aggregate: a source's versions, their captures, and their stored text.

Functions take an open connection (or, for paged iterators, ``Store.reading``);
``Store`` is the facade. Writing a version is ``store.writes.Batch``'s job: it
commits a version with its capture, change and flags in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, select

from store.db import can_be_id
from store.errors import NotFoundError
from store.models import CaptureRecord, Source, Version, version_from_row
from store.schema import captures, versions
from store.sources import Reading

CaptureEntry = tuple[int, int | None, CaptureRecord]  # capture id, version id, record


def latest(conn: Connection, source_id: int) -> Version | None:
    query = (
        select(versions)
        .where(versions.c.source_id == source_id)
        .order_by(versions.c.number.desc())
        .limit(1)
    )
    row = conn.execute(query).mappings().first()
    return version_from_row(row) if row else None


def current(conn: Connection, source: Source) -> Version | None:
    """The version the page showed at its last successful check (after a return to an
    earlier text, that earlier version), else the latest."""
    if source.current_version_id is not None:
        query = select(versions).where(versions.c.id == source.current_version_id)
        row = conn.execute(query).mappings().first()
        if row:
            return version_from_row(row)
    return latest(conn, source.id)


def by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, Version]:
    """The versions with these ids, by id, in one query (a version row never changes)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = conn.execute(select(versions).where(versions.c.id.in_(wanted))).mappings()
    return {row["id"]: version_from_row(row) for row in rows}


def with_text(conn: Connection, source_id: int, text_digest: str) -> Version | None:
    """The newest version of the source with exactly this text, if any."""
    query = (
        select(versions)
        .where(versions.c.source_id == source_id, versions.c.text_digest == text_digest)
        .order_by(versions.c.number.desc())
        .limit(1)
    )
    row = conn.execute(query).mappings().first()
    return version_from_row(row) if row else None


def every(conn: Connection, source_id: int) -> list[Version]:
    query = select(versions).where(versions.c.source_id == source_id).order_by(versions.c.number)
    return [version_from_row(r) for r in conn.execute(query).mappings().all()]


def get(conn: Connection, source: Source, number: int) -> Version:
    query = select(versions).where(versions.c.source_id == source.id, versions.c.number == number)
    row = conn.execute(query).mappings().first() if can_be_id(number) else None
    if row is None:
        raise NotFoundError(
            f"{source.name} has no version {number}; see 'claimwatch history {source.name}'"
        )
    return version_from_row(row)


def raw_digest(version: Version) -> str:
    """The digest of the version's raw body; an error for a version stored without one."""
    if version.raw_digest is None:
        raise NotFoundError(f"version {version.number} has no raw body stored")
    return version.raw_digest


def recent_captures(conn: Connection, source_id: int, limit: int | None) -> list[CaptureRecord]:
    """A source's captures, newest first."""
    query = (
        select(captures)
        .where(captures.c.source_id == source_id)
        .order_by(captures.c.started_at.desc(), captures.c.id.desc())
        .limit(limit)
    )
    return [_capture(r) for r in conn.execute(query).mappings().all()]


def capture_log(reading: Reading, source_id: int, page: int) -> Iterator[CaptureEntry]:
    """Every capture of a source, oldest first, as (id, version id, record); read in
    pages so a long history is never held whole."""
    after = 0
    while True:
        query = (
            select(captures)
            .where(captures.c.source_id == source_id, captures.c.id > after)
            .order_by(captures.c.id)
            .limit(page)
        )
        with reading() as conn:
            rows = conn.execute(query).mappings().all()
        if not rows:
            return
        for r in rows:
            yield r["id"], r["version_id"], _capture(r)
        after = rows[-1]["id"]


def _capture(row: Any) -> CaptureRecord:
    fields = CaptureRecord.__dataclass_fields__
    return CaptureRecord(**{k: v for k, v in row.items() if k in fields})
