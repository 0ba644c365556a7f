"""The versioned store on SQLite and PostgreSQL: exact round trips, integrity, atomicity."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, func, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy import text as sql

from store import repo as repo_module
from store import sources as sources_module
from store import writes as writes_module
from store.db import sqlite_path
from store.errors import (
    IntegrityError,
    SchemaAhead,
    SchemaBehind,
    SourceNotFound,
    StoreBusy,
    StoreMissing,
    UsageError,
)
from store.models import NewVersion, SourceSpec
from store.repo import Store, StoreOptions
from store.schema import SCHEMA_HEAD, blobs, captures, declare_partial_indexes, metadata, versions
from tests.support import NOW, reset_pg
from tests.support.records import capture, revisions, schedule


def add_source(store: Store, url: str = "http://127.0.0.1/a.html", label: str | None = "a") -> int:
    return store.add_source(SourceSpec(url=url, label=label), NOW)


def test_migrate_is_idempotent_and_matches_the_schema(store: Store) -> None:
    store.migrate()
    store.ensure_current()
    declare_partial_indexes()
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []
    # ensure_current reads the head from store.schema, without alembic: keep them equal.
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(repo_module.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_HEAD


def test_capture_ids_go_past_int4_after_an_upgrade(store: Store) -> None:
    """Every check writes a capture, so its id is the first to pass 2**31 - 1 on a
    large watchlist; on PostgreSQL migration 0014 widens the column and its sequence."""
    from alembic import command

    sid = add_source(store)
    store.record_capture(capture(sid), schedule())
    with store.transaction() as conn:  # an archive made before 0014, upgraded
        command.downgrade(store._alembic_config(conn), "0013")
    with store.transaction() as conn:
        command.upgrade(store._alembic_config(conn), "head")
    far = 2**31 + 5
    with store.transaction() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                sql("SELECT setval(pg_get_serial_sequence('captures', 'id'), :n)"), {"n": far}
            )
        else:  # SQLite gives the next row max(rowid) + 1
            conn.execute(
                sql(
                    f"INSERT INTO captures SELECT {far}, source_id, started_at, duration_ms, "
                    "outcome, http_status, final_url, content_type, bytes, raw_digest, encoding, "
                    "headers, attempts, error_class, error_message, version_id FROM captures"
                )
            )
    store.record_capture(capture(sid), schedule())
    ids = [capture_id for capture_id, _, _ in store.capture_log(sid)]
    assert (
        ids[0] == 1
        and ids[-1] > 2**31
        and len(ids) == (3 if store.engine.dialect.name == "sqlite" else 2)
    )


@pytest.mark.postgres
def test_version_change_and_flag_ids_go_past_int4_after_an_upgrade(pg_server: str) -> None:
    """After capture ids, version, change and flag ids grow fastest (a new version of a
    watched page makes one of each); migration 0015 widens them on PostgreSQL, with
    every column that holds one. SQLite's integers are 64-bit already."""
    from alembic import command

    from archiver.app.claimsfile import load_claims
    from archiver.claims.rules import claim_to_dict
    from store import alerts
    from store.models import ChangeRecord, FlagFilter, FlagRecord

    reset_pg(pg_server)
    store = Store(pg_server)
    store.migrate()
    claims = load_claims(Path(__file__).resolve().parent.parent / "seeds" / "claims.yaml")
    store.load_claims([claim_to_dict(claims[0])], NOW)
    sid = add_source(store)
    first = store.add_version(NewVersion("one", None), capture(sid), schedule())
    with store.transaction() as conn:  # an archive made before 0015, upgraded
        command.downgrade(store._alembic_config(conn), "0014")
    with store.transaction() as conn:
        command.upgrade(store._alembic_config(conn), "head")
        for table in ("versions", "changes", "flags"):
            conn.execute(
                sql("SELECT setval(pg_get_serial_sequence(:t, 'id'), :n)"),
                {"t": table, "n": 2**31 + 5},
            )
    change = ChangeRecord("edit", 0.9, "one -> two", [], {}, [])
    flag = FlagRecord(claims[0].id, "supports", 0.9, "two", [])
    second = store.add_version(
        NewVersion("two", None), capture(sid, 1), schedule(1), (first, "one"), change, [flag]
    )
    assert second.id > 2**31 and store.current_version(store.get_source(sid)) == second
    [stored_change] = store.changes(ids=[2**31 + 6])
    [stored_flag] = store.flags(FlagFilter(ids=(2**31 + 6,)))
    assert stored_change.to_version == 2 and stored_flag.evidence == "two"
    reviewed = store.review(stored_flag.id, "confirmed", NOW)
    assert reviewed.verdict == "confirmed"
    with store.reading() as conn:  # the verdict's example keeps the flag's id
        assert conn.execute(sql("SELECT flag_id FROM claim_examples")).scalars().all() == [
            stored_flag.id
        ]
    alerts.record(store, "flag", stored_flag.id, NOW, None)
    assert alerts.pending(store, 0.0, 0.0, ("supports",), NOW - timedelta(days=1))[1] == []
    assert store.flags(FlagFilter(ids=(2**63, 10**30))) == []  # past bigint: found nothing
    store.close()


