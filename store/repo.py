"""The repository API: everything the rest of claimwatch asks of the archive.

Writes that belong together happen in one transaction: a new version's blobs,
its version row, its capture and the source's new schedule commit together or
not at all.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    true,
    update,
)

from store.blobstore import read_blob
from store.db import make_engine, mask_url, normalize_url, sqlite_path, translate_errors
from store.errors import (
    NotFoundError,
    SchemaAhead,
    SchemaBehind,
    SourceNotFound,
    StoreMissing,
    UsageError,
)
from store.kinds import NOT_FETCHED, SEED, kind_of
from store.models import (
    CaptureRecord,
    ChangeRecord,
    ClaimRow,
    EntryDecision,
    FlagRecord,
    NewVersion,
    Source,
    SourceSpec,
    SourceUpdate,
    StoredChange,
    StoredFlag,
    StoreStatus,
    Version,
    source_from_row,
)
from store.schema import (
    SCHEMA_HEAD,
    UTCDateTime,
    blobs,
    captures,
    changes,
    claim_examples,
    claims,
    feed_entries,
    flags,
    robots,
    sentence_vectors,
    sources,
    versions,
)
from store.verify import Problem, Report
from store.verify import verify as verify_archive
from store.writes import Batch, evidence_key, version_from_row


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
        """A connection for reads."""
        with translate_errors(self.url), self.engine.connect() as conn:
            yield conn

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

    # -- sources -------------------------------------------------------------

    def add_source(self, spec: SourceSpec, now: datetime, *, update_existing: bool = False) -> int:
        """Add a source; with ``update_existing``, a source with that URL is updated instead."""
        values = _source_values(spec)
        with self.transaction() as conn:
            existing = conn.execute(select(sources.c.id).where(sources.c.url == spec.url)).scalar()
            if existing is not None:
                if not update_existing:
                    raise UsageError(f"source {spec.url} is already watched (id {existing})")
                conn.execute(update(sources).where(sources.c.id == existing).values(**values))
                return int(existing)
            if spec.label is not None:
                taken = conn.execute(select(sources.c.url).where(sources.c.label == spec.label))
                other = taken.scalar()
                if other is not None:
                    raise UsageError(f"label {spec.label!r} is already used by {other}")
            return _insert_source(conn, spec, values, now)

    def add_sources(self, specs: Sequence[SourceSpec], now: datetime) -> tuple[int, int]:
        """Add many sources in one transaction; a URL already watched is left as it is.
        Returns (added, already watched)."""
        added = known = 0
        with self.transaction() as conn:
            for spec in specs:
                found = conn.execute(select(sources.c.id).where(sources.c.url == spec.url)).scalar()
                if found is not None:
                    known += 1
                    continue
                _insert_source(conn, spec, _source_values(spec), now)
                added += 1
        return added, known

    def retire_source(self, source: Source, now: datetime, retire: bool = True) -> None:
        """Stop checking a source (its history stays), or with ``retire=False`` revive it."""
        values: dict[str, Any] = {"retired_at": now, "next_check_at": None}
        if not retire:
            values = {"retired_at": None, "next_check_at": now, "consecutive_failures": 0}
            if source.decay_from is not None:
                values["decay_from"] = now  # revived coverage starts its decay again
        with self.transaction() as conn:
            conn.execute(update(sources).where(sources.c.id == source.id).values(**values))

    def set_selector(self, source_id: int, selector: str | None, exclude: tuple[str, ...]) -> None:
        """Change what a source watches. Its validators and fingerprint are dropped, so
        the next check reads the page whole, and that text is marked as a new selection
        (``selector_changed``) rather than an edit."""
        with self.transaction() as conn:
            row = conn.execute(select(sources.c.options).where(sources.c.id == source_id))
            options = dict(row.scalar_one() or {})
            options.pop("select", None)
            options.pop("exclude", None)
            if selector:
                options["select"] = selector
                options["exclude"] = list(exclude)
            options["selector_changed"] = True
            conn.execute(
                update(sources)
                .where(sources.c.id == source_id)
                .values(
                    options=options,
                    etag=None,
                    last_modified=None,
                    last_raw_digest=None,
                    body_hint=None,
                )
            )

    def known_entries(self, feed_id: int, urls: Sequence[str]) -> set[str]:
        """Which of these entry URLs this feed has already seen."""
        if not urls:
            return set()
        query = select(feed_entries.c.url).where(
            feed_entries.c.feed_id == feed_id, feed_entries.c.url.in_(list(urls))
        )
        with self.reading() as conn:
            return set(conn.execute(query).scalars())

    def record_entries(
        self, feed_id: int, decisions: Sequence[EntryDecision], now: datetime
    ) -> list[Source]:
        """Record a feed's new entries and create the sources of the accepted ones, in
        one transaction. An entry whose URL is already a source is linked, not added."""
        created = []
        with self.transaction() as conn:
            for d in decisions:
                decision, source_id = d.decision, None
                if d.spec is not None:
                    source_id = conn.execute(
                        select(sources.c.id).where(sources.c.url == d.spec.url)
                    ).scalar()
                    if source_id is None:
                        source_id = _insert_source(conn, d.spec, _source_values(d.spec), now)
                        created.append(source_id)
                    else:
                        decision = "known"
                conn.execute(
                    insert(feed_entries).values(
                        feed_id=feed_id,
                        url=d.url,
                        title=d.title,
                        published=d.published,
                        summary=d.summary[:2000],
                        decision=decision,
                        reason=d.reason,
                        source_id=source_id,
                        seen_at=now,
                    )
                )
            rows = conn.execute(select(sources).where(sources.c.id.in_(created))).mappings().all()
        return [source_from_row(r) for r in rows]

    def remove_source(self, source: Source) -> None:
        """Remove a source and its captures and versions (blobs stay until gc)."""
        with self.transaction() as conn:
            ids = select(versions.c.id).where(versions.c.source_id == source.id)
            conn.execute(
                update(captures).where(captures.c.version_id.in_(ids)).values(version_id=None)
            )
            conn.execute(delete(captures).where(captures.c.source_id == source.id))
            conn.execute(delete(versions).where(versions.c.source_id == source.id))
            conn.execute(
                update(sources).where(sources.c.found_by == source.id).values(found_by=None)
            )
            conn.execute(delete(sources).where(sources.c.id == source.id))

    def get_source(self, ref: str | int) -> Source:
        """Find a source by id, URL or label."""
        ref_s = str(ref)
        cond = (sources.c.url == ref_s) | (sources.c.label == ref_s)
        if ref_s.isdigit():
            cond = cond | (sources.c.id == int(ref_s))
        with self.reading() as conn:
            rows = conn.execute(select(sources).where(cond).order_by(sources.c.id)).mappings().all()
        if not rows:
            raise SourceNotFound(ref_s)
        return source_from_row(rows[0])

    def list_sources(self) -> list[Source]:
        with self.reading() as conn:
            rows = conn.execute(select(sources).order_by(sources.c.id)).mappings().all()
        return [source_from_row(r) for r in rows]

    def iter_sources(self, limit: int | None = None, page: int = 1000) -> Iterator[Source]:
        """Sources in id order, read a page at a time (flat memory at any size)."""
        after, left = 0, limit
        while left is None or left > 0:
            size = page if left is None else min(page, left)
            with self.reading() as conn:
                rows = (
                    conn.execute(
                        select(sources)
                        .where(sources.c.id > after)
                        .order_by(sources.c.id)
                        .limit(size)
                    )
                    .mappings()
                    .all()
                )
            yield from (source_from_row(r) for r in rows)
            if len(rows) < size:
                return
            after = rows[-1]["id"]
            left = None if left is None else left - len(rows)

    def source_page(
        self,
        search: str | None = None,
        kind: str | None = None,
        failing: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Source], int]:
        """One page of sources in id order, filtered by a substring of the label or URL,
        a kind, or failing only; and how many match in all (the web view's listing)."""
        cond = []
        if search:
            like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            cond.append(
                or_(sources.c.url.like(like, escape="\\"), sources.c.label.like(like, escape="\\"))
            )
        if kind:
            cond.append(sources.c.kind == kind)
        if failing:
            cond.append(sources.c.consecutive_failures > 0)
        where = and_(*cond) if cond else true()
        with self.reading() as conn:
            total = conn.execute(select(func.count()).select_from(sources).where(where))
            count = int(total.scalar_one())
            rows = (
                conn.execute(
                    select(sources).where(where).order_by(sources.c.id).offset(offset).limit(limit)
                )
                .mappings()
                .all()
            )
        return [source_from_row(r) for r in rows], count

    def last_changes(self, ids: Sequence[int]) -> dict[int, datetime]:
        """When each of these sources last changed (sources without a change are left out)."""
        if not ids:
            return {}
        query = (
            select(changes.c.source_id, func.max(changes.c.created_at))
            .where(changes.c.source_id.in_(list(ids)))
            .group_by(changes.c.source_id)
        )
        with self.reading() as conn:
            return {
                sid: at
                for sid, at in ((r[0], schema_time(r[1])) for r in conn.execute(query))
                if at
            }

    def seed_articles(self) -> list[Source]:
        """The story's seed articles (sources of kind seed)."""
        with self.reading() as conn:
            query = select(sources).where(sources.c.kind == SEED.name).order_by(sources.c.id)
            return [source_from_row(r) for r in conn.execute(query).mappings().all()]

    def source_names(self, ids: set[int]) -> dict[int, str]:
        """Label (or URL) of each of these sources that exists."""
        if not ids:
            return {}
        with self.reading() as conn:
            query = select(sources.c.id, sources.c.label, sources.c.url)
            rows = conn.execute(query.where(sources.c.id.in_(sorted(ids))))
            return {r.id: r.label or r.url for r in rows}

    def iter_changes(
        self,
        since: datetime | None = None,
        source_id: int | None = None,
        min_significance: float = 0.0,
        limit: int | None = None,
        page: int = 500,
    ) -> Iterator[StoredChange]:
        """The change log, newest first, a page at a time and without each change's
        units (a listing shows the summary): flat memory however long the log."""
        base = _change_log(since, source_id, min_significance, units=False)
        cursor: tuple[datetime, int] | None = None
        left = limit
        while left is None or left > 0:
            size = page if left is None else min(page, left)
            query = base.limit(size)
            if cursor is not None:
                at, cid = cursor
                query = query.where(
                    or_(
                        changes.c.created_at < at,
                        and_(changes.c.created_at == at, changes.c.id < cid),
                    )
                )
            with self.reading() as conn:
                rows = conn.execute(query).mappings().all()
            for r in rows:
                yield _stored_change(r, units=[])
            if len(rows) < size:
                return
            cursor = (rows[-1]["created_at"], rows[-1]["id"])
            left = None if left is None else left - len(rows)

    def due_sources(self, now: datetime) -> list[Source]:
        query = (
            select(sources)
            .where(due_condition(now))
            .order_by(sources.c.next_check_at, sources.c.id)
        )
        with self.reading() as conn:
            return [source_from_row(r) for r in conn.execute(query).mappings().all()]

    # -- versions ------------------------------------------------------------

    def latest_version(self, source_id: int) -> Version | None:
        query = (
            select(versions)
            .where(versions.c.source_id == source_id)
            .order_by(versions.c.number.desc())
            .limit(1)
        )
        with self.reading() as conn:
            row = conn.execute(query).mappings().first()
        return version_from_row(row) if row else None

    def current_version(self, source: Source) -> Version | None:
        """The version the page showed at its last successful check."""
        if source.current_version_id is None:
            return self.latest_version(source.id)
        with self.reading() as conn:
            row = (
                conn.execute(select(versions).where(versions.c.id == source.current_version_id))
                .mappings()
                .first()
            )
        return version_from_row(row) if row else self.latest_version(source.id)

    def version_with_text(self, source_id: int, text_digest: str) -> Version | None:
        """The newest earlier version of the source with exactly this text, if any."""
        query = (
            select(versions)
            .where(versions.c.source_id == source_id, versions.c.text_digest == text_digest)
            .order_by(versions.c.number.desc())
            .limit(1)
        )
        with self.reading() as conn:
            row = conn.execute(query).mappings().first()
        return version_from_row(row) if row else None

    def versions(self, source_id: int) -> list[Version]:
        query = (
            select(versions).where(versions.c.source_id == source_id).order_by(versions.c.number)
        )
        with self.reading() as conn:
            return [version_from_row(r) for r in conn.execute(query).mappings().all()]

    def get_version(self, source: Source, number: int) -> Version:
        query = select(versions).where(
            versions.c.source_id == source.id, versions.c.number == number
        )
        with self.reading() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFoundError(
                f"{source.name} has no version {number}; see 'claimwatch history {source.name}'"
            )
        return version_from_row(row)

    def read_text(self, version: Version) -> str:
        return self.read_blob(version.text_digest).decode("utf-8")

    def read_raw(self, version: Version) -> bytes:
        if version.raw_digest is None:
            raise NotFoundError(f"version {version.number} has no raw body stored")
        return self.read_blob(version.raw_digest)

    def captures(self, source_id: int, limit: int | None = None) -> list[CaptureRecord]:
        query = (
            select(captures)
            .where(captures.c.source_id == source_id)
            .order_by(captures.c.started_at.desc(), captures.c.id.desc())
            .limit(limit)
        )
        with self.reading() as conn:
            rows = conn.execute(query).mappings().all()
        fields = CaptureRecord.__dataclass_fields__
        return [CaptureRecord(**{k: v for k, v in r.items() if k in fields}) for r in rows]

    def capture_log(
        self, source_id: int, page: int = 500
    ) -> Iterator[tuple[int, int | None, CaptureRecord]]:
        """Every capture of a source, oldest first, as (id, version id, record); read in
        pages so a long history is never held whole."""
        fields = CaptureRecord.__dataclass_fields__
        after = 0
        while True:
            query = (
                select(captures)
                .where(captures.c.source_id == source_id, captures.c.id > after)
                .order_by(captures.c.id)
                .limit(page)
            )
            with self.reading() as conn:
                rows = conn.execute(query).mappings().all()
            if not rows:
                return
            for r in rows:
                yield (
                    r["id"],
                    r["version_id"],
                    CaptureRecord(**{k: v for k, v in r.items() if k in fields}),
                )
            after = rows[-1]["id"]

    # -- writes of a check ---------------------------------------------------

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

    def changes(
        self,
        since: datetime | None = None,
        source_id: int | None = None,
        min_significance: float = 0.0,
        limit: int | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[StoredChange]:
        """Stored changes, newest first."""
        query = _change_log(since, source_id, min_significance, units=True).limit(limit)
        query = _narrow(query, (ids, changes.c.id, _among))
        with self.reading() as conn:
            rows = conn.execute(query).mappings().all()
        return [_stored_change(r, r["units"]) for r in rows]

    # -- claims and flags ------------------------------------------------------

    def load_claims(self, rows: Sequence[dict[str, Any]], now: datetime) -> None:
        """Make ``rows`` (plain claim dicts) the active claims; others become inactive.

        Claims are never deleted: their flags keep pointing at them.
        """
        with self.transaction() as conn:
            existing = set(conn.execute(select(claims.c.id)).scalars())
            conn.execute(update(claims).values(active=0))
            for row in rows:
                texts = [text for _lang, text in row["statements"]]
                values = {
                    "en": texts[0],  # the claim in its first language (column kept from 0003)
                    "ar": texts[1] if len(texts) > 1 else "",
                    "data": row,
                    "active": 1,
                    "loaded_at": now,
                }
                if row["id"] in existing:
                    conn.execute(update(claims).where(claims.c.id == row["id"]).values(**values))
                else:
                    conn.execute(insert(claims).values(id=row["id"], **values))

    def claims(self, active_only: bool = True) -> list[ClaimRow]:
        """Claims with their flag counts by stance and the time of the latest flag."""
        counts = select(
            flags.c.claim_id,
            flags.c.stance,
            func.count().label("n"),
            func.max(flags.c.created_at).label("latest"),
        ).group_by(flags.c.claim_id, flags.c.stance)
        query = select(claims).order_by(claims.c.loaded_at, claims.c.id)
        if active_only:
            query = query.where(claims.c.active == 1)
        with self.reading() as conn:
            stats: dict[str, dict[str, Any]] = {}
            for r in conn.execute(counts).mappings():
                entry = stats.setdefault(r["claim_id"], {"latest": None})
                entry[r["stance"]] = r["n"]
                latest = schema_time(r["latest"])
                if latest and (entry["latest"] is None or latest > entry["latest"]):
                    entry["latest"] = latest
            rows = conn.execute(query).mappings().all()
        return [
            ClaimRow(
                id=r["id"],
                en=r["en"],
                ar=r["ar"],
                data=r["data"],
                active=bool(r["active"]),
                supports=stats.get(r["id"], {}).get("supports", 0),
                contradicts=stats.get(r["id"], {}).get("contradicts", 0),
                mentions=stats.get(r["id"], {}).get("mentions", 0),
                latest=stats.get(r["id"], {}).get("latest"),
            )
            for r in rows
        ]

    def flags(
        self,
        claim_id: str | None = None,
        stance: str | None = None,
        since: datetime | None = None,
        min_score: float = 0.0,
        source_id: int | None = None,
        limit: int | None = None,
        ids: Sequence[int] | None = None,
        unreviewed: bool = False,
    ) -> list[StoredFlag]:
        """Flags, newest first, with their source and version (``unreviewed``: only the
        ones without a verdict)."""
        query = (
            select(
                flags,
                sources.c.label,
                sources.c.url,
                versions.c.number,
                versions.c.title,
            )
            .join(sources, sources.c.id == flags.c.source_id)
            .join(versions, versions.c.id == flags.c.version_id)
            .where(flags.c.score >= min_score)
            .order_by(flags.c.created_at.desc(), flags.c.id.desc())
            .limit(limit)
        )
        query = _narrow(
            query,
            (claim_id, flags.c.claim_id, operator.eq),
            (stance, flags.c.stance, operator.eq),
            (since, flags.c.created_at, operator.ge),
            (source_id, flags.c.source_id, operator.eq),
            (ids, flags.c.id, _among),
        )
        if unreviewed:
            query = query.where(flags.c.verdict.is_(None))
        with self.reading() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            StoredFlag(
                id=r["id"],
                claim_id=r["claim_id"],
                stance=r["stance"],
                score=r["score"],
                evidence=r["evidence"],
                reasons=r["reasons"],
                status=r["status"],
                created_at=r["created_at"],
                source_id=r["source_id"],
                source_name=r["label"] or r["url"],
                source_url=r["url"],
                version=r["number"],
                title=r["title"],
                change_id=r["change_id"],
                verdict=r["verdict"],
                verdict_stance=r["verdict_stance"],
            )
            for r in rows
        ]

    # -- the reviewer's verdicts, the story's examples, cached vectors ------------

    def review(
        self, flag_id: int, verdict: str, now: datetime, stance: str | None = None
    ) -> StoredFlag:
        """Record a verdict (confirmed | rejected) on a flag, and keep the flag's evidence
        as an example for the matcher: confirmed, with its (possibly corrected) stance;
        rejected, as a near miss. Reviewing again replaces the earlier verdict."""
        found = self.flags(ids=[flag_id])
        if not found:
            raise NotFoundError(f"no flag {flag_id}; see 'claimwatch flags'")
        flag = found[0]
        stance = stance or flag.stance if verdict == "confirmed" else None
        with self.transaction() as conn:
            conn.execute(
                update(flags)
                .where(flags.c.id == flag_id)
                .values(
                    verdict=verdict,
                    verdict_stance=stance,
                    reviewed_at=now,
                    status="reviewed",
                    evidence_digest=evidence_key(flag.evidence),
                )
            )
            conn.execute(delete(claim_examples).where(claim_examples.c.flag_id == flag_id))
            conn.execute(
                insert(claim_examples).values(
                    claim_id=flag.claim_id if verdict == "confirmed" else None,
                    stance=stance,
                    text=flag.evidence,
                    origin="verdict",
                    flag_id=flag_id,
                    created_at=now,
                )
            )
        return self.flags(ids=[flag_id])[0]

    def load_examples(
        self, rows: Sequence[tuple[str | None, str | None, str]], now: datetime
    ) -> None:
        """Make ``rows`` ((claim, stance, text); claim None for a near miss) the story's
        corpus examples, replacing the previous corpus (verdicts stay)."""
        with self.transaction() as conn:
            conn.execute(delete(claim_examples).where(claim_examples.c.origin == "corpus"))
            if rows:
                conn.execute(
                    insert(claim_examples),
                    [
                        {
                            "claim_id": c,
                            "stance": s,
                            "text": t,
                            "origin": "corpus",
                            "created_at": now,
                        }
                        for c, s, t in rows
                    ],
                )

    def examples(self) -> list[tuple[str | None, str | None, str, str]]:
        """Every example: (claim, stance, text, origin), corpus first, then verdicts."""
        query = select(claim_examples).order_by(claim_examples.c.origin, claim_examples.c.id)
        with self.reading() as conn:
            return [(r.claim_id, r.stance, r.text, r.origin) for r in conn.execute(query)]

    def vectors_for(self, model: str, digests: Iterable[str]) -> dict[str, bytes]:
        wanted = sorted(set(digests))
        found: dict[str, bytes] = {}
        with self.reading() as conn:
            for i in range(0, len(wanted), 500):
                query = select(sentence_vectors.c.digest, sentence_vectors.c.vector).where(
                    sentence_vectors.c.model == model,
                    sentence_vectors.c.digest.in_(wanted[i : i + 500]),
                )
                found.update({r.digest: bytes(r.vector) for r in conn.execute(query)})
        return found

    def save_vectors(self, model: str, vectors: dict[str, bytes]) -> None:
        """Keep vectors by digest; ones already kept (by another writer too) are skipped."""
        if not vectors:
            return
        with self.transaction() as conn:
            known: set[str] = set()
            keys = sorted(vectors)
            for i in range(0, len(keys), 500):
                query = select(sentence_vectors.c.digest).where(
                    sentence_vectors.c.model == model,
                    sentence_vectors.c.digest.in_(keys[i : i + 500]),
                )
                known.update(conn.execute(query).scalars())
            rows = [
                {"model": model, "digest": k, "vector": v}
                for k, v in vectors.items()
                if k not in known
            ]
            if rows:
                stmt = _insert_ignoring_duplicates(conn, sentence_vectors)
                conn.execute(stmt, rows)

    # -- integrity -----------------------------------------------------------

    def verify(
        self, source: Source | None = None, report: Report | None = None
    ) -> Iterator[Problem]:
        """Re-read every blob and check every reference (see ``store.verify``)."""
        with self.reading() as conn:
            yield from verify_archive(
                conn, source.id if source else None, report, self.options.max_chain_depth
            )

    # -- blobs ---------------------------------------------------------------

    def read_blob(self, digest: str) -> bytes:
        with self.reading() as conn:
            return read_blob(conn, self.options, digest)

    # -- robots.txt ----------------------------------------------------------

    def robots_for(
        self, origins: Sequence[str], now: datetime
    ) -> dict[str, tuple[int, str, datetime]]:
        """The still-fresh robots.txt of these origins: origin -> (status, body, expires)."""
        found: dict[str, tuple[int, str, datetime]] = {}
        wanted = sorted(set(origins))
        with self.reading() as conn:
            for i in range(0, len(wanted), 500):
                query = select(robots).where(
                    robots.c.origin.in_(wanted[i : i + 500]), robots.c.expires_at > now
                )
                for r in conn.execute(query):
                    found[r.origin] = (r.status, r.body, r.expires_at)
        return found

    def save_robots(self, entries: dict[str, tuple[int, str, datetime]], now: datetime) -> None:
        """Keep fetched robots.txt entries (replacing older ones), in one transaction."""
        if not entries:
            return
        with self.transaction() as conn:
            origins = list(entries)
            for i in range(0, len(origins), 500):
                conn.execute(delete(robots).where(robots.c.origin.in_(origins[i : i + 500])))
            conn.execute(
                insert(robots),
                [
                    {"origin": o, "status": s, "body": b, "fetched_at": now, "expires_at": e}
                    for o, (s, b, e) in entries.items()
                ],
            )

    # -- status --------------------------------------------------------------

    def status(self, now: datetime, limit: int = 10, exact_up_to: int = 200_000) -> StoreStatus:
        """Counts for ``status``. On PostgreSQL a table the planner estimates at over
        ``exact_up_to`` rows is counted from that estimate (``approximate``): an exact
        count of millions of captures is a scan of the whole table."""
        approximate = False
        with self.reading() as conn:

            def count(table: Any) -> int:
                nonlocal approximate
                guess = _estimate(conn, table.name)
                if guess is not None and guess > exact_up_to:
                    approximate = True
                    return guess
                return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

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
            failing = (
                conn.execute(
                    select(sources)
                    .where(sources.c.consecutive_failures > 0)
                    .order_by(sources.c.consecutive_failures.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
            due = (
                conn.execute(
                    select(sources)
                    .where(sources.c.next_check_at.is_not(None), sources.c.retired_at.is_(None))
                    .order_by(sources.c.next_check_at)
                    .limit(limit)
                )
                .mappings()
                .all()
            )
            warned = (
                conn.execute(
                    select(sources)
                    .where(sources.c.warning.is_not(None))
                    .order_by(sources.c.id)
                    .limit(limit)
                )
                .mappings()
                .all()
            )
            return StoreStatus(
                sources=count(sources),
                versions=count(versions),
                captures=count(captures),
                failed_captures=failed,
                blob_bytes=int(blob_bytes),
                failing=[source_from_row(r) for r in failing],
                next_due=[source_from_row(r) for r in due],
                warned=[source_from_row(r) for r in warned],
                approximate=approximate,
            )


def _narrow(
    query: Select[Any], *filters: tuple[object | None, Any, Callable[[Any, Any], Any]]
) -> Select[Any]:
    """Add ``op(column, value)`` for each filter whose value was given (not None)."""
    for value, column, op in filters:
        if value is not None:
            query = query.where(op(column, value))
    return query


def _among(column: Any, ids: Sequence[int]) -> Any:
    return column.in_(list(ids))


def schema_time(value: Any) -> datetime | None:
    """An aggregate (MAX) of a UTC column comes back raw on SQLite; make it aware."""
    if value is None or isinstance(value, datetime):
        return UTCDateTime().process_result_value(value, None)  # type: ignore[arg-type]
    return UTCDateTime().process_result_value(datetime.fromisoformat(str(value)), None)  # type: ignore[arg-type]


def _source_values(spec: SourceSpec) -> dict[str, Any]:
    options: dict[str, Any] = {"ignore": list(spec.ignore), "robots": spec.robots}
    if spec.topic:
        options["topic"] = spec.topic
    if spec.match_claims:
        options["match_claims"] = True
    if spec.entry:
        options["entry"] = spec.entry
    if spec.select:
        options["select"] = spec.select
        options["exclude"] = list(spec.exclude)
    if spec.browser:
        options["browser"] = True
        if spec.block_third_party:
            options["block_third_party"] = True
    if spec.allow_private and spec.origin != "feed":
        options["allow_private"] = True
        if spec.allow_redirects_anywhere:
            options["allow_redirects_anywhere"] = True
    return {
        "kind": spec.kind,
        "label": spec.label,
        "tags": list(spec.tags),
        "interval_seconds": spec.interval_seconds,
        "cron": spec.cron,
        "options": options,
    }


def due_condition(now: datetime) -> Any:
    """The SQL condition for a source due at ``now``: its time has come, it is not
    retired, and its kind is fetched. ``due_sources`` and the lease claims share it."""
    return and_(
        sources.c.next_check_at <= now,
        sources.c.retired_at.is_(None),
        sources.c.kind.notin_(NOT_FETCHED),
    )


def _insert_source(
    conn: Connection, spec: SourceSpec, values: dict[str, Any], now: datetime
) -> int:
    kind = kind_of(spec.kind)
    decays = spec.origin == "feed" and kind.coverage  # coverage a feed found ages
    result = conn.execute(
        insert(sources).values(
            url=spec.url,
            origin=spec.origin,
            found_by=spec.found_by,
            created_at=now,
            next_check_at=now if kind.fetched else None,
            decay_from=now if decays else None,
            consecutive_failures=0,
            **values,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def _change_log(
    since: datetime | None, source_id: int | None, min_significance: float, *, units: bool
) -> Select[Any]:
    """Changes with their version numbers and source name, newest first (``changes``
    and the paged ``iter_changes`` share it; a listing leaves the units out)."""
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
    return _narrow(
        query,
        (since, changes.c.created_at, operator.ge),
        (source_id, changes.c.source_id, operator.eq),
    )


def _estimate(conn: Connection, table: str) -> int | None:
    """PostgreSQL's estimate of a table's rows (None on SQLite, or never analysed)."""
    if conn.dialect.name != "postgresql":
        return None
    found = conn.execute(
        text("SELECT reltuples::bigint FROM pg_class WHERE relname = :t"), {"t": table}
    ).scalar()
    return int(found) if found is not None and found >= 0 else None


def _stored_change(r: Any, units: list[dict[str, Any]]) -> StoredChange:
    return StoredChange(
        id=r["id"],
        source_id=r["source_id"],
        source_name=r["label"] or r["url"],
        from_version=r["from_number"],
        to_version=r["to_number"],
        kind=r["kind"],
        created_at=r["created_at"],
        significance=r["significance"],
        summary=r["summary"],
        reasons=r["reasons"],
        stats=r["stats"],
        units=units,
    )


def _insert_ignoring_duplicates(conn: Connection, table: Any) -> Any:
    """INSERT that skips rows whose primary key exists (a concurrent writer's)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()
