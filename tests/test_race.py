"""Two checks of one source never race: ``check --all`` beside ``serve``, or two runs at
once, write each new text once. A check whose comparison went stale by the time it
wrote records ``superseded`` and nothing else; verify finds what a race once left."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Connection, func, insert, select
from werkzeug import Request, Response

from archiver import pipeline
from store.blobs import digest
from store.blobstore import put_blob
from store.claims import load, save_cached
from store.models import ChangeRecord, EntryDecision, SourceSpec
from store.repo import Store
from store.schema import blobs, changes, feed_entries, sources, versions
from store.sources import add as add_source
from store.sources import add_many, record_entries, robots_for, save_robots
from store.verify import verify
from tests.support import NOW, article_html
from tests.support.pipeline import OPTIONS

N = 24


@pytest.mark.slow
def test_two_runs_at_once_write_each_text_once(store: Store, httpserver: HTTPServer) -> None:
    edition = {"n": 1}

    def page(request: Request) -> Response:
        time.sleep(0.05)  # both runs have fetched before either writes
        n = request.path.rsplit("/", 1)[1]
        text = f"Edition {edition['n']} of page {n}: Meta said its capital spending would rise."
        html = article_html(f"Page {n}", [text, "A second sentence that stays the same here."])
        return Response(html, content_type="text/html; charset=utf-8")

    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    for i in range(N):
        httpserver.expect_request(f"/p/{i}").respond_with_handler(page)
        store.add_source(SourceSpec(url=httpserver.url_for(f"/p/{i}")), NOW)
    options = replace(OPTIONS, processes=0)
    fetch = replace(options.fetch, concurrency=N, per_host=N)
    options = replace(options, fetch=fetch)
    pipeline.check(store, store.list_sources(), options, clock=lambda: NOW)

    for edition["n"] in (2, 1, 2):  # a real edit, a real flip-back, and forward again
        outcomes: list[str] = []
        barrier = threading.Barrier(2)

        def one_run(outcomes: list[str] = outcomes, barrier: threading.Barrier = barrier) -> None:
            mine = Store(store.url)
            barrier.wait()
            results = pipeline.check(mine, mine.list_sources(), options, clock=lambda: NOW)
            outcomes.extend(r.outcome for r in results)
            mine.close()

        threads = [threading.Thread(target=one_run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(outcomes) == 2 * N
        wrote = sum(o in ("new_version", "reverted") for o in outcomes)
        assert wrote == N, sorted(outcomes)
        assert set(outcomes) <= {"new_version", "reverted", "superseded", "same_text"}
    for s in store.list_sources():
        texts = [v.text_digest for v in store.versions(s.id)]
        assert len(texts) == 2 and texts[0] != texts[1], s.url
        current = store.current_version(s)
        assert current is not None and current.number == 2
    with store.engine.connect() as conn:
        assert list(verify(conn)) == []


def test_verify_names_duplicates_and_reverts_to_the_current_version(store: Store) -> None:
    """What a race once left: the same text twice in a row, and a revert that 'returned'
    to the version that was already current."""
    from store.models import CaptureRecord, NewVersion, SourceUpdate

    sid = store.add_source(SourceSpec(url="http://example.org/r", label="r"), NOW)
    update = SourceUpdate(next_check_at=NOW, last_checked_at=NOW, consecutive_failures=0)
    for text in ("one", "two", "two"):
        capture = CaptureRecord(sid, NOW, 1, "new_version")
        store.add_version(NewVersion(text=text, raw=None), capture, update)
    v = {x.number: x.id for x in store.versions(sid)}
    record = ChangeRecord("revert", 0.0, "returned to version 2", [], {}, [])
    with store.engine.begin() as conn:
        for frm, to, kind in ((v[1], v[2], "edit"), (v[1], v[2], "revert")):
            conn.execute(
                insert(changes).values(
                    source_id=sid,
                    from_version_id=frm,
                    to_version_id=to,
                    kind=kind,
                    created_at=NOW,
                    significance=record.significance,
                    summary=record.summary,
                    reasons=record.reasons,
                    stats=record.stats,
                    units=record.units,
                )
            )
        assert conn.execute(select(sources.c.current_version_id)).scalar() == v[3]
        assert conn.execute(select(versions.c.id)).all()
        problems = list(verify(conn))
    assert [(p.kind, p.version) for p in problems] == [("duplicate", 3), ("revert", 2)]


ORIGIN = "http://127.0.0.1:9"
LATER = NOW + timedelta(days=1)
CLAIM = {"id": "c", "statements": [["en", "Meta keeps its next model closed."]]}


def _robots(store: Store) -> object:
    with store.reading() as conn:
        return robots_for(conn, [ORIGIN], NOW)[ORIGIN][:2]


# (what the first worker writes in its open transaction, what the second writes, what
# the store holds after both): each is one worker's end-of-run or start-of-run write.
CONCURRENT_WRITES = [
    pytest.param(
        lambda conn: save_robots(conn, {ORIGIN: (404, "", LATER)}, NOW),
        lambda store: store.save_robots({ORIGIN: (200, "User-agent: *", LATER)}, NOW),
        lambda store: _robots(store) == (200, "User-agent: *"),
        id="robots.txt of a host both checked",
    ),
    pytest.param(
        lambda conn: save_cached(conn, "probes", "k1", b"first", NOW),
        lambda store: store.save_cached("probes", "k2", b"second", NOW),
        lambda store: store.cached("probes", "k2") == b"second",
        id="the probes both fitted",
    ),
    pytest.param(
        lambda conn: load(conn, [CLAIM], NOW, "first"),
        lambda store: store.load_claims([CLAIM], NOW, "second"),
        lambda store: store.story_summary() == "second" and list(store.active_claims()) == ["c"],
        id="a claims file both reloaded",
    ),
]


@pytest.mark.parametrize(("first", "second", "after"), CONCURRENT_WRITES)
def test_two_workers_writing_one_row_at_once_both_succeed(
    store: Store,
    first: Callable[[Connection], None],
    second: Callable[[Store], None],
    after: Callable[[Store], bool],
) -> None:
    """Two workers on one PostgreSQL store write the same keyed row at once: the robots.txt
    of a host both checked, the probes both fitted, the claims both reloaded on a SIGHUP.
    Each used to delete the row and insert it again, so the second insert waited on the
    first's and then failed with a unique violation, ending that worker's run in an
    error. Now the last writer's row wins and neither fails (SQLite serializes the two)."""
    assert at_once(store, first, second) == []
    assert after(store)