def test_store_errors_carry_their_data(tmp_path: Path) -> None:
    """A missing store, a schema behind or ahead, and an unknown source each say what,
    as data (the CLI adds what to do, in one place: cli.base.main)."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(StoreMissing) as missing:
        Store(url).ensure_current()
    assert missing.value.url == url and not (tmp_path / "x.db").exists()
    store = Store(url)
    store.migrate()
    with pytest.raises(SourceNotFound) as unknown:
        store.get_source("zzz")
    assert unknown.value.ref == "zzz"
    for revision, error in (("0001", SchemaBehind), ("9999", SchemaAhead)):
        with store.transaction() as conn:
            conn.execute(sql("UPDATE alembic_version SET version_num = :v"), {"v": revision})
        with pytest.raises(error) as caught:
            store.ensure_current()
        assert (caught.value.current, caught.value.head) == (revision, SCHEMA_HEAD)
    store.close()


def test_round_trip_is_exact_through_chains_longer_than_k(db_url: str) -> None:
    store = Store(db_url, StoreOptions(max_chain_depth=4))
    store.migrate()
    sid = add_source(store)
    written = []
    for i, (text, raw) in enumerate(revisions(14)):
        written.append(
            store.add_version(NewVersion(text=text, raw=raw), capture(sid, i), schedule(i))
        )
    assert [v.number for v in store.versions(sid)] == list(range(1, 15))
    for v, (text, raw) in zip(written, revisions(14), strict=True):
        assert store.read_text(v) == text
        assert store.read_raw(v) == raw
    with store.engine.connect() as conn:
        depths = conn.execute(select(blobs.c.depth, blobs.c.codec)).all()
    assert max(d for d, _ in depths) == 4
    assert sum(codec == "zstd" for _, codec in depths) >= 2 * 3  # text and raw restart every 5
    store.close()


def test_a_checks_version_is_the_row_as_stored(db_url: str) -> None:
    """``add_version`` returns the version without reading it back: it must equal what the
    store reads, for a first version (written with no look-ups after the compare-and-set)
    and for later ones; and a first version of a source whose versions lost their current
    pointer is refused, not written as a second number 1."""
    store = Store(db_url)
    store.migrate()
    sid = add_source(store)
    written = []
    previous = None
    for i, (text, raw) in enumerate(revisions(3)):
        new = NewVersion(text=text, raw=raw, title=f"t{i}", authors=("A", "B"), language="ar")
        with store.batch() as b:
            v = b.add_version(new, capture(sid, i), schedule(i), previous, compare=True)
        written.append(v)
        previous = (v, text)
    assert written == store.versions(sid)
    assert written[0].number == 1 and written[0].captured_at.tzinfo is not None
    with store.transaction() as conn:
        conn.execute(sql("UPDATE sources SET current_version_id = NULL"))
    with pytest.raises(sa_exc.IntegrityError), store.batch() as b:
        b.add_version(NewVersion(text="x", raw=None), capture(sid, 9), schedule(9), compare=True)
    assert [v.number for v in store.versions(sid)] == [1, 2, 3]
    store.close()


def test_identical_content_is_stored_once(store: Store) -> None:
    a, b = add_source(store), add_source(store, "http://127.0.0.1/b.html", "b")
    store.add_version(
        NewVersion(text="same words", raw=b"<p>same words</p>"), capture(a), schedule()
    )
    store.add_version(
        NewVersion(text="same words", raw=b"<p>same words</p>"), capture(b), schedule()
    )
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(blobs)).scalar_one() == 2


def test_tampered_blob_is_detected(store: Store) -> None:
    sid = add_source(store)
    v1 = store.add_version(NewVersion(text="first text " * 50, raw=None), capture(sid), schedule())
    v2 = store.add_version(
        NewVersion(text="second text " * 50, raw=None), capture(sid, 1), schedule(1)
    )
    with store.engine.begin() as conn:
        data = conn.execute(
            select(blobs.c.data).where(blobs.c.digest == v1.text_digest)
        ).scalar_one()
        # Re-compress different bytes under the same digest: decompresses fine, digest mismatches.
        from store.blobs import compress

        conn.execute(
            update(blobs)
            .where(blobs.c.digest == v1.text_digest)
            .values(data=compress(b"forged" + bytes(data)[:5]))
        )
    with pytest.raises(IntegrityError, match=f"blob {v1.text_digest} does not match"):
        store.read_text(v1)
    with pytest.raises(IntegrityError):  # v2 is a delta on the forged base
        store.read_text(v2)


def test_a_long_delta_chain_reads_back_exactly_in_one_query(store: Store) -> None:
    """Every version of a long history reads back exactly, a chain of up to 50 deltas
    in one query each; a base that is gone, or a chain that loops, is a clear error."""
    sid = add_source(store)
    texts = [f"revision {n}: " + "the same long paragraph " * 40 for n in range(55)]
    made = []
    for n, text in enumerate(texts):
        made.append(store.add_version(NewVersion(text, None), capture(sid, n), schedule(n)))
    statements: list[str] = []

    def log(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", log)
    assert [store.read_text(v) for v in made] == texts
    event.remove(store.engine, "before_cursor_execute", log)
    assert len([q for q in statements if "FROM blobs" in q]) == len(texts)
    with store.engine.connect() as conn:
        depths = dict(conn.execute(select(blobs.c.digest, blobs.c.depth)).all())
    assert max(depths.values()) == 50 and depths[made[51].text_digest] == 0  # a new full copy
    deepest = made[50]
    with store.engine.begin() as conn:  # the chain loops back on itself
        conn.execute(
            update(blobs)
            .where(blobs.c.digest == made[0].text_digest)
            .values(base_digest=made[10].text_digest)
        )
    with pytest.raises(IntegrityError, match="too long or circular"):
        store.read_text(deepest)
    path = sqlite_path(store.url)
    if path is not None:  # a base that is gone (SQLite lets a foreign key be broken)
        with sqlite3.connect(path) as raw:
            raw.execute("DELETE FROM blobs WHERE digest = ?", (made[52].text_digest,))
        with pytest.raises(IntegrityError, match=f"base {made[52].text_digest} of blob"):
            store.read_text(made[53])


def test_flipped_byte_is_detected(store: Store) -> None:
    sid = add_source(store)
    v = store.add_version(
        NewVersion(text="a text to corrupt " * 30, raw=None), capture(sid), schedule()
    )
    with store.engine.begin() as conn:
        data = bytearray(
            conn.execute(select(blobs.c.data).where(blobs.c.digest == v.text_digest)).scalar_one()
        )
        data[len(data) // 2] ^= 0x01
        conn.execute(update(blobs).where(blobs.c.digest == v.text_digest).values(data=bytes(data)))
    with pytest.raises(IntegrityError):
        store.read_text(v)


def test_version_write_is_all_or_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = add_source(store)
    store.add_version(NewVersion(text="kept", raw=b"<p>kept</p>"), capture(sid), schedule())

    def crash(*_args: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(writes_module, "_update_source", crash)
    with pytest.raises(RuntimeError):
        store.add_version(NewVersion(text="lost", raw=b"<p>lost</p>"), capture(sid, 1), schedule(1))
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(versions)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(captures)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(blobs)).scalar_one() == 2
    assert store.read_text(store.latest_version(sid)) == "kept"  # type: ignore[arg-type]


def test_sources_resolve_by_id_url_and_label(store: Store) -> None:
    sid = add_source(store)
    assert store.get_source(str(sid)).id == sid
    assert store.get_source("http://127.0.0.1/a.html").id == sid
    assert store.get_source("a").id == sid
    with pytest.raises(UsageError, match="already watched"):
        add_source(store)
    with pytest.raises(UsageError, match="no source 'zzz'"):
        store.get_source("zzz")


def test_an_import_goes_in_batches_and_a_taken_label_adds_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``add_sources`` (`sources import`) looks up and inserts a batch at a time: URLs
    already watched are counted, not touched, across batch edges. A label another source
    holds used to end the import in an internal error (the label's unique key); it is a
    usage error naming the label and its source, and nothing of the file stays."""
    monkeypatch.setattr(sources_module, "IMPORT_BATCH", 3)
    first = [SourceSpec(url=f"http://127.0.0.1/{n}.html") for n in range(4)]
    assert store.add_sources(first, NOW) == (4, 0)
    more = [SourceSpec(url=f"http://127.0.0.1/{n}.html") for n in range(2, 9)]
    more[-1] = SourceSpec(url="http://127.0.0.1/8.html", label="eight")
    assert store.add_sources(more, NOW) == (5, 2)
    urls = [s.url for s in store.list_sources()]
    assert urls == [f"http://127.0.0.1/{n}.html" for n in range(9)]
    assert store.get_source("eight").url == "http://127.0.0.1/8.html"
    clash = [SourceSpec(url=f"http://127.0.0.1/new{n}.html") for n in range(5)]
    clash.append(SourceSpec(url="http://127.0.0.1/new5.html", label="eight"))
    with pytest.raises(UsageError) as raised:
        store.add_sources(clash, NOW)
    assert str(raised.value) == (
        "label 'eight' is already used by http://127.0.0.1/8.html; "
        "choose another label or leave it out"
    )
    assert [s.url for s in store.list_sources()] == urls


