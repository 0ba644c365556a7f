"""One source must never stop a run: hostile headers, absurd waits and bugs that a
page's bytes trigger all end as that source's failed capture, and the run goes on.

The property test drives a real loopback server that answers random statuses,
random header bytes and random bodies; after every run each healthy source has
its capture, and the next run succeeds.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import weakref
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver import pipeline
from archiver.app.schedule import MAX_INTERVAL, next_after_failure, parse_duration, parse_interval
from archiver.app.worker import cpu_limit
from archiver.net.fetch import (
    MAX_RETRY_AFTER,
    Fetcher,
    FetchRequest,
    parse_retry_after,
    sendable,
)
from store.errors import HTTPStatusError, TooSlow, UsageError
from store.models import Source, SourceSpec, Version
from store.repo import Store
from tests.support import NOW, article_html
from tests.support.faultserver import FAST, article, fault_server, scripted_server


def check_all(store: Store, now=NOW) -> dict[str, pipeline.CheckResult]:  # type: ignore[no-untyped-def]
    options = pipeline.CheckOptions(fetch=FAST, processes=0, claims=())
    results = pipeline.check(store, store.list_sources(), options, clock=lambda: now)
    return {r.source.url: r for r in results}


def test_unsendable_validators_and_endless_waits_do_not_stop_the_run(sqlite_store: Store) -> None:
    store = sqlite_store
    with fault_server() as base:
        urls = [f"{base}{p}" for p in ("/ok", "/latin1-etag", "/retry-forever", "/retry-unicode")]
        for url in urls:
            store.add_source(SourceSpec(url=url, interval_seconds=600), NOW)
        first = check_all(store)
        assert {u: r.outcome for u, r in first.items()} == {
            urls[0]: "new_version",
            urls[1]: "new_version",
            urls[2]: "failed",
            urls[3]: "failed",
        }
        by_url = {s.url: s for s in store.list_sources()}
        # An obs-text ETag is not kept: the next request could not carry it.
        assert by_url[urls[1]].etag is None and by_url[urls[1]].last_modified is None
        # A Retry-After of 3 million years waits a week at most.
        assert by_url[urls[2]].next_check_at <= NOW + timedelta(days=7, seconds=1)  # type: ignore[operator]
        later = NOW + timedelta(days=8)
        second = check_all(store, later)
        assert second[urls[0]].outcome == "same_bytes"
        assert second[urls[1]].outcome == "same_bytes"
        for url in urls:
            assert len(store.captures(by_url[url].id)) == 2, url


class _BrokenRead(Store):
    """A real store whose text read fails for one source, as a bug would."""

    victim = -1

    def read_text(self, version: Version) -> str:
        if version.source_id == self.victim:
            raise ValueError("a bug this page's bytes trigger")
        return super().read_text(version)


def test_an_unexpected_error_is_that_sources_capture(tmp_path: Path) -> None:
    store = _BrokenRead(f"sqlite:///{tmp_path / 'x.db'}")
    store.migrate()
    pages = {"/a": ["First text of page a."], "/b": ["First text of page b."]}
    with scripted_server() as (base, answers):

        def serve(path: str, paragraphs: list[str]) -> None:
            body = article_html(path, paragraphs).encode()
            answers[path] = (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            ) + body

        for path, paras in pages.items():
            serve(path, [p * 3 for p in paras])
            store.add_source(SourceSpec(url=base + path, interval_seconds=600), NOW)
        check_all(store)
        store.victim = store.get_source(base + "/a").id
        for path in pages:
            serve(path, [f"Second text of page {path}, with a new sentence to compare."])
        results = check_all(store, NOW + timedelta(hours=1))
    a, b = results[base + "/a"], results[base + "/b"]
    assert (a.outcome, a.error_class) == ("failed", "ValueError")
    assert a.error == "a bug this page's bytes trigger"
    assert b.outcome == "new_version"
    [last, _first] = store.captures(store.victim)[:2]
    assert last.error_class == "ValueError" and last.headers is None


def test_durations_and_waits_are_bounded() -> None:
    assert parse_interval("366d") == MAX_INTERVAL
    for bad in ("9999999d", "99999999999999999999", "367d", "²"):
        with pytest.raises(UsageError):
            parse_interval(bad)
    with pytest.raises(UsageError, match="too long"):
        parse_duration("9" * 30 + "s")
    assert parse_retry_after("99999999999999", NOW) == MAX_RETRY_AFTER
    assert parse_retry_after("²³", NOW) is None
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", NOW) == MAX_RETRY_AFTER
    assert next_after_failure(NOW, None, 10**6, 1e300) <= NOW + timedelta(days=7)
    assert next_after_failure(NOW, None, 1, float("nan")) == NOW + timedelta(hours=1)
    assert sendable('"caf\xe9"') is None and sendable('"x\r\nInjected: 1"') is None
    assert sendable('W/"abc"') == 'W/"abc"'


# -- the property: random answers from a real server -----------------------------

HEADER_NAMES = [b"ETag", b"Last-Modified", b"Retry-After"] * 2
HEADER_NAMES += [b"Location", b"Content-Type"]
HEADER_NAMES += [b"Content-Encoding", b"Content-Length", b"Cache-Control", b"Expires"]
BODIES = st.one_of(
    st.just(article("hostile").encode()),
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: article(t).encode("utf-8", "surrogatepass")),
    st.just(b"<?xml version='1.0'?><rss><channel><item><link>/x</link></item></channel></rss>"),
)
HEADER_VALUES = st.one_of(
    st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b),
    st.sampled_from(
        [
            b"99999999999999",
            b"-1",
            b"gzip",
            b"deflate, br",
            b"text/html; charset=x-bogus",
            b"/loop",
            b"http://169.254.169.254/",
            b"ftp://x/",
            b'"caf\xe9"',
            b"1e400",
            b"0",
        ]
    ),
)
STATUSES = st.one_of(
    st.sampled_from([200, 200, 200, 301, 304, 429, 503]), st.integers(min_value=100, max_value=999)
)
ANSWER = st.tuples(
    STATUSES,
    st.lists(st.tuples(st.sampled_from(HEADER_NAMES), HEADER_VALUES), max_size=6),
    BODIES,
    st.booleans(),  # declare Content-Length
)


def _raw(status: int, headers: list[tuple[bytes, bytes]], body: bytes, length: bool) -> bytes:
    head = b"HTTP/1.1 %d Hostile\r\n" % status
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    if length:
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"Connection: close\r\n\r\n" + body


HEALTHY = article_html("Healthy", ["A steady page that always answers the same way."] * 3).encode()
HEALTHY_ANSWER = (
    b'HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nETag: "h1"\r\n'
    b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(HEALTHY)
) + HEALTHY


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(st.tuples(ANSWER, ANSWER), min_size=1, max_size=4), ANSWER)
def test_random_answers_never_stop_a_run(
    hostile: list[tuple[tuple[Any, ...], tuple[Any, ...]]],
    robots: tuple[Any, ...],
) -> None:
    with tempfile.TemporaryDirectory() as tmp, scripted_server() as (base, answers):
        store = Store(f"sqlite:///{Path(tmp) / 'x.db'}")
        store.migrate()
        answers["/robots.txt"] = _raw(*robots)
        answers["/healthy"] = HEALTHY_ANSWER
        healthy = [base + "/healthy", base + "/healthy?again"]
        for i, _ in enumerate(hostile):  # every other one asks robots.txt first
            spec = SourceSpec(url=f"{base}/h{i}", robots=i % 2 == 1, interval_seconds=600)
            store.add_source(spec, NOW)
        for url in healthy:
            store.add_source(SourceSpec(url=url, robots=False, interval_seconds=600), NOW)
        sources: dict[str, Source] = {s.url: s for s in store.list_sources()}
        for run, now in enumerate((NOW, NOW + timedelta(hours=1))):
            for i, pair in enumerate(hostile):
                answers[f"/h{i}"] = _raw(*pair[run])
            results = check_all(store, now)
            assert set(results) == set(sources)
            for url, source in sources.items():
                assert len(store.captures(source.id)) == run + 1, url
            for url in healthy:
                assert results[url].outcome in ("new_version", "same_bytes", "not_modified")
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("processes", [0, 2])
def test_a_page_that_costs_too_much_cpu_is_too_slow_alone(tmp_path: Path, processes: int) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.migrate()
    big = article_html(
        "Big", [f"Paragraph {i} says Meta spent more on data centres." for i in range(30_000)]
    )
    small = article_html("Small", ["A short page that is cheap to read and compare."] * 3)
    with scripted_server() as (base, answers):
        for path, html in (("/big", big), ("/small", small)):
            body = html.encode()
            answers[path] = (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            ) + body
            store.add_source(SourceSpec(url=base + path, robots=False), NOW)
        fetch = replace(FAST, max_bytes=20_000_000)
        options = pipeline.CheckOptions(
            fetch=fetch, processes=processes, claims=(), max_cpu_seconds=1.0
        )
        results = {
            r.source.url: r
            for r in pipeline.check(store, store.list_sources(), options, clock=lambda: NOW)
        }
    big_result, small_result = results[base + "/big"], results[base + "/small"]
    assert (big_result.outcome, big_result.error_class) == ("failed", "TooSlow")
    # The big page takes about 4 s of CPU; the small one 0.17 s at most, on a process's
    # first extraction (trafilatura's own set-up), then 6 ms.
    assert "over 1s of CPU" in (big_result.error or "")
    assert small_result.outcome == "new_version", small_result.error
    store.close()


def test_every_error_crosses_a_process_boundary_unchanged() -> None:
    import pickle

    from store import errors

    samples = [
        errors.EmptyExtraction("the body is empty"),
        errors.HTTPStatusError(429, "http://example.org/", 30.0),
        errors.ConfigError("claimwatch.toml", "must be positive", 3, "service.tick"),
        errors.Superseded(7, 1, 2),
        errors.TooSlow("over 60s of CPU"),
        errors.SourceNotFound("nope"),
        errors.SchemaBehind("sqlite:///x.db", "0003", "0007"),
    ]
    for error in samples:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
        assert back.__dict__ == error.__dict__


def test_a_failed_fetch_names_the_url_actually_requested() -> None:
    with scripted_server() as (base, answers):
        answers["/News/NewsDetail__18725"] = b"HTTP/1.1 410 Gone\r\nContent-Length: 0\r\n\r\n"

        async def run() -> None:
            async with Fetcher(FAST) as f:
                await f.fetch(FetchRequest(url=f"{base}/News/NewsDetail__18725/.", robots=False))

        with pytest.raises(HTTPStatusError) as caught:
            asyncio.run(run())
    assert str(caught.value) == f"HTTP 410 from {base}/News/NewsDetail__18725"


def test_the_cpu_limit_firing_inside_a_callback_prints_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The timer's TooSlow can land in code that cannot raise, such as a weakref callback
    (SQLAlchemy has them): Python would print it as 'Exception ignored in ...' on
    stderr. It is the limit doing its job: nothing is printed, and the block still ends
    in one TooSlow."""
    printed: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", printed.append)

    class Held:
        pass

    def burn(_ref: object) -> None:  # most of the CPU is spent in callbacks
        sum(range(100_000))

    with pytest.raises(TooSlow, match=r"over 0\.05s of CPU"), cpu_limit(0.05):
        end = time.process_time() + 0.3
        while time.process_time() < end:
            held = Held()
            ref = weakref.ref(held, burn)
            del held  # the callback runs here, and the timer fires in it
    assert ref() is None
    assert printed == []
