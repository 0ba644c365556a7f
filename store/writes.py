"""The writes of a check, inside one transaction that the caller opens.

``Store.batch()`` yields a ``Batch``; every method here writes through its
connection, so a check's rows (blobs, version, change, flags, capture, the
source's schedule) commit together, and the pipeline can commit many checks
with one commit, one fsync on SQLite, instead of one each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from store import versions as versions_
from store.blobstore import put_blob, read_blob
from store.errors import Superseded
from store.models import (
    CaptureRecord,
    ChangeRecord,
    FlagRecord,
    NewVersion,
    SourceUpdate,
    Version,
    version_from_row,
)
from store.schema import captures, changes, flags, sources, versions

if TYPE_CHECKING:
    from store.repo import Store

# The statements every new version runs, built once (see ``_source_update``).
_LAST_NUMBER = select(func.max(versions.c.number)).where(
    versions.c.source_id == bindparam("source_id")
)
_CURRENT_FOR_UPDATE = (
    select(sources.c.current_version_id).where(sources.c.id == bindparam("id")).with_for_update()
)


class Batch:
    def __init__(self, store: Store, conn: Connection):
        self.store, self.conn = store, conn
        # Unchanged checks are most checks: their rows go in with one executemany each.
        self._captures: list[dict[str, Any]] = []
        self._updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}

    def record_capture(self, capture: CaptureRecord, update_: SourceUpdate) -> None:
        """A check that made no version: its capture row and the source's new state
        (written when the batch finishes, before it commits)."""
        self._captures.append({**capture.__dict__, "version_id": None})
        values = _source_values(update_)
        key = tuple(sorted(values))
        self._updates.setdefault(key, []).append(_bound(capture.source_id, values))

    def finish(self) -> None:
        """Write what ``record_capture`` buffered (``Store.batch`` calls this)."""
        if self._captures:
            self.conn.execute(insert(captures), self._captures)
        for keys, rows in self._updates.items():
            self.conn.execute(_source_update(keys), rows)
        self._captures, self._updates = [], {}

    def add_version(
        self,
        new: NewVersion,
        capture: CaptureRecord,
        update_: SourceUpdate,
        previous: tuple[Version, str] | None = None,
        change: ChangeRecord | None = None,
        new_flags: Sequence[FlagRecord] = (),
        *,
        compare: bool = False,
    ) -> Version:
        """Store a new version in one transaction: blobs, version, change, capture, schedule.

        ``previous`` is the version the page showed before and its text: it is the
        delta base (no re-read) and the ``from`` side of ``change``. Without it, the
        latest version is the delta base. With ``compare``, the write happens only if
        the source's current version is still ``previous`` (or still none): otherwise
        ``Superseded`` is raised and nothing is written.
        """
        conn = self.conn
        source_id = capture.source_id
        if compare:
            _compare_current(conn, source_id, previous[0].id if previous else None)
        # A source without a current version has no versions (every version written
        # becomes current, and ``gc`` keeps the current one), so after the compare-and-set
        # found none, a first version needs no look-ups; were that ever untrue, the
        # unique (source, number) index would refuse the write rather than lose a version.
        if compare and previous is None:
            last_number = 0
        elif previous is None:  # the latest version is the delta base
            base = versions_.latest(conn, source_id)
            last_number = base.number if base is not None else 0
            if base is not None:
                text = read_blob(conn, self.store.options, base.text_digest).decode("utf-8")
                previous = (base, text)
        else:
            last_number = conn.execute(_LAST_NUMBER, {"source_id": source_id}).scalar() or 0
        base_text = base_raw = None
        if previous is not None:
            prev = previous[0]
            base_text = (prev.text_digest, previous[1].encode("utf-8"))
            if prev.raw_digest is not None and new.raw is not None:
                base_raw = (prev.raw_digest, read_blob(conn, self.store.options, prev.raw_digest))
        text_digest = put_blob(conn, self.store.options, new.text.encode("utf-8"), base_text)
        raw_digest = (
            put_blob(conn, self.store.options, new.raw, base_raw) if new.raw is not None else None
        )
        row = {
            "source_id": source_id,
            "number": last_number + 1,
            "captured_at": capture.started_at,
            "text_digest": text_digest,
            "raw_digest": raw_digest,
            "text_length": len(new.text),
            "raw_length": len(new.raw) if new.raw is not None else None,
            "title": new.title,
            "authors": list(new.authors),
            "published": new.published,
            "updated": new.updated,
            "site_name": new.site_name,
            "language": new.language,
            "final_url": new.final_url,
            "content_type": new.content_type,
        }
        result = conn.execute(insert(versions), row)
        version_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        change_id = None
        if change is not None and previous is not None:
            change_id = _insert_change(conn, source_id, previous[0].id, version_id, capture, change)
        _insert_flags(conn, new_flags, source_id, version_id, change_id, capture.started_at)
        _insert_capture(conn, capture, version_id)
        _update_source(conn, source_id, update_, version_id)
        # The row as written, as the store would read it back (dates in UTC), without
        # reading it back.
        return version_from_row(
            {**row, "id": version_id, "captured_at": capture.started_at.astimezone(UTC)}
        )

    def record_revert(
        self,
        capture: CaptureRecord,
        update_: SourceUpdate,
        current: Version,
        earlier: Version,
        diffed: ChangeRecord | None = None,
        new_flags: Sequence[FlagRecord] = (),
    ) -> None:
        """The page went back to an earlier version's exact text: no new version, one
        ``revert`` change from ``current`` to ``earlier``, and ``earlier`` is current again.
        ``diffed`` is the diff from current to earlier: the revert keeps its units and
        significance (a figure that went back from 110 to 117 matters as much as the
        edit did), and ``new_flags``, what its sentences raised (a sentence the page took
        back, or restored), are stored with ``earlier`` and the revert, unless the source
        was flagged so before: a page that flips between two texts (an A/B test of its
        headline) raises each flag once, not at every flip. Only if ``current`` is still
        current (else ``Superseded``)."""
        _compare_current(self.conn, capture.source_id, current.id)
        note = f"text identical to version {earlier.number}"
        record = ChangeRecord(
            kind="revert",
            significance=diffed.significance if diffed else 0.0,
            summary=f"returned to version {earlier.number}",
            reasons=[note, *(diffed.reasons if diffed else [])],
            stats=diffed.stats if diffed else {},
            units=diffed.units if diffed else [],
        )
        conn = self.conn
        change_id = _insert_change(conn, capture.source_id, current.id, earlier.id, capture, record)
        fresh = _not_flagged_before(conn, capture.source_id, new_flags)
        _insert_flags(conn, fresh, capture.source_id, earlier.id, change_id, capture.started_at)
        _insert_capture(conn, capture, earlier.id)
        _update_source(conn, capture.source_id, update_, earlier.id)


def _insert_flags(
    conn: Connection,
    new_flags: Sequence[FlagRecord],
    source_id: int,
    version_id: int,
    change_id: int | None,
    created: datetime,
) -> None:
    """A check's flags, with the version and change that raised them, but none for a
    sentence the reviewer rejected for the claim."""
    rejected = rejected_among(conn, new_flags)
    for f in new_flags:
        if (f.claim_id, evidence_key(f.evidence)) in rejected:
            continue  # the reviewer said this sentence does not bear on the claim
        linked = change_id if f.from_change else None
        conn.execute(insert(flags), flag_row(f, source_id, version_id, linked, created))


def _not_flagged_before(
    conn: Connection, source_id: int, new_flags: Sequence[FlagRecord]
) -> list[FlagRecord]:
    """``new_flags`` but those the source already has: the same claim, sentence and
    direction (added, or removed)."""
    rows = _same_evidence(conn, new_flags, flags.c.source_id == source_id)
    had = {(r.claim_id, r.evidence_digest, bool(r.removed)) for r in rows}
    return [f for f in new_flags if (f.claim_id, evidence_key(f.evidence), f.removed) not in had]


def _compare_current(conn: Connection, source_id: int, expected: int | None) -> None:
    """Compare-and-set: lock the source row (PostgreSQL; SQLite's BEGIN IMMEDIATE already
    holds the write lock) and raise ``Superseded`` unless its current version is the one
    the check compared against."""
    found = conn.execute(_CURRENT_FOR_UPDATE, {"id": source_id}).scalar()
    if found != expected:
        raise Superseded(source_id, expected, found)


def _insert_capture(conn: Connection, capture: CaptureRecord, version_id: int | None) -> None:
    conn.execute(insert(captures), {**capture.__dict__, "version_id": version_id})


def _insert_change(
    conn: Connection,
    source_id: int,
    from_id: int,
    to_id: int,
    capture: CaptureRecord,
    change: ChangeRecord,
) -> int:
    result = conn.execute(
        insert(changes),
        {
            "source_id": source_id,
            "from_version_id": from_id,
            "to_version_id": to_id,
            "kind": change.kind,
            "created_at": capture.started_at,
            "significance": change.significance,
            "summary": change.summary,
            "reasons": change.reasons,
            "stats": change.stats,
            "units": change.units,
        },
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def _update_source(
    conn: Connection, source_id: int, upd: SourceUpdate, current_version_id: int | None = None
) -> None:
    values = _source_values(upd, current_version_id)
    conn.execute(_source_update(tuple(sorted(values))), _bound(source_id, values))


@lru_cache(maxsize=64)
def _source_update(keys: tuple[str, ...]) -> Any:
    """UPDATE sources SET each of ``keys`` WHERE id = :b_id, built once per set of keys
    (parameters named b_*: see ``_bound``). Values passed as parameters, not built into
    the statement, skip SQLAlchemy's per-value coercion: a third of a new version's
    CPU in this process."""
    return (
        update(sources)
        .where(sources.c.id == bindparam("b_id"))
        .values({k: bindparam(f"b_{k}") for k in keys})
    )


def _bound(source_id: int, values: dict[str, Any]) -> dict[str, Any]:
    return {"b_id": source_id, **{f"b_{k}": v for k, v in values.items()}}


def _source_values(upd: SourceUpdate, current_version_id: int | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "next_check_at": upd.next_check_at,
        "last_checked_at": upd.last_checked_at,
        "consecutive_failures": upd.consecutive_failures,
        "warning": upd.warning,
        # Finishing a check ends its lease, in the capture's own transaction.
        "lease_owner": None,
        "lease_until": None,
    }
    if current_version_id is not None:
        values["current_version_id"] = current_version_id
    if upd.retire:
        values["retired_at"] = upd.last_checked_at
    if upd.decay_from is not None:
        values["decay_from"] = upd.decay_from
    for name in ("etag", "last_modified", "last_raw_digest", "body_hint", "options"):
        if getattr(upd, name) is not None:
            values[name] = getattr(upd, name)
    return values


def rejected_among(conn: Connection, new_flags: Sequence[FlagRecord]) -> set[tuple[str, str]]:
    """(claim, evidence digest) pairs among ``new_flags`` that a reviewer rejected."""
    rows = _same_evidence(conn, new_flags, flags.c.verdict == "rejected")
    return {(r.claim_id, r.evidence_digest) for r in rows}


def _same_evidence(conn: Connection, new_flags: Sequence[FlagRecord], where: Any) -> list[Any]:
    """The stored flags (claim, evidence digest, removed) whose evidence sentence is one of
    ``new_flags``', and that meet ``where``."""
    if not new_flags:
        return []
    digests = sorted({evidence_key(f.evidence) for f in new_flags})
    columns = (flags.c.claim_id, flags.c.evidence_digest, flags.c.removed)
    return list(conn.execute(select(*columns).where(where, flags.c.evidence_digest.in_(digests))))


def flag_row(
    f: FlagRecord, source_id: int, version_id: int, change_id: int | None, created: datetime
) -> dict[str, Any]:
    """The flags row of a flag the matcher raised (new, not reviewed)."""
    return {
        "claim_id": f.claim_id,
        "source_id": source_id,
        "version_id": version_id,
        "change_id": change_id,
        "stance": f.stance,
        "score": f.score,
        "evidence": f.evidence,
        "reasons": f.reasons,
        "status": "new",
        "created_at": created,
        "evidence_digest": evidence_key(f.evidence),
        "removed": int(f.removed),
    }


def evidence_key(text: str) -> str:
    """The digest that identifies an evidence sentence (SHA-256 of its UTF-8)."""
    return hashlib.sha256(text.strip().encode("utf-8", "surrogatepass")).hexdigest()
