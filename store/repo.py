"""The repository API: everything the rest of claimwatch asks of the archive.

``Store`` is a thin facade. It owns the engine, the schema's migrations and the
transaction; the work is done by one module per aggregate, each over a public
connection (``transaction()`` / ``reading()``):

    sources.py    sources, feed entries, robots.txt     leases.py   claims on due sources
    versions.py   versions, captures, stored text       digests.py  the digest's state
    changes.py    the change log                        alerts.py   announced alerts
    claims.py     claims, flags, verdicts, examples     gc.py       unused blobs
    writes.py     a check's writes (Batch)              status.py   the status counts
    blobstore.py  blobs through their delta chains      verify.py   integrity

Writes that belong together happen in one transaction: a new version's blobs,
its version row, its capture and the source's new schedule commit together or
not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, inspect, text

from store import changes as changes_
from store import claims as claims_
from store import sources as sources_
from store import status as status_
from store import versions as versions_
from store.blobstore import read_blob
from store.db import READ, make_engine, mask_url, normalize_url, sqlite_path, translate_errors
from store.errors import SchemaAhead, SchemaBehind, StoreMissing
from store.models import (
    CaptureRecord,
    ChangeRecord,
    ClaimRow,
    EntryDecision,
    FlagFilter,
    FlagRecord,
    NewVersion,
    Source,
    SourceSpec,
    SourceUpdate,
    StoredChange,
    StoredFlag,
    StoreStatus,
    Version,
)
from store.schema import SCHEMA_HEAD
from store.verify import Problem, Report
from store.verify import verify as verify_archive
from store.writes import Batch


@dataclass(frozen=True)
class StoreOptions:
    max_chain_depth: int = 50  # a full copy at least every this many deltas
    full_level: int = 9  # zstd level for full copies: 19 costs 40x the CPU for 5% less
    delta_level: int = 9  # zstd level for deltas (the base does most of the work)
    busy_timeout_s: float = 30.0


class Store:
    def __init__(self, url: str, options: StoreOptions | None = None):
        self.url = normalize_url(url)
        self.options = options or StoreOptions()
        self.engine = make_engine(self.url, self.options.busy_timeout_s)

    def __repr__(self) -> str:
        return f"Store({mask_url(self.url)!r})"

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction, committed when the block ends (rolled back on an error);
        database errors come out as store errors. The modules per aggregate (leases,
        digests, alerts, gc, writes) work through this and ``reading``."""
        with translate_errors(self.url), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads: on SQLite it never waits for a writer (``READ``)."""
        with translate_errors(self.url), self.engine.connect() as conn:
            yield conn.execution_options(**READ)

    # -- schema --------------------------------------------------------------

    def _alembic_config(self, conn: Connection) -> Any:
        from alembic.config import Config  # alembic costs a quarter second to import

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.attributes["connection"] = conn
        return cfg

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration. Idempotent."""
        from alembic import command

        path = sqlite_path(self.url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as conn:
            command.upgrade(self._alembic_config(conn), "head")

    def ensure_current(self) -> None:
        """Raise a clear error when the store is missing or behind the code. Reads the
        revision alembic recorded, without importing alembic (every command calls this)."""
        head = SCHEMA_HEAD
        path = sqlite_path(self.url)
        if path is not None and not path.exists():  # reading must not create the file
            raise StoreMissing(mask_url(self.url))
        with self.reading() as conn:
            current = None
            if inspect(conn).has_table("alembic_version"):
                current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if current is None:
            raise StoreMissing(mask_url(self.url))
        if current.isdigit() and head.isdigit() and int(current) > int(head):
            raise SchemaAhead(mask_url(self.url), current, head)
        if current != head:
            raise SchemaBehind(mask_url(self.url), current, head)

    # -- sources (store/sources.py) ------------------------------------------

    def add_source(self, spec: SourceSpec, now: datetime, *, update_existing: bool = False) -> int:
        """Add a source; with ``update_existing``, a source with that URL is updated instead."""
        with self.transaction() as conn:
            return sources_.add(conn, spec, now, update_existing=update_existing)

    def add_sources(self, specs: Sequence[SourceSpec], now: datetime) -> tuple[int, int]:
        """Add many sources in one transaction: (added, already watched)."""
        with self.transaction() as conn:
            return sources_.add_many(conn, specs, now)

    def retire_source(self, source: Source, now: datetime, retire: bool = True) -> None:
        """Stop checking a source (its history stays), or with ``retire=False`` revive it."""
        with self.transaction() as conn:
            sources_.set_retired(conn, source, now, retire)

    def set_selector(self, source_id: int, selector: str | None, exclude: tuple[str, ...]) -> None:
        """Change what a source watches; its next text is a new selection, not an edit."""
        with self.transaction() as conn:
            sources_.set_selector(conn, source_id, selector, exclude)

    def set_url(self, source_id: int, url: str, now: datetime, allow_private: bool = False) -> None:
        """Give a source a new URL (the page moved, or its login changed); it is due now.
        ``allow_private``: it may now reach a loopback/private address too."""
        with self.transaction() as conn:
            sources_.set_url(conn, source_id, url, now, allow_private)

    def remove_source(self, source: Source) -> None:
        """Remove a source and its captures and versions (blobs stay until gc)."""
        with self.transaction() as conn:
            sources_.remove(conn, source)

    def get_source(self, ref: str | int) -> Source:
        """Find a source by id, URL or label (``SourceNotFound`` otherwise)."""
        with self.reading() as conn:
            return sources_.get(conn, ref)

    def list_sources(self) -> list[Source]:
        with self.reading() as conn:
            return sources_.every(conn)

    def iter_sources(
        self, limit: int | None = None, page: int = 1000, checkable: bool = False
    ) -> Iterator[Source]:
        """Sources in id order, read a page at a time (flat memory at any size); with
        ``checkable``, only those ``check --all`` checks (fetched kinds, not retired)."""
        return sources_.iterate(self.reading, limit, page, checkable)

    def count_checkable(self) -> int:
        """How many sources ``check --all`` checks."""
        with self.reading() as conn:
            return sources_.count_checkable(conn)

    def count_scanned(self) -> int:
        """How many sources ``flags scan`` reads."""
        with self.reading() as conn:
            return sources_.count_scanned(conn)

    def source_page(
        self,
        search: str | None = None,
        kind: str | None = None,
        failing: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Source], int]:
        """One filtered page of sources, and how many match in all."""
        with self.reading() as conn:
            return sources_.page(conn, search, kind, failing, offset, limit)

    def seed_articles(self) -> list[Source]:
        with self.reading() as conn:
            return sources_.seed_articles(conn)

    def source_names(self, ids: set[int]) -> dict[int, str]:
        with self.reading() as conn:
            return sources_.names(conn, ids)

    def due_sources(self, now: datetime) -> list[Source]:
        with self.reading() as conn:
            return sources_.due(conn, now)

    def known_entries(self, feed_id: int, urls: Sequence[str]) -> set[str]:
        with self.reading() as conn:
            return sources_.known_entries(conn, feed_id, urls)

    def record_entries(
        self, feed_id: int, decisions: Sequence[EntryDecision], now: datetime
    ) -> list[Source]:
        """Record a feed's new entries and create the accepted ones' sources, together."""
        with self.transaction() as conn:
            return sources_.record_entries(conn, feed_id, decisions, now)

    def robots_for(self, origins: Sequence[str], now: datetime) -> dict[str, sources_.RobotsEntry]:
        with self.reading() as conn:
            return sources_.robots_for(conn, origins, now)

    def save_robots(self, entries: dict[str, sources_.RobotsEntry], now: datetime) -> None:
        if entries:
            with self.transaction() as conn:
                sources_.save_robots(conn, entries, now)

    # -- versions and captures (store/versions.py) --------------------------------

    def latest_version(self, source_id: int) -> Version | None:
        with self.reading() as conn:
            return versions_.latest(conn, source_id)

    def current_version(self, source: Source) -> Version | None:
        """The version the page showed at its last successful check."""
        with self.reading() as conn:
            return versions_.current(conn, source)

    def versions_by_id(self, ids: Iterable[int]) -> dict[int, Version]:
        """Versions by id, in one query: a run reads its next sources' current versions
        ahead, instead of one query per check."""
        with self.reading() as conn:
            return versions_.by_ids(conn, ids)

    def version_with_text(self, source_id: int, text_digest: str) -> Version | None:
        with self.reading() as conn:
            return versions_.with_text(conn, source_id, text_digest)

    def versions(self, source_id: int) -> list[Version]:
        with self.reading() as conn:
            return versions_.every(conn, source_id)

    def get_version(self, source: Source, number: int) -> Version:
        with self.reading() as conn:
            return versions_.get(conn, source, number)

    def read_text(self, version: Version) -> str:
        return self.read_blob(version.text_digest).decode("utf-8")

    def read_raw(self, version: Version) -> bytes:
        return self.read_blob(versions_.raw_digest(version))

    def read_blob(self, digest: str) -> bytes:
        with self.reading() as conn:
            return read_blob(conn, self.options, digest)

    def captures(self, source_id: int, limit: int | None = None) -> list[CaptureRecord]:
        with self.reading() as conn:
            return versions_.recent_captures(conn, source_id, limit)

    def capture_log(self, source_id: int, page: int = 500) -> Iterator[versions_.CaptureEntry]:
        """Every capture of a source, oldest first, read a page at a time."""
        return versions_.capture_log(self.reading, source_id, page)

    # -- writes of a check (store/writes.py) -----------------------------------------

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """Several checks' writes in one transaction: one commit (one fsync) for all."""
        with self.transaction() as conn:
            batch = Batch(self, conn)
            yield batch
            batch.finish()

    def record_capture(self, capture: CaptureRecord, update_: SourceUpdate) -> None:
        """A check that made no version: its capture row and the source's new state."""
        with self.batch() as b:
            b.record_capture(capture, update_)

    def add_version(
        self,
        new: NewVersion,
        capture: CaptureRecord,
        update_: SourceUpdate,
        previous: tuple[Version, str] | None = None,
        change: ChangeRecord | None = None,
        new_flags: Sequence[FlagRecord] = (),
    ) -> Version:
        """Store a new version in one transaction (see ``Batch.add_version``)."""
        with self.batch() as b:
            return b.add_version(new, capture, update_, previous, change, new_flags)

    # -- the change log (store/changes.py) -------------------------------------------

    def changes(
        self,
        since: datetime | None = None,
        source_id: int | None = None,
        min_significance: float = 0.0,
        limit: int | None = None,
        ids: Sequence[int] | None = None,
        before: tuple[datetime, int] | None = None,
    ) -> list[StoredChange]:
        """Stored changes, newest first; with ``before`` (a change's time and id), the
        ones listed after it: the next page."""
        with self.reading() as conn:
            return changes_.listing(conn, since, source_id, min_significance, limit, ids, before)

    def iter_changes(
        self,
        since: datetime | None = None,
        source_id: int | None = None,
        min_significance: float = 0.0,
        limit: int | None = None,
        page: int = 500,
    ) -> Iterator[StoredChange]:
        """The change log without units, newest first, a page at a time."""
        return changes_.iterate(self.reading, since, source_id, min_significance, limit, page)

    def last_changes(self, ids: Sequence[int]) -> dict[int, datetime]:
        """When each of these sources last changed (sources without a change are left out)."""
        with self.reading() as conn:
            return changes_.last_changed(conn, ids)

    # -- claims, flags, verdicts, examples, vectors (store/claims.py) -----------------

    def load_claims(self, rows: Sequence[dict[str, Any]], now: datetime, summary: str = "") -> None:
        """Make ``rows`` the active claims, in this order, and ``summary`` the story's;
        other claims become inactive (never deleted)."""
        with self.transaction() as conn:
            claims_.load(conn, rows, now, summary)

    def story_summary(self) -> str:
        """The story's summary from its claims file ("" when it gives none)."""
        with self.reading() as conn:
            return claims_.summary(conn)

    def claims(self, active_only: bool = True) -> list[ClaimRow]:
        """Claims with their flag counts by stance and the time of the latest flag."""
        with self.reading() as conn:
            return claims_.listing(conn, active_only)

    def active_claims(self) -> dict[str, dict[str, Any]]:
        """The active claims, id -> the claim as its dict, in the claims file's order
        (no flag is counted, as ``claims`` does)."""
        with self.reading() as conn:
            return claims_.active(conn)

    def has_claim(self, claim_id: str, active_only: bool = False) -> bool:
        """Whether the store has this claim (retired ones too, unless ``active_only``:
        their flags are kept)."""
        with self.reading() as conn:
            return claims_.exists(conn, claim_id, active_only)

    def flags(self, which: FlagFilter | None = None) -> list[StoredFlag]:
        """The flags ``which`` picks (every flag by default), newest first, with their
        source and version."""
        with self.reading() as conn:
            return claims_.flag_listing(conn, which or FlagFilter())

    def review(
        self, flag_id: int, verdict: str, now: datetime, stance: str | None = None
    ) -> StoredFlag:
        """Record a verdict on a flag and keep its evidence as an example."""
        with self.transaction() as conn:
            return claims_.review(conn, flag_id, verdict, now, stance)

    def add_flag(
        self, version: Version, claim_id: str, stance: str, evidence: str, now: datetime
    ) -> tuple[StoredFlag, int]:
        """A confirmed flag the reviewer adds for a sentence of ``version`` (see
        ``store.claims.add``): the flag, and how many earlier rejections it replaced."""
        with self.transaction() as conn:
            return claims_.add(conn, version.source_id, version.id, claim_id, stance, evidence, now)

    def add_found(self, version: Version, found: Sequence[FlagRecord], now: datetime) -> list[int]:
        """Flags a scan of the archive found in ``version``, stored new unless a check
        already flagged the claim there or the reviewer rejected the sentence for it
        (``store.claims.add_found``): the new flags' ids."""
        with self.transaction() as conn:
            return claims_.add_found(conn, version.source_id, version.id, found, now)

    def unseen(self, version: Version, found: Sequence[FlagRecord]) -> list[FlagRecord]:
        """The flags of ``found`` that ``add_found`` would store (``flags scan --dry-run``)."""
        with self.reading() as conn:
            return claims_.unseen(conn, version.source_id, version.id, found)

    def load_examples(
        self, rows: Sequence[tuple[str | None, str | None, str]], now: datetime
    ) -> None:
        with self.transaction() as conn:
            claims_.load_examples(conn, rows, now)

    def examples(self) -> list[claims_.Example]:
        with self.reading() as conn:
            return claims_.examples(conn)

    def vectors_for(self, model: str, digests: Iterable[str]) -> dict[str, bytes]:
        with self.reading() as conn:
            return claims_.vectors_for(conn, model, digests)

    def save_vectors(self, model: str, vectors: dict[str, bytes]) -> None:
        if vectors:
            with self.transaction() as conn:
                claims_.save_vectors(conn, model, vectors)

    def cached(self, kind: str, key: str) -> bytes | None:
        with self.reading() as conn:
            return claims_.cached(conn, kind, key)

    def save_cached(self, kind: str, key: str, data: bytes, now: datetime) -> None:
        with self.transaction() as conn:
            claims_.save_cached(conn, kind, key, data, now)

    # -- integrity and status ------------------------------------------------------

    def verify(
        self, source: Source | None = None, report: Report | None = None
    ) -> Iterator[Problem]:
        """Re-read every blob and check every reference (see ``store.verify``)."""
        with self.reading() as conn:
            yield from verify_archive(
                conn, source.id if source else None, report, self.options.max_chain_depth
            )

    def status(self, now: datetime, limit: int = 10, exact_up_to: int = 200_000) -> StoreStatus:
        """Counts for ``status`` (estimated for huge PostgreSQL tables)."""
        with self.reading() as conn:
            return status_.status(conn, now, limit, exact_up_to)
