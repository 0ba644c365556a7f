"""The changes aggregate: the change log, whole or a page at a time.

A change is written with its version by ``store.writes.Batch``; this module reads.
Functions take an open connection (or, for the paged log, ``Store.reading``).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select

from store.db import among, narrow, older
from store.models import StoredChange, mask_url
from store.schema import changes, schema_time, sources, versions
from store.sources import Reading


def listing(
    conn: Connection,
    since: datetime | None,
    source_id: int | None,
    min_significance: float,
    limit: int | None,
    ids: Sequence[int] | None,
    before: tuple[datetime, int] | None = None,
) -> list[StoredChange]:
    """Stored changes with their units, newest first (with ``before``, those listed after
    that change's (time, id))."""
    query = _log(since, source_id, min_significance, units=True).limit(limit)
    query = narrow(
        query,
        (ids, changes.c.id, among),
        (before, (changes.c.created_at, changes.c.id), older),
    )
    return [_stored(r, r["units"]) for r in conn.execute(query).mappings().all()]


def iterate(
    reading: Reading,
    since: datetime | None,
    source_id: int | None,
    min_significance: float,
    limit: int | None,
    page: int,
) -> Iterator[StoredChange]:
    """The change log, newest first, a page at a time and without each change's units
    (a listing shows the summary): flat memory however long the log."""
    base = _log(since, source_id, min_significance, units=False)
    cursor: tuple[datetime, int] | None = None
    left = limit
    while left is None or left > 0:
        size = page if left is None else min(page, left)
        query = narrow(base.limit(size), (cursor, (changes.c.created_at, changes.c.id), older))
        with reading() as conn:
            rows = conn.execute(query).mappings().all()
        for r in rows:
            yield _stored(r, units=[])
        if len(rows) < size:
            return
        cursor = (rows[-1]["created_at"], rows[-1]["id"])
        left = None if left is None else left - len(rows)


def last_changed(conn: Connection, ids: Sequence[int]) -> dict[int, datetime]:
    """When each of these sources last changed (sources without a change are left out)."""
    if not ids:
        return {}
    query = (
        select(changes.c.source_id, func.max(changes.c.created_at))
        .where(changes.c.source_id.in_(list(ids)))
        .group_by(changes.c.source_id)
    )
    found = ((r[0], schema_time(r[1])) for r in conn.execute(query))
    return {sid: at for sid, at in found if at}


def _log(
    since: datetime | None, source_id: int | None, min_significance: float, *, units: bool
) -> Select[Any]:
    """Changes with their version numbers and source name, newest first (``listing``
    and the paged ``iterate`` share it; a page leaves the units out)."""
    old_v, new_v = versions.alias("old_v"), versions.alias("new_v")
    columns = [c for c in changes.c if units or c.name != "units"]
    query = (
        select(
            *columns,
            old_v.c.number.label("from_number"),
            new_v.c.number.label("to_number"),
            sources.c.label,
            sources.c.url,
        )
        .join(old_v, old_v.c.id == changes.c.from_version_id)
        .join(new_v, new_v.c.id == changes.c.to_version_id)
        .join(sources, sources.c.id == changes.c.source_id)
        .where(changes.c.significance >= min_significance)
        .order_by(changes.c.created_at.desc(), changes.c.id.desc())
    )
    return narrow(
        query,
        (since, changes.c.created_at, operator.ge),
        (source_id, changes.c.source_id, operator.eq),
    )


def _stored(r: Any, units: list[dict[str, Any]]) -> StoredChange:
    return StoredChange(
        id=r["id"],
        source_id=r["source_id"],
        source_name=r["label"] or mask_url(r["url"]),
        from_version=r["from_number"],
        to_version=r["to_number"],
        kind=r["kind"],
        created_at=r["created_at"],
        significance=r["significance"],
        summary=r["summary"],
        reasons=r["reasons"],
        stats=r["stats"],
        units=units,
        source_url=mask_url(r["url"]),
    )
