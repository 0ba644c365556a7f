"""The sources aggregate: watched URLs, their feed entries and their hosts' robots.txt.

Every function takes an open connection (``Store.transaction()`` for writes,
``Store.reading()`` for reads) or, for a paged iterator, the ``reading`` factory
itself, so a long listing never holds one connection. ``Store`` is the facade
the rest of claimwatch calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, true, update

from store.db import can_be_id, insert_ignoring_duplicates, insert_replacing, shown_url
from store.errors import SourceNotFound, UsageError
from store.kinds import NOT_FETCHED, SCANNED, SEED, kind_of
from store.models import EntryDecision, Source, SourceSpec, mask_url, source_from_row
from store.schema import captures, feed_entries, robots, sources, versions

Reading = Callable[[], AbstractContextManager[Connection]]
RobotsEntry = tuple[int, str, datetime]  # status, body, expires


def add(conn: Connection, spec: SourceSpec, now: datetime, *, update_existing: bool) -> int:
    """Add a source; with ``update_existing``, a source with that URL is updated instead
    (also when another worker adds it at this moment: two workers reloading one
    watchlist on a SIGHUP)."""
    values = _values(spec)
    existing = _source_id(conn, spec.url)
    if existing is None:
        if spec.label is not None:
            taken = conn.execute(select(sources.c.url).where(sources.c.label == spec.label))
            other = taken.scalar()
            if other is not None:
                raise UsageError(_label_taken(spec.label, other))
        added = _insert_if_new(conn, spec, now)
        if added is not None:
            return added
        existing = _source_id(conn, spec.url)  # another worker's, committed meanwhile
        if existing is None:
            raise UsageError(f"label {spec.label!r} was taken meanwhile; try another")
    if not update_existing:
        raise UsageError(f"source {spec.url} is already watched (id {existing})")
    conn.execute(update(sources).where(sources.c.id == existing).values(**values))
    return int(existing)


IMPORT_BATCH = 500  # specs looked up and inserted per statement by ``add_many``


def add_many(conn: Connection, specs: Sequence[SourceSpec], now: datetime) -> tuple[int, int]:
    """Add many sources; a URL already watched is left as it is. (added, already watched).
    A batch at a time: one lookup of its URLs, one of its labels and one insert, so a
    100,000-URL file is a few hundred statements, not 200,000. A label another source
    holds is a ``UsageError`` naming both, as for ``add``."""
    added = known = 0
    for start in range(0, len(specs), IMPORT_BATCH):
        batch = specs[start : start + IMPORT_BATCH]
        watched = _watched(conn, [s.url for s in batch])
        new = [s for s in batch if s.url not in watched]
        labels = [s.label for s in new if s.label is not None]
        if labels:
            taken = select(sources.c.label, sources.c.url).where(sources.c.label.in_(labels))
            holder = conn.execute(taken.limit(1)).first()
            if holder is not None:
                raise UsageError(_label_taken(holder.label, holder.url))
        inserted: set[str] = set()
        if new:
            rows = [_row(s, _values(s), now) for s in new]
            statement = insert_ignoring_duplicates(conn, sources).returning(sources.c.url)
            inserted = set(conn.execute(statement, rows).scalars())
        skipped = [s.url for s in new if s.url not in inserted]
        if skipped:  # another writer's, committed meanwhile: its URL, or its label
            unwatched = set(skipped) - _watched(conn, skipped)  # one lookup for them all
            lost = [s for s in new if s.url in unwatched]
            if lost:
                raise UsageError(f"label {lost[0].label!r} was taken meanwhile; try another")
        added += len(inserted)
        known += len(batch) - len(inserted)
    return added, known


def _watched(conn: Connection, urls: Sequence[str]) -> set[str]:
    """Which of ``urls`` are sources already."""
    return set(conn.execute(select(sources.c.url).where(sources.c.url.in_(urls))).scalars())


def _label_taken(label: str, url: str) -> str:
    return (
        f"label {label!r} is already used by {mask_url(url)}; choose another label or leave it out"
    )


def set_retired(conn: Connection, source: Source, now: datetime, retired: bool) -> None:
    """Stop checking a source (its history stays), or with ``retired=False`` revive it."""
    values: dict[str, Any] = {"retired_at": now, "next_check_at": None}
    if not retired:
        values = {"retired_at": None, "next_check_at": now, "consecutive_failures": 0}
        if source.decay_from is not None:
            values["decay_from"] = now  # revived coverage starts its decay again
    conn.execute(update(sources).where(sources.c.id == source.id).values(**values))


def set_url(
    conn: Connection, source_id: int, url: str, now: datetime, allow_private: bool = False
) -> None:
    """A source's new URL. Its validators belonged to the old one and are dropped; it is
    due at once. Refused, naming the holder, when another source watches the URL."""
    holder = conn.execute(
        select(sources.c.id, sources.c.label, sources.c.url).where(sources.c.url == url)
    ).first()
    if holder is not None:
        name = holder.label or mask_url(holder.url)
        raise UsageError(f"{mask_url(url)} is already watched, as source {holder.id} ({name})")
    values: dict[str, Any] = {"url": url, "etag": None, "last_modified": None}
    if allow_private:
        row = conn.execute(select(sources.c.options).where(sources.c.id == source_id))
        values["options"] = {**(row.scalar_one() or {}), "allow_private": True}
    conn.execute(
        update(sources).where(sources.c.id == source_id).values(**values, next_check_at=now)
    )


def set_selector(
    conn: Connection, source_id: int, selector: str | None, exclude: tuple[str, ...]
) -> None:
    """Change what a source watches. Its validators and fingerprint are dropped, so the
    next check reads the page whole, and that text is marked as a new selection
    (``selector_changed``) rather than an edit."""
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
            options=options, etag=None, last_modified=None, last_raw_digest=None, body_hint=None
        )
    )


def remove(conn: Connection, source: Source) -> None:
    """Remove a source and its captures and versions (blobs stay until gc)."""
    ids = select(versions.c.id).where(versions.c.source_id == source.id)
    conn.execute(update(captures).where(captures.c.version_id.in_(ids)).values(version_id=None))
    conn.execute(delete(captures).where(captures.c.source_id == source.id))
    conn.execute(delete(versions).where(versions.c.source_id == source.id))
    conn.execute(update(sources).where(sources.c.found_by == source.id).values(found_by=None))
    conn.execute(delete(sources).where(sources.c.id == source.id))


def get(conn: Connection, ref: str | int) -> Source:
    """Find a source by id, URL or label."""
    ref_s = str(ref)
    cond = (sources.c.url == ref_s) | (sources.c.label == ref_s)
    if ref_s.isascii() and ref_s.isdigit() and can_be_id(int(ref_s)):  # "²" is a digit too
        cond = cond | (sources.c.id == int(ref_s))
    rows = conn.execute(select(sources).where(cond).order_by(sources.c.id)).mappings().all()
    if not rows:
        raise SourceNotFound(ref_s)
    return source_from_row(rows[0])


def every(conn: Connection) -> list[Source]:
    rows = conn.execute(select(sources).order_by(sources.c.id)).mappings().all()
    return [source_from_row(r) for r in rows]


def _checkable() -> list[Any]:
    """What ``check --all`` checks: every source of a fetched kind that is not retired."""
    return [sources.c.kind.not_in(NOT_FETCHED), sources.c.retired_at.is_(None)]


def iterate(
    reading: Reading, limit: int | None, page: int, checkable: bool = False
) -> Iterator[Source]:
    """Sources in id order, read a page at a time (flat memory at any size): those that
    existed when the first page was read, not ones added meanwhile (a feed's finds)."""
    where = _checkable() if checkable else []
    with reading() as conn:
        ceiling = conn.execute(select(func.max(sources.c.id))).scalar()
    if ceiling is None:
        return
    after, left = 0, limit
    while left is None or left > 0:
        size = page if left is None else min(page, left)
        query = (
            select(sources)
            .where(sources.c.id > after, sources.c.id <= ceiling, *where)
            .order_by(sources.c.id)
            .limit(size)
        )
        with reading() as conn:
            rows = conn.execute(query).mappings().all()
        yield from (source_from_row(r) for r in rows)
        if len(rows) < size:
            return
        after = rows[-1]["id"]
        left = None if left is None else left - len(rows)


def count_checkable(conn: Connection) -> int:
    query = select(func.count()).select_from(sources).where(*_checkable())
    return int(conn.execute(query).scalar_one())


def count_scanned(conn: Connection) -> int:
    """How many sources ``flags scan`` reads: archived pages and articles, retired or not."""
    query = select(func.count()).select_from(sources)
    query = query.where(sources.c.kind.in_(SCANNED), sources.c.current_version_id.is_not(None))
    return int(conn.execute(query).scalar_one())


def page(
    conn: Connection, search: str | None, kind: str | None, failing: bool, offset: int, limit: int
) -> tuple[list[Source], int]:
    """One page of sources in id order, filtered by a substring of the label or URL (as
    shown: never the password in it), a kind, or failing only; and how many match in
    all (the web view's listing)."""
    cond = []
    if search:
        like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cond.append(
            or_(
                shown_url(conn, sources.c.url).like(like, escape="\\"),
                sources.c.label.like(like, escape="\\"),
            )
        )
    if kind:
        cond.append(sources.c.kind == kind)
    if failing:
        cond.append(sources.c.consecutive_failures > 0)
    where = and_(*cond) if cond else true()
    total = conn.execute(select(func.count()).select_from(sources).where(where))
    count = int(total.scalar_one())
    query = select(sources).where(where).order_by(sources.c.id).offset(offset).limit(limit)
    return [source_from_row(r) for r in conn.execute(query).mappings().all()], count


def seed_articles(conn: Connection) -> list[Source]:
    """The story's seed articles (sources of kind seed)."""
    query = select(sources).where(sources.c.kind == SEED.name).order_by(sources.c.id)
    return [source_from_row(r) for r in conn.execute(query).mappings().all()]


def names(conn: Connection, ids: set[int]) -> dict[int, str]:
    """Label (or URL) of each of these sources that exists."""
    if not ids:
        return {}
    query = select(sources.c.id, sources.c.label, sources.c.url)
    rows = conn.execute(query.where(sources.c.id.in_(sorted(ids))))
    return {r.id: r.label or mask_url(r.url) for r in rows}


def due(conn: Connection, now: datetime) -> list[Source]:
    query = select(sources).where(due_condition(now))
    query = query.order_by(sources.c.next_check_at, sources.c.id)
    return [source_from_row(r) for r in conn.execute(query).mappings().all()]


def due_condition(now: datetime) -> Any:
    """The SQL condition for a source due at ``now``: its time has come, it is not
    retired, and its kind is fetched. ``due`` and the lease claims share it."""
    return and_(sources.c.next_check_at <= now, *_checkable())


# -- a feed's entries ----------------------------------------------------------


def known_entries(conn: Connection, feed_id: int, urls: Sequence[str]) -> set[str]:
    """Which of these entry URLs this feed has already seen."""
    if not urls:
        return set()
    query = select(feed_entries.c.url).where(
        feed_entries.c.feed_id == feed_id, feed_entries.c.url.in_(list(urls))
    )
    return set(conn.execute(query).scalars())


def record_entries(
    conn: Connection, feed_id: int, decisions: Sequence[EntryDecision], now: datetime
) -> list[Source]:
    """Record a feed's new entries and create the sources of the accepted ones. An
    entry whose URL is already a source is linked, not added: so is one another worker
    is adding at this moment (two feeds that list one new article, polled at once)."""
    created = []
    for d in decisions:
        decision, source_id = d.decision, None
        if d.spec is not None:
            source_id = _source_id(conn, d.spec.url)
            if source_id is None:
                source_id = _insert_if_new(conn, d.spec, now)
                if source_id is None:  # the other worker's, committed while this one waited
                    source_id = _source_id(conn, d.spec.url)
                else:
                    created.append(source_id)
            if source_id not in created:
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


# -- robots.txt of the sources' hosts --------------------------------------------


def robots_for(conn: Connection, origins: Sequence[str], now: datetime) -> dict[str, RobotsEntry]:
    """The still-fresh robots.txt of these origins: origin -> (status, body, expires)."""
    found: dict[str, RobotsEntry] = {}
    wanted = sorted(set(origins))
    for i in range(0, len(wanted), 500):
        query = select(robots).where(
            robots.c.origin.in_(wanted[i : i + 500]), robots.c.expires_at > now
        )
        for r in conn.execute(query):
            found[r.origin] = (r.status, r.body, r.expires_at)
    return found


def save_robots(conn: Connection, entries: dict[str, RobotsEntry], now: datetime) -> None:
    """Keep fetched robots.txt entries, replacing older ones, and a concurrent worker's
    entry for the same origin (two workers that checked one host both save it)."""
    conn.execute(
        insert_replacing(conn, robots),
        [
            {"origin": o, "status": s, "body": b, "fetched_at": now, "expires_at": e}
            for o, (s, b, e) in entries.items()
        ],
    )


def _values(spec: SourceSpec) -> dict[str, Any]:
    """A spec as the columns of its source row (the options column holds the rest)."""
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


def _source_id(conn: Connection, url: str) -> int | None:
    return conn.execute(select(sources.c.id).where(sources.c.url == url)).scalar()


def _insert_if_new(conn: Connection, spec: SourceSpec, now: datetime) -> int | None:
    """The new source's id, or None when its URL is a source already (another worker's,
    committed while this insert waited on it)."""
    row = _row(spec, _values(spec), now)
    statement = insert_ignoring_duplicates(conn, sources).values(**row).returning(sources.c.id)
    return conn.execute(statement).scalar()


def _row(spec: SourceSpec, values: dict[str, Any], now: datetime) -> dict[str, Any]:
    kind = kind_of(spec.kind)
    decays = spec.origin == "feed" and kind.coverage  # coverage a feed found ages
    return {
        "url": spec.url,
        "origin": spec.origin,
        "found_by": spec.found_by,
        "created_at": now,
        "next_check_at": now if kind.fetched else None,
        "decay_from": now if decays else None,
        "consecutive_failures": 0,
        **values,
    }