def test_remove_source_deletes_its_history(store: Store) -> None:
    sid = add_source(store)
    store.add_version(NewVersion(text="t", raw=None), capture(sid), schedule())
    store.remove_source(store.get_source("a"))
    assert store.list_sources() == []
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(captures)).scalar_one() == 0


def test_due_sources_follow_the_clock(store: Store) -> None:
    sid = add_source(store)
    assert [s.id for s in store.due_sources(NOW)] == [sid]
    store.record_capture(replace(capture(sid), outcome="same_text"), schedule())
    assert store.due_sources(NOW + timedelta(minutes=59)) == []
    assert [s.id for s in store.due_sources(NOW + timedelta(minutes=61))] == [sid]


def test_locked_sqlite_database_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "locked.db"
    store = Store(f"sqlite:///{path}", StoreOptions(busy_timeout_s=0.2))
    store.migrate()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreBusy, match="locked by another process"):
            store.add_source(SourceSpec(url="http://127.0.0.1/x"), NOW)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.close()


def test_sqlite_readers_never_wait_for_a_writer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """WAL lets readers run beside a writer: a read sees the last commit at once, while
    another process holds a write transaction (a check's batch, gc, an import)."""
    path = tmp_path / "busy.db"
    store = Store(f"sqlite:///{path}", StoreOptions(busy_timeout_s=0.2))
    store.migrate()
    sid = add_source(store)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE sources SET label = 'uncommitted' WHERE id = ?", (sid,))
    try:
        assert store.get_source(sid).label == "a"  # the committed state, without waiting
        assert [s.id for s in store.list_sources()] == [sid]
        with pytest.raises(StoreBusy):  # writers still queue behind the writer
            add_source(store, "http://127.0.0.1/b.html", "b")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.close()


