"""Prove the archive is whole: every blob decodes to its digest, every delta has its
base, and every version, change, flag and capture points at something that exists.

``verify`` is a generator of ``Problem`` rows and holds little in memory: versions
are read in pages, in number order, so each delta's base is the blob decoded just
before it (a small cache of decoded blobs serves it); blobs that no version uses are
read in pages afterwards. Reference checks are anti-joins run by the database.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, select, union

from store import blobs as codec
from store.models import mask_url
from store.schema import blobs, captures, changes, claims, flags, sources, versions

PAGE = 500  # rows read per query


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the archive, named by source and version where it can be."""

    kind: str  # corrupt | missing-blob | missing-base | dangling | numbering | duplicate | revert
    detail: str
    source: str | None = None  # the source's label or URL
    version: int | None = None

    def line(self) -> str:
        where = self.source or "(store)"
        if self.version is not None:
            where += f" v{self.version}"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass
class Report:
    """What a verify run read (filled in while the generator runs)."""

    sources: int = 0
    versions: int = 0
    blobs: int = 0
    problems: int = 0


class _Blobs:
    """Decode blobs through their delta chains, remembering a few decoded ones."""

    def __init__(self, conn: Connection, max_depth: int, keep: int = 16):
        self.conn, self.max_depth, self.keep = conn, max_depth, keep
        self.cache: OrderedDict[str, bytes] = OrderedDict()
        self.checked: set[str] = set()  # this run's verified digests (bounded: see forget)
        self.failed: dict[str, tuple[str, str]] = {}  # digest -> (kind, detail)

    def forget(self) -> None:
        """Called between sources: a source's blobs are rarely another's bases."""
        self.checked.clear()
        self.failed.clear()

    def read(self, digest: str) -> bytes | None:
        """The decoded blob, or None when it (or a base) is broken; see ``failed``."""
        if digest in self.cache:
            self.cache.move_to_end(digest)
            return self.cache[digest]
        if digest in self.failed:
            return None
        chain: list[Any] = []
        want: str | None = digest
        base: bytes | None = None
        while want is not None:
            if want in self.cache:
                base = self.cache[want]
                break
            row = self.conn.execute(select(blobs).where(blobs.c.digest == want)).mappings().first()
            if row is None:
                kind = "missing-blob" if want == digest else "missing-base"
                return self._fail(digest, kind, f"blob {want[:12]} is not in the store")
            chain.append(row)
            want = row["base_digest"]
            if len(chain) > self.max_depth + 2:
                return self._fail(digest, "corrupt", "delta chain is too long or circular")
        data = base
        for row in reversed(chain):
            try:
                data = codec.decompress(bytes(row["data"]), data)
            except Exception as exc:  # zstd says only that the frame is bad
                return self._fail(digest, "corrupt", f"blob {row['digest'][:12]} unreadable: {exc}")
            if codec.digest(data) != row["digest"]:
                return self._fail(
                    digest, "corrupt", f"blob {row['digest'][:12]} does not match its digest"
                )
            self._remember(row["digest"], data)
        self.checked.add(digest)
        return data

    def _remember(self, digest: str, data: bytes) -> None:
        self.checked.add(digest)
        self.cache[digest] = data
        self.cache.move_to_end(digest)
        while len(self.cache) > self.keep:
            self.cache.popitem(last=False)

    def _fail(self, digest: str, kind: str, detail: str) -> bytes | None:
        """Remember why ``digest`` cannot be read; the reader's answer is then None."""
        self.failed[digest] = (kind, detail)
        return None


def verify(
    conn: Connection,
    source_id: int | None = None,
    report: Report | None = None,
    max_depth: int = 50,
) -> Iterator[Problem]:
    """Check the archive (or one source's part of it); yield each problem found."""
    report = report if report is not None else Report()
    reader = _Blobs(conn, max_depth)
    names = _names(conn, source_id)
    for sid, name in names.items():
        report.sources += 1
        reader.forget()
        yield from _source_versions(conn, reader, sid, name, report)
        yield from _reverts(conn, sid, name, report)
    if source_id is None:
        yield from _loose_blobs(conn, reader, report)
    for problem in _dangling(conn, source_id, names):
        yield problem
        report.problems += 1


def _names(conn: Connection, source_id: int | None) -> dict[int, str]:
    query = select(sources.c.id, sources.c.label, sources.c.url).order_by(sources.c.id)
    if source_id is not None:
        query = query.where(sources.c.id == source_id)
    return {r.id: r.label or mask_url(r.url) for r in conn.execute(query)}


