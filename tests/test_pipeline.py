"""One check end to end: loopback server -> fetch -> extract -> normalize -> store."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer

from archiver import pipeline
from archiver.app import batching
from archiver.app import pool as pool_module
from store.models import SourceSpec
from store.repo import Store
from tests.support import NOW, article_html, pool_workers
from tests.support.pipeline import OPTIONS, PARAS, Page, run, serve


def test_outcomes_new_same_bytes_same_text_and_new(store: Store, httpserver: HTTPServer) -> None:
    page = Page(article_html("Meta closes its next model", PARAS))
    url = serve(httpserver, "/a.html", page)
    store.add_source(SourceSpec(url=url, label="a", interval_seconds=600), NOW)

    first = run(store, "a")
    assert (first.outcome, first.version) == ("new_version", 1)
    assert run(store, "a", 1).outcome == "same_bytes"

    page.html = article_html(
        "Meta closes its next model", PARAS, extra="<aside>Share this 12 times</aside>"
    )
    assert run(store, "a", 2).outcome == "same_text"

    page.html = article_html(
        "Meta closes its next model", [*PARAS, "Meta declined to comment further."]
    )
    third = run(store, "a", 3)
    assert (third.outcome, third.version) == ("new_version", 2)

    versions = store.versions(store.get_source("a").id)
    assert [v.number for v in versions] == [1, 2]
    assert versions[0].title == "Meta closes its next model"
    assert versions[0].authors == ["Rana Haddad"]
    assert versions[0].language == "en"
    assert "Meta declined to comment further." in store.read_text(versions[1])
    assert store.read_raw(versions[1]) == page.html.encode()
    outcomes = [c.outcome for c in store.captures(store.get_source("a").id)]
    assert outcomes == ["new_version", "same_text", "same_bytes", "new_version"]
    source = store.get_source("a")
    assert source.next_check_at == NOW + timedelta(minutes=3, seconds=600)


def test_volatile_text_inside_the_article_is_ignored(store: Store, httpserver: HTTPServer) -> None:
    page = Page(article_html("Llama licence update", [*PARAS, "Updated 3 minutes ago"]))
    url = serve(httpserver, "/v.html", page)
    store.add_source(SourceSpec(url=url, label="v", ignore=(r"Reading time: \d+ min",)), NOW)
    assert run(store, "v").outcome == "new_version"
    page.html = article_html(
        "Llama licence update", [*PARAS, "Updated 41 minutes ago", "Reading time: 4 min"]
    )
    assert run(store, "v", 1).outcome == "same_text"


def test_304_is_an_unchanged_capture(store: Store, httpserver: HTTPServer) -> None:
    page = Page(article_html("Meta capex", PARAS), etag=True)
    url = serve(httpserver, "/e.html", page)
    store.add_source(SourceSpec(url=url, label="e"), NOW)
    assert run(store, "e").outcome == "new_version"
    assert run(store, "e", 1).outcome == "not_modified"
    assert page.conditional == 1
    assert len(store.versions(store.get_source("e").id)) == 1


def test_failure_is_a_capture_row_and_backs_off(store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/down").respond_with_data("down", status=503)
    store.add_source(
        SourceSpec(url=httpserver.url_for("/down"), label="down", interval_seconds=600), NOW
    )
    first = run(store, "down")
    assert first.failed and first.error_class == "HTTPStatusError" and first.status == 503
    [cap] = store.captures(store.get_source("down").id)
    assert (cap.outcome, cap.error_class, cap.attempts, cap.http_status) == (
        "failed",
        "HTTPStatusError",
        2,
        503,
    )
    s1 = store.get_source("down")
    assert s1.consecutive_failures == 1
    run(store, "down", 10)
    s2 = store.get_source("down")
    assert s2.consecutive_failures == 2
    gap1 = s1.next_check_at - NOW  # type: ignore[operator]
    gap2 = s2.next_check_at - (NOW + timedelta(minutes=10))  # type: ignore[operator]
    assert gap2 == 2 * gap1


def test_empty_page_is_an_extraction_failure(store: Store, httpserver: HTTPServer) -> None:
    url = serve(httpserver, "/empty.html", Page("<html><body><nav>Home</nav></body></html>"))
    store.add_source(SourceSpec(url=url, label="empty"), NOW)
    result = run(store, "empty")
    assert result.failed and result.error_class == "EmptyExtraction"
    assert store.versions(store.get_source("empty").id) == []


@pytest.mark.slow
def test_many_sources_through_the_process_pool(store: Store, httpserver: HTTPServer) -> None:
    for i in range(4):
        serve(
            httpserver,
            f"/p{i}.html",
            Page(article_html(f"Story {i}", [f"Paragraph {i}: {p}" for p in PARAS])),
        )
        store.add_source(SourceSpec(url=httpserver.url_for(f"/p{i}.html"), label=f"p{i}"), NOW)
    httpserver.expect_request("/missing.html").respond_with_data("no", status=404)
    store.add_source(SourceSpec(url=httpserver.url_for("/missing.html"), label="missing"), NOW)
    results = pipeline.check(
        store, store.list_sources(), replace(OPTIONS, processes=2), clock=lambda: NOW
    )
    outcomes = sorted(r.outcome for r in results)
    assert outcomes == ["failed", "new_version", "new_version", "new_version", "new_version"]
    for i in range(4):
        [v] = store.versions(store.get_source(f"p{i}").id)
        assert store.read_text(v).startswith(f"Story {i}")


@pytest.mark.slow
def test_a_backlog_of_first_extractions_gets_a_helper_worker_and_rechecks_do_not(
    store: Store, httpserver: HTTPServer
) -> None:
    """A first archive queues a full extraction for every page while the fetch loop
    idles: one more worker takes first extractions while they queue up. A re-check
    cycle, whose extractions compare against a version, keeps the pool's own size,
    and the helper is gone once the burst ends."""
    pool = pool_module.ExtractionPool()  # the default size, as `check --all` and `serve` run
    if not pool.helps:
        pytest.skip("one core: a helper worker would have no core of its own")
    pages = []
    for i in range(30):
        pages.append(Page(article_html(f"Story {i}", [f"Part {i}: {p}" for p in PARAS] * 3)))
        serve(httpserver, f"/s{i}.html", pages[-1])
        store.add_source(SourceSpec(url=httpserver.url_for(f"/s{i}.html"), label=f"s{i}"), NOW)
    seen: set[int] = set()
    options = replace(OPTIONS, processes=None)

    def check(minutes: int) -> list[pipeline.CheckResult]:
        seen.clear()
        when = NOW + timedelta(minutes=minutes)
        return pipeline.check(
            store,
            store.list_sources(),
            options,
            clock=lambda: when,
            pool=pool,
            on_result=lambda _r: seen.update(pool_workers()),
        )

    try:
        assert {r.outcome for r in check(0)} == {"new_version"}
        assert len(seen) == pool.processes + 1  # the pool's workers and the helper
        pool.end_burst()
        deadline = time.monotonic() + 10
        while len(pool_workers()) > pool.processes and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(pool_workers()) == pool.processes
        for page in pages:  # every page edited: every re-check extracts again
            page.html = page.html.replace("Part ", "Part, revised, ")
        assert {r.outcome for r in check(60)} == {"new_version"}
        assert len(seen) == pool.processes
    finally:
        pool.close()


def test_a_worker_finishes_its_job_through_ctrl_c() -> None:
    """Ctrl-C reaches every process of the terminal's group. A worker ignores it, so
    that ``serve`` can finish its running checks and a command stops its own pool;
    a worker used to die mid-job with a KeyboardInterrupt traceback."""
    import signal

    executor = pool_module.spawn(1)
    try:
        pid = executor.submit(os.getpid).result(timeout=60)
        job = executor.submit(time.sleep, 1.5)
        time.sleep(0.5)
        os.kill(pid, signal.SIGINT)
        assert job.result(timeout=60) is None  # finished, not broken
        assert executor.submit(os.getpid).result(timeout=60) == pid  # the same worker
    finally:
        executor.shutdown(wait=True)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, asyncio.CancelledError])
@pytest.mark.parametrize("worker", ["executor", "helper"])
def test_ctrl_c_ends_a_pools_running_jobs_instead_of_waiting_for_them(
    interrupt: type[BaseException], worker: str
) -> None:
    """Workers ignore SIGINT, so a command's Ctrl-C must end them itself: leaving the
    pool by KeyboardInterrupt, or by the CancelledError that Ctrl-C raises inside
    ``check``'s event loop, terminates a job that would run ten minutes, in a worker
    or in the helper of a first archive (`check --all` waited for it: 27 s)."""
    import threading
    from concurrent.futures.process import BrokenProcessPool

    if worker == "helper" and (os.cpu_count() or 1) < 2:
        pytest.skip("a pool has a helper only on 2 or more cores")
    pool = pool_module.ExtractionPool()
    jobs = []

    def interrupted() -> None:
        with pytest.raises(interrupt), pool:
            executor = getattr(pool, worker)()
            assert executor is not None
            jobs.append(executor.submit(time.sleep, 600))
            while not jobs[0].running():
                time.sleep(0.05)
            raise interrupt

    thread = threading.Thread(target=interrupted)
    thread.start()
    thread.join(120)  # not ten minutes
    assert not thread.is_alive()
    assert isinstance(jobs[0].exception(timeout=0), BrokenProcessPool)


def test_only_a_pool_of_the_default_size_has_a_helper() -> None:
    """A configured size is the user's word, and a pool of none extracts in process."""
    assert pool_module.ExtractionPool(2).helper() is None
    assert pool_module.ExtractionPool(0).helper() is None
    pool = pool_module.ExtractionPool(2)
    pool.resize(None)
    assert pool.helps == ((os.cpu_count() or 1) > 1)
    pool.resize(3)
    assert not pool.helps and pool.helper() is None