def test_a_lease_is_a_visibility_timeout_and_spreading_is_set_based(store: Store) -> None:
    from store import leases

    ids = [store.add_source(SourceSpec(url=f"http://example.org/{i}"), NOW) for i in range(10)]
    first = leases.claim(store, "a", NOW, 60, 4)
    assert len(first.sources) == 4 and first.expired == 0
    # A leased row is not due: its next check moved to the lease's end.
    assert all(s.next_check_at == NOW + timedelta(seconds=60) for s in first.sources)
    rest = leases.claim(store, "b", NOW, 60, 100)
    assert {s.id for s in rest.sources} == set(ids) - {s.id for s in first.sources}
    assert leases.claim(store, "c", NOW + timedelta(seconds=59), 60, 100).sources == []
    # Worker a died: its leases are due again when they end, and counted as expired.
    again = leases.claim(store, "c", NOW + timedelta(seconds=61), 60, 100)
    assert {s.id for s in again.sources} == set(ids) and again.expired == 10
    assert leases.release(store, "c", NOW + timedelta(seconds=62)) == 10
    later = NOW + timedelta(hours=1)
    assert leases.spread_overdue(store, later, 7) == 10
    for s in store.list_sources():
        assert s.next_check_at == later + timedelta(seconds=s.id % 7), s.id


def test_status_counts_large_tables_from_estimates_on_postgresql(store: Store) -> None:
    for i in range(3):
        store.add_source(SourceSpec(url=f"http://example.org/{i}"), NOW)
    exact = store.status(NOW)
    assert (exact.sources, exact.approximate) == (3, False)
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as conn:
            conn.execute(sql("ANALYZE"))
        rough = store.status(NOW, exact_up_to=0)
        assert rough.approximate and rough.sources == 3  # ANALYZE saw every row
    else:
        assert not store.status(NOW, exact_up_to=0).approximate  # SQLite always counts


def test_listings_stream_in_pages(store: Store) -> None:
    for i in range(25):
        store.add_source(SourceSpec(url=f"http://example.org/{i}"), NOW)
    assert [s.url for s in store.iter_sources(page=4)] == [s.url for s in store.list_sources()]
    assert len(list(store.iter_sources(limit=10, page=3))) == 10


def test_the_matcher_cache_keeps_one_entry_per_kind_by_its_key(store: Store) -> None:
    now = NOW
    assert store.cached("probes", "k1") is None
    store.save_cached("probes", "k1", b"\x00first", now)
    assert store.cached("probes", "k1") == b"\x00first"
    assert store.cached("probes", "k2") is None  # computed from other inputs: not used
    store.save_cached("probes", "k2", b"second", now)
    assert store.cached("probes", "k2") == b"second"
    assert store.cached("probes", "k1") is None  # replaced, not kept beside