def at_once(
    store: Store, first: Callable[[Connection], object], second: Callable[[Store], object]
) -> list[BaseException]:
    """``first`` in an open transaction, ``second`` (another worker) meanwhile, which
    waits on it; what ``second`` raised."""
    errors: list[BaseException] = []

    def other() -> None:
        try:
            second(store)
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    with store.transaction() as conn:
        first(conn)
        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.5)  # the second worker's write now waits on this one's
    thread.join(30)
    assert not thread.is_alive()
    return errors


def test_two_feeds_listing_one_new_article_polled_at_once_make_one_source(store: Store) -> None:
    """Two workers poll two feeds that list the same new article. Each looked the URL up,
    found no source and inserted one; on PostgreSQL the second insert waited on the
    first and failed on the URL's unique key, failing its feed's check. Now the second
    links the entry to the first one's source, as it does to any known source."""
    feeds = [
        store.add_source(SourceSpec(url=f"http://127.0.0.1:9/{n}.rss", kind="feed"), NOW)
        for n in ("a", "b")
    ]
    url = "http://127.0.0.1:9/story.html"

    def entry(feed: int) -> EntryDecision:
        spec = SourceSpec(url=url, kind="article", origin="feed", found_by=feed)
        return EntryDecision(url, "Story", None, "", "added", "topic matched", spec)

    made: list[list[int]] = []
    errors = at_once(
        store,
        lambda conn: made.append(
            [s.id for s in record_entries(conn, feeds[0], [entry(feeds[0])], NOW)]
        ),
        lambda s: made.append([x.id for x in s.record_entries(feeds[1], [entry(feeds[1])], NOW)]),
    )
    assert errors == []
    [source] = [s for s in store.list_sources() if s.url == url]
    assert made == [[source.id], []]  # the first made it; the second found it
    with store.reading() as conn:
        rows = conn.execute(
            select(feed_entries.c.feed_id, feed_entries.c.decision, feed_entries.c.source_id)
        ).all()
    assert sorted(tuple(r) for r in rows) == [
        (feeds[0], "added", source.id),
        (feeds[1], "known", source.id),
    ]