@pytest.mark.parametrize("declared", ["utf-8", "iso-8859-1", "no-such-charset"])
def test_arabic_page_with_a_lying_charset(
    store: Store, httpserver: HTTPServer, declared: str
) -> None:
    html = article_html(
        "ميتا تغلق نموذجها القادم",
        [
            "قالت ميتا إن نموذجها القادم لن يُتاح مجانًا للمطورين، في تحول واضح عن نهجها السابق.",
            "وأضافت الشركة أنها ستنفق نحو 65 مليار دولار على البنية التحتية للذكاء الاصطناعي.",
        ],
        lang="ar",
    ).replace('<meta charset="utf-8">', "")
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/ar.html").respond_with_data(
        html.encode("cp1256"), content_type=f"text/html; charset={declared}"
    )
    store.add_source(SourceSpec(url=httpserver.url_for("/ar.html"), label="ar"), NOW)
    result = run(store, "ar")
    assert result.outcome == "new_version", result.error
    [v] = store.versions(store.get_source("ar").id)
    assert "65 مليار دولار" in store.read_text(v)
    assert v.language == "ar"


def test_new_version_stores_its_change_in_the_same_transaction(
    store: Store, httpserver: HTTPServer
) -> None:
    page = Page(article_html("Meta capex", PARAS))
    url = serve(httpserver, "/c.html", page)
    store.add_source(SourceSpec(url=url, label="c"), NOW)
    run(store, "c")
    assert store.changes() == []  # a first version has nothing to differ from
    page.html = article_html("Meta capex", [PARAS[0], PARAS[1].replace("65", "72"), PARAS[2]])
    assert run(store, "c", 5).outcome == "new_version"
    [change] = store.changes()
    assert (change.from_version, change.to_version, change.kind) == (1, 2, "edit")
    assert change.created_at == NOW + timedelta(minutes=5)
    assert change.significance >= 0.5
    assert "number changed: $65 billion -> $72 billion" in change.reasons
    [unit] = change.units
    assert unit["kind"] == "modified" and "$72 billion" in unit["new"]


