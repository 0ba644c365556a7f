"""A run over any number of sources holds only the ones in flight: ``check --all`` reads
its sources a page at a time as checks start, robots.txt entries from earlier runs are
looked up a chunk at a time, and a source added during the run is not read again."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from itertools import count

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import event
from werkzeug import Request, Response

from archiver import pipeline
from archiver.app import batching
from store.models import Source, SourceSpec
from store.repo import Store
from tests.support import NOW, article_html
from tests.support.pipeline import OPTIONS, PARAS

PAGE = article_html("A page among many", PARAS)


@pytest.fixture
def other_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


def _robots_requests(*servers: HTTPServer) -> int:
    return sum(1 for s in servers for req, _ in s.log if req.path == "/robots.txt")


def test_a_run_reads_its_sources_as_checks_start_and_robots_a_chunk_at_a_time(
    sqlite_store: Store,
    httpserver: HTTPServer,
    other_server: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = sqlite_store
    for server in (httpserver, other_server):
        server.expect_request("/robots.txt").respond_with_data("User-agent: *\nAllow: /\n")
    for n in range(30):  # the first 15 on one origin, the rest on another
        server = httpserver if n < 15 else other_server
        server.expect_request(f"/s{n}.html").respond_with_data(PAGE, content_type="text/html")
        store.add_source(SourceSpec(url=server.url_for(f"/s{n}.html"), label=f"s{n}"), NOW)
    monkeypatch.setattr(batching, "READ_AHEAD", 4)
    options = replace(OPTIONS, fetch=replace(OPTIONS.fetch, concurrency=2))  # 4 in flight

    def run() -> tuple[list[int], list[int]]:
        pulled: list[int] = []  # how many sources were read when each result came
        read = 0

        def counted() -> Iterator[Source]:
            nonlocal read
            for s in store.iter_sources(page=3, checkable=True):
                read += 1
                yield s

        done: list[int] = []

        def on_result(r: pipeline.CheckResult) -> None:
            done.append(r.source.id)
            pulled.append(read)

        kept = pipeline.check(
            store, counted(), options, clock=lambda: NOW, on_result=on_result, keep=False
        )
        assert kept == []  # keep=False: results go to on_result only
        return pulled, done

    pulled, done = run()
    assert sorted(done) == [s.id for s in store.list_sources()]  # each once
    # 4 checks in flight and a chunk of 4 read ahead: never the whole list at once.
    assert pulled[0] <= 4 + 4
    assert all(p <= k + 1 + 4 + 4 for k, p in enumerate(pulled))
    assert _robots_requests(httpserver, other_server) == 2
    run()
    # The second origin's robots.txt, first met in a later chunk, came from the store too.
    assert _robots_requests(httpserver, other_server) == 2


def test_sources_added_while_reading_are_not_read_and_only_checkable_ones_are(
    sqlite_store: Store,
) -> None:
    store = sqlite_store
    ids = [
        store.add_source(SourceSpec(url=f"https://example.org/{n}", label=f"p{n}"), NOW)
        for n in range(5)
    ]
    store.retire_source(store.get_source(ids[1]), NOW)
    assert store.count_checkable() == 4
    reading = store.iter_sources(page=2, checkable=True)
    first = next(reading)
    late = store.add_source(SourceSpec(url="https://example.org/late"), NOW)  # a feed's find
    rest = [s.id for s in reading]
    assert [first.id, *rest] == [ids[0], ids[2], ids[3], ids[4]]
    assert late not in rest
    assert [s.id for s in store.iter_sources()][-1] == late  # a new reading sees it


def test_a_run_reads_the_current_versions_it_compares_against_a_chunk_at_a_time(
    sqlite_store: Store, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A selector re-check compares with the current version: one query per chunk of
    sources reads them all, not one query per check, and the comparison is the same.
    A first check reads no version at all (its source has none), and no check reads
    back the version it has just written."""
    store = sqlite_store
    pages = {
        n: f"<html><body><article><p>Report {n}, first words.</p></article>" for n in range(12)
    }
    served = count()  # a clock outside the article: no two responses are the same bytes
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)

    def page(n: int) -> Callable[[Request], Response]:
        return lambda _request: Response(f"{pages[n]}<p>{next(served)}</p>", mimetype="text/html")

    for n in range(12):
        httpserver.expect_request(f"/p{n}.html").respond_with_handler(page(n))
        store.add_source(SourceSpec(url=httpserver.url_for(f"/p{n}.html"), select="article"), NOW)
    monkeypatch.setattr(batching, "READ_AHEAD", 4)
    statements: list[str] = []

    def log(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()))

    def check(hours: int) -> Counter[str]:
        sources = list(store.iter_sources(checkable=True))
        results = pipeline.check(
            store, sources, OPTIONS, clock=lambda: NOW + timedelta(hours=hours)
        )
        return Counter(r.outcome for r in results)

    event.listen(store.engine, "before_cursor_execute", log)
    assert check(1) == {"new_version": 12}
    assert not [s for s in statements if s.startswith("SELECT") and "FROM versions" in s]
    statements.clear()
    pages[3] = pages[3].replace("first", "second")
    assert check(2) == {"same_text": 11, "new_version": 1}
    event.remove(store.engine, "before_cursor_execute", log)
    by_id = [s for s in statements if "FROM versions WHERE versions.id IN" in s]
    one_by_one = [s for s in statements if "FROM versions WHERE versions.id = " in s]
    assert len(by_id) == 3  # 12 sources in chunks of 4
    assert len(one_by_one) == 0
    source = store.get_source(httpserver.url_for("/p3.html"))
    current = store.current_version(source)
    assert current is not None and current.number == 2
    assert store.read_text(current) == "Report 3, second words."