def test_two_workers_archiving_the_same_text_at_once_both_succeed(store: Store) -> None:
    """One wire story on two sites, archived by two workers at once: the blob is stored
    once by its digest, and the second worker's insert no longer fails on that key."""
    text = b"Meta said its next frontier model would keep its weights private."

    def put(conn: Connection) -> str:
        return put_blob(conn, store.options, text, None)

    def other(s: Store) -> str:
        with s.transaction() as conn:
            return put(conn)

    assert at_once(store, put, other) == []
    with store.reading() as conn:
        assert conn.execute(select(func.count()).select_from(blobs)).scalar_one() == 1
    assert store.read_blob(digest(text)) == text


def test_two_workers_reloading_one_watchlist_at_once_add_each_source_once(store: Store) -> None:
    """A SIGHUP to two `serve` workers: both import the seeds' new watched page at once.
    The second insert used to fail on the URL's key, and its reload with it; now it
    updates the source the first one added."""
    spec = SourceSpec(url="http://127.0.0.1:9/new.html", label="new")

    def add(conn: Connection) -> int:
        return add_source(conn, spec, NOW, update_existing=True)

    assert at_once(store, add, lambda s: s.add_source(spec, NOW, update_existing=True)) == []
    assert [(s.url, s.label) for s in store.list_sources()] == [(spec.url, "new")]


def test_a_label_two_workers_give_two_pages_at_once_goes_to_the_first(store: Store) -> None:
    """Two pages added at once under one label: the second is refused with the label
    named (on SQLite the writes take turns, and it finds the label taken)."""
    first = SourceSpec(url="http://127.0.0.1:9/a.html", label="same")
    second = SourceSpec(url="http://127.0.0.1:9/b.html", label="same")
    errors = at_once(
        store,
        lambda conn: add_source(conn, first, NOW, update_existing=False),
        lambda s: s.add_source(second, NOW),
    )
    assert [type(e).__name__ for e in errors] == ["UsageError"]
    assert "label 'same'" in str(errors[0])
    assert [s.url for s in store.list_sources()] == [first.url]


def test_two_imports_of_overlapping_lists_at_once_add_each_source_once(store: Store) -> None:
    """Two `sources import` runs at once whose files share a URL: each adds what the
    other did not, and the shared URL counts as already watched by the second."""
    a, b, c = (SourceSpec(url=f"http://127.0.0.1:9/{n}.html") for n in "abc")
    counts: list[tuple[int, int]] = []
    errors = at_once(
        store,
        lambda conn: counts.append(add_many(conn, [a, b], NOW)),
        lambda s: counts.append(s.add_sources([b, c], NOW)),
    )
    assert errors == []
    assert counts == [(2, 0), (1, 1)]
    assert sorted(s.url for s in store.list_sources()) == [a.url, b.url, c.url]


def test_an_import_whose_label_another_worker_takes_meanwhile_adds_nothing(store: Store) -> None:
    """`sources add --label same` commits while an import of a file with that label
    waits on it: the import is refused with the label named, and none of its sources
    stays (all or nothing)."""
    added = SourceSpec(url="http://127.0.0.1:9/a.html", label="same")
    imported = [
        SourceSpec(url="http://127.0.0.1:9/b.html"),
        SourceSpec(url="http://127.0.0.1:9/c.html", label="same"),
    ]
    errors = at_once(
        store,
        lambda conn: add_source(conn, added, NOW, update_existing=False),
        lambda s: s.add_sources(imported, NOW),
    )
    assert [type(e).__name__ for e in errors] == ["UsageError"]
    assert "label 'same'" in str(errors[0])
    assert [s.url for s in store.list_sources()] == [added.url]
