"""A run over any number of sources holds only the ones in flight: ``check --all`` reads
its sources a page at a time as checks start, robots.txt entries from earlier runs are
looked up a chunk at a time, and a source added during the run is not read again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from pytest_httpserver import HTTPServer

from archiver import pipeline
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
    monkeypatch.setattr(pipeline, "ROBOTS_CHUNK", 4)
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