def test_flip_back_is_a_return_not_a_new_version(store: Store, httpserver: HTTPServer) -> None:
    a = article_html("Meta and Llama", PARAS)
    b = article_html("Meta and Llama", [*PARAS, "A rotating teaser sentence appears here today."])
    page = Page(a)
    url = serve(httpserver, "/ab.html", page)
    store.add_source(SourceSpec(url=url, label="ab"), NOW)
    assert run(store, "ab").outcome == "new_version"
    page.html = b
    assert run(store, "ab", 1).outcome == "new_version"
    page.html = a
    back = run(store, "ab", 2)
    assert (back.outcome, back.version) == ("reverted", 1)
    page.html = a + "<!-- cache buster -->"
    assert run(store, "ab", 3).outcome == "same_text"  # compared with version 1, the current one
    source = store.get_source("ab")
    assert [v.number for v in store.versions(source.id)] == [1, 2]
    kinds = [(c.kind, c.from_version, c.to_version) for c in store.changes(source_id=source.id)]
    assert kinds == [("revert", 2, 1), ("edit", 1, 2)]
    # A real edit after the flip-back is diffed against version 1, the text the page shows.
    page.html = article_html("Meta and Llama", [*PARAS, "Meta confirmed the plan on Tuesday."])
    assert run(store, "ab", 4).version == 3
    latest = store.changes(source_id=source.id)[0]
    assert (latest.from_version, latest.to_version) == (1, 3)
    assert [u["kind"] for u in latest.units if u["new"] and "teaser" in u["new"]] == []