def _source_versions(
    conn: Connection, reader: _Blobs, source_id: int, name: str, report: Report
) -> Iterator[Problem]:
    after, expected, previous = 0, 1, None
    while True:
        rows = conn.execute(
            select(versions.c.number, versions.c.text_digest, versions.c.raw_digest)
            .where(versions.c.source_id == source_id, versions.c.number > after)
            .order_by(versions.c.number)
            .limit(PAGE)
        ).all()
        if not rows:
            return
        for number, text_digest, raw_digest in rows:
            report.versions += 1
            if number != expected:
                report.problems += 1
                yield Problem(
                    "numbering", f"expected version {expected}, found {number}", name, number
                )
            expected = number + 1
            if text_digest == previous:
                report.problems += 1
                yield Problem(
                    "duplicate",
                    f"same text as version {number - 1} (two checks raced)",
                    name,
                    number,
                )
            previous = text_digest
            for label, digest in (("text", text_digest), ("raw body", raw_digest)):
                if digest is None:
                    continue
                report.blobs += digest not in reader.checked
                if reader.read(digest) is None:
                    kind, detail = reader.failed[digest]
                    report.problems += 1
                    yield Problem(kind, f"{label}: {detail}", name, number)
        after = rows[-1][0]


def _reverts(conn: Connection, source_id: int, name: str, report: Report) -> Iterator[Problem]:
    """A revert to the version that was already current (the change before it ended
    there): what a check that compared against a stale version once recorded."""
    number = {
        r.id: r.number
        for r in conn.execute(
            select(versions.c.id, versions.c.number).where(versions.c.source_id == source_id)
        )
    }
    last_to: int | None = None
    query = (
        select(changes.c.id, changes.c.kind, changes.c.to_version_id)
        .where(changes.c.source_id == source_id)
        .order_by(changes.c.id)
    )
    for change_id, kind, to_id in conn.execute(query):
        if kind == "revert" and to_id == last_to:
            report.problems += 1
            yield Problem(
                "revert",
                f"change {change_id} returns to version {number.get(to_id)}, which was "
                "already current",
                name,
                number.get(to_id),
            )
        last_to = to_id


def used_digests() -> Select[Any]:
    """The digests some version names, as text or raw body (verify and gc share it)."""
    used = union(
        select(versions.c.text_digest.label("d")),
        select(versions.c.raw_digest.label("d")).where(versions.c.raw_digest.is_not(None)),
    ).subquery()
    return select(used.c.d)


def unused_blobs() -> Select[Any]:
    """The blobs no version names (left by removed sources or released raw bodies)."""
    return select(blobs.c.digest).where(blobs.c.digest.not_in(used_digests()))


def _loose_blobs(conn: Connection, reader: _Blobs, report: Report) -> Iterator[Problem]:
    """Blobs no version names (left by removed sources until gc) must still decode."""
    after = ""
    reader.forget()
    while True:
        page = conn.execute(
            unused_blobs().where(blobs.c.digest > after).order_by(blobs.c.digest).limit(PAGE)
        ).scalars()
        digests = list(page)
        if not digests:
            return
        for digest in digests:
            report.blobs += 1
            if reader.read(digest) is None:
                kind, detail = reader.failed[digest]
                report.problems += 1
                yield Problem(kind, f"unreferenced blob {digest[:12]}: {detail}")
        after = digests[-1]


def _dangling(conn: Connection, source_id: int | None, names: dict[int, str]) -> Iterator[Problem]:
    """Rows that point at a version, change, claim, source or blob that does not exist."""

    def missing(table: Any, column: Any, target: Any, what: str, owner: Any) -> Iterator[Problem]:
        ref = getattr(table.c, column)
        query = (
            select(table.c.id, ref, owner.label("sid"))
            .where(ref.is_not(None), ref.not_in(target))
            .order_by(table.c.id)
        )
        if source_id is not None:
            query = query.where(owner == source_id)
        for row in conn.execute(query):
            yield Problem(
                "dangling",
                f"{table.name} row {row[0]} points at {what} {row[1]}, which does not exist",
                names.get(row.sid, f"source {row.sid}"),
            )

    vid, cid = select(versions.c.id), select(changes.c.id)
    yield from missing(flags, "version_id", vid, "version", flags.c.source_id)
    yield from missing(flags, "change_id", cid, "change", flags.c.source_id)
    yield from missing(flags, "claim_id", select(claims.c.id), "claim", flags.c.source_id)
    yield from missing(flags, "source_id", select(sources.c.id), "source", flags.c.source_id)
    yield from missing(changes, "from_version_id", vid, "version", changes.c.source_id)
    yield from missing(changes, "to_version_id", vid, "version", changes.c.source_id)
    yield from missing(captures, "version_id", vid, "version", captures.c.source_id)
    yield from missing(sources, "current_version_id", vid, "version", sources.c.id)
    yield from missing(versions, "source_id", select(sources.c.id), "source", versions.c.source_id)
