"""Digest state: which changes, flags and new coverage each sent digest covered.

A digest is recorded as ``sending`` before the message goes out (with its
exact bytes and Message-ID) and marked ``sent`` after, in one transaction that
also stamps the covered items. A failed send is marked ``failed`` and covers
nothing. A ``sending`` row found later means a crash after (or during) the
send: it is sent again as the same message, never rebuilt bigger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from store.repo import Store
from store.schema import changes, digests, flags, sources


@dataclass(frozen=True)
class DigestRecord:
    id: int
    message_id: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    subject: str
    recipients: list[str]
    change_ids: list[int]
    flag_ids: list[int]
    source_ids: list[int]
    message: bytes
    error: str | None


def _record(row: Any) -> DigestRecord:
    values = {k: row[k] for k in DigestRecord.__dataclass_fields__}
    values["message"] = bytes(values["message"])
    return DigestRecord(**values)


def uncovered_ids(store: Store) -> tuple[list[int], list[int], list[int]]:
    """Changes, flags and new coverage no sent digest has covered yet."""
    with store.reading() as conn:
        change_ids = list(
            conn.execute(select(changes.c.id).where(changes.c.digest_id.is_(None))).scalars()
        )
        flag_ids = list(
            conn.execute(select(flags.c.id).where(flags.c.digest_id.is_(None))).scalars()
        )
        source_ids = list(
            conn.execute(
                select(sources.c.id).where(
                    sources.c.origin == "feed", sources.c.digest_id.is_(None)
                )
            ).scalars()
        )
    return change_ids, flag_ids, source_ids


def begin(
    store: Store,
    *,
    message_id: str,
    subject: str,
    recipients: list[str],
    change_ids: list[int],
    flag_ids: list[int],
    source_ids: list[int],
    message: bytes,
    now: datetime,
) -> int:
    with store.transaction() as conn:
        result = conn.execute(
            insert(digests).values(
                message_id=message_id,
                status="sending",
                created_at=now,
                subject=subject,
                recipients=recipients,
                change_ids=change_ids,
                flag_ids=flag_ids,
                source_ids=source_ids,
                message=message,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def finish(store: Store, digest_id: int, now: datetime, error: str | None = None) -> None:
    """Mark a digest sent (stamping what it covered) or failed (covering nothing)."""
    with store.transaction() as conn:
        row = conn.execute(select(digests).where(digests.c.id == digest_id)).mappings().one()
        if error is not None:
            conn.execute(
                update(digests)
                .where(digests.c.id == digest_id)
                .values(status="failed", error=error[:2000])
            )
            return
        conn.execute(
            update(digests).where(digests.c.id == digest_id).values(status="sent", sent_at=now)
        )
        for table, ids in (
            (changes, row["change_ids"]),
            (flags, row["flag_ids"]),
            (sources, row["source_ids"]),
        ):
            if ids:
                conn.execute(
                    update(table)
                    .where(table.c.id.in_(ids), table.c.digest_id.is_(None))
                    .values(digest_id=digest_id)
                )


def unfinished(store: Store) -> DigestRecord | None:
    """A digest left ``sending`` by a crash, if any (the oldest)."""
    with store.reading() as conn:
        row = (
            conn.execute(
                select(digests).where(digests.c.status == "sending").order_by(digests.c.id).limit(1)
            )
            .mappings()
            .first()
        )
    return _record(row) if row else None


def history(store: Store, limit: int = 20) -> list[DigestRecord]:
    with store.reading() as conn:
        rows = (
            conn.execute(select(digests).order_by(digests.c.id.desc()).limit(limit))
            .mappings()
            .all()
        )
    return [_record(r) for r in rows]