def test_a_chrome_only_change_skips_extraction(store: Store, httpserver: HTTPServer) -> None:
    page = Page(article_html("Meta capex", PARAS, extra="<aside>Read by 10 people</aside>"))
    url = serve(httpserver, "/cheap.html", page)
    store.add_source(SourceSpec(url=url, label="cheap"), NOW)
    first = run(store, "cheap")
    assert (first.outcome, first.extracted) == ("new_version", True)
    assert store.get_source("cheap").body_hint["path"] == "/html/body/main/article"  # type: ignore[index]
    page.html = article_html("Meta capex", PARAS, extra="<aside>Read by 11 people</aside>")
    cheap = run(store, "cheap", 1)
    assert (cheap.outcome, cheap.extracted) == ("same_text", False)
    page.html = article_html("Meta capex", [*PARAS, "Meta declined to comment."])
    edited = run(store, "cheap", 2)
    assert (edited.outcome, edited.version, edited.extracted) == ("new_version", 2, True)
    outcomes = [c.outcome for c in store.captures(store.get_source("cheap").id)]
    assert outcomes == ["new_version", "same_text", "new_version"]


def test_one_failed_write_does_not_sink_the_batch(
    store: Store, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store.errors import StoreError
    from store.writes import Batch

    for name in ("w1", "w2", "w3"):
        url = serve(httpserver, f"/{name}.html", Page(article_html(f"Meta {name}", PARAS)))
        store.add_source(SourceSpec(url=url, label=name), NOW)
    real = Batch.add_version
    w2 = store.get_source("w2").id

    def broken(self: Batch, new, capture, *args, **kw):  # type: ignore[no-untyped-def]
        if capture.source_id == w2:
            raise StoreError("disk full (simulated)")
        return real(self, new, capture, *args, **kw)

    monkeypatch.setattr(Batch, "add_version", broken)
    # The three writes share one batch however slow the machine: it commits when the
    # third arrives (by default, after 50 ms, which a busy machine can outlast).
    real_init = batching.Writes.__init__
    monkeypatch.setattr(
        batching.Writes,
        "__init__",
        lambda self, store: real_init(self, store, size=3, delay=60.0),
    )
    seen: list[str] = []
    with pytest.raises(StoreError, match="disk full"):
        pipeline.check(
            store,
            store.list_sources(),
            replace(OPTIONS, processes=0),
            clock=lambda: NOW,
            on_result=lambda r: seen.append(r.source.name),
        )
    assert sorted(seen) == ["w1", "w3"]  # reported only once committed
    for name, count in (("w1", 1), ("w2", 0), ("w3", 1)):
        assert len(store.versions(store.get_source(name).id)) == count
