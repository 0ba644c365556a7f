"""The fetcher against a real loopback HTTP server (pytest-httpserver)."""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from dataclasses import replace
from functools import partial
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from archiver.net.fetch import Fetcher, FetchOptions, FetchRequest, FetchResult
from store.errors import (
    BadResponse,
    BlockedAddress,
    BodyTooLarge,
    ConnectFailed,
    FetchTimeout,
    HTTPStatusError,
    RobotsDisallowed,
    TooManyRedirects,
    UnsupportedContentType,
    UnsupportedURL,
)

OPTS = FetchOptions(
    allow_private=True,
    host_delay=0,
    backoff_base=0.01,
    max_attempts=3,
    read_timeout=2,
    total_timeout=5,
)
PAGE = "<html><body><article><p>Hello</p></article></body></html>"


def fetch(
    url: str, options: FetchOptions = OPTS, sleeps: list[float] | None = None, **kw: object
) -> FetchResult:
    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    async def run() -> FetchResult:
        async with Fetcher(options, sleep=sleep) as f:
            return await f.fetch(FetchRequest(url=url, **kw))  # type: ignore[arg-type]

    return asyncio.run(run())


@pytest.fixture(autouse=True)
def no_robots(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)


def requests_to(httpserver: HTTPServer, path: str) -> list[Request]:
    return [req for req, _resp in httpserver.log if req.path == path]


def test_plain_get_identifies_itself(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a.html").respond_with_data(
        PAGE, content_type="text/html; charset=utf-8"
    )
    result = fetch(httpserver.url_for("/a.html"))
    assert result.status == 200
    assert result.body == PAGE.encode()
    assert result.content_type == "text/html"
    assert result.charset == "utf-8"
    ua = requests_to(httpserver, "/a.html")[0].headers["User-Agent"]
    assert ua.startswith("claimwatch/")


def test_etag_conditional_request_gets_304(httpserver: HTTPServer) -> None:
    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(PAGE, content_type="text/html", headers={"ETag": '"v1"'})

    httpserver.expect_request("/e.html").respond_with_handler(handler)
    first = fetch(httpserver.url_for("/e.html"))
    assert first.status == 200 and first.etag == '"v1"'
    second = fetch(httpserver.url_for("/e.html"), etag=first.etag)
    assert second.not_modified and second.body == b""


def test_last_modified_conditional_request(httpserver: HTTPServer) -> None:
    stamp = "Mon, 14 Jul 2025 09:00:00 GMT"

    def handler(request: Request) -> Response:
        if request.headers.get("If-Modified-Since") == stamp:
            return Response(status=304)
        return Response(PAGE, content_type="text/html", headers={"Last-Modified": stamp})

    httpserver.expect_request("/lm.html").respond_with_handler(handler)
    first = fetch(httpserver.url_for("/lm.html"))
    assert first.last_modified == stamp
    assert fetch(httpserver.url_for("/lm.html"), last_modified=stamp).not_modified


def test_redirects_are_followed_and_recorded(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": "/mid"}
    )
    httpserver.expect_request("/mid").respond_with_data(
        "", status=302, headers={"Location": "/new"}
    )
    httpserver.expect_request("/new").respond_with_data(PAGE, content_type="text/html")
    result = fetch(httpserver.url_for("/old"))
    assert result.final_url == httpserver.url_for("/new")
    assert result.redirects == (httpserver.url_for("/mid"), httpserver.url_for("/new"))


def test_redirect_loop_is_named(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data("", status=301, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=301, headers={"Location": "/a"})
    with pytest.raises(TooManyRedirects, match="redirect loop"):
        fetch(httpserver.url_for("/a"))


def test_redirect_chain_longer_than_allowed(httpserver: HTTPServer) -> None:
    for i in range(4):
        httpserver.expect_request(f"/r{i}").respond_with_data(
            "", status=302, headers={"Location": f"/r{i + 1}"}
        )
    with pytest.raises(TooManyRedirects, match="more than 2 redirects"):
        fetch(httpserver.url_for("/r0"), replace(OPTS, max_redirects=2))


def test_redirect_to_other_scheme_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/ftp").respond_with_data(
        "", status=302, headers={"Location": "ftp://example.org/x"}
    )
    with pytest.raises(UnsupportedURL, match="only http and https"):
        fetch(httpserver.url_for("/ftp"))


def test_read_timeout_is_retried_then_fails(httpserver: HTTPServer) -> None:
    def slow(_request: Request) -> Response:
        time.sleep(1.0)
        return Response(PAGE, content_type="text/html")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    opts = replace(OPTS, read_timeout=0.2, max_attempts=2)
    with pytest.raises(FetchTimeout) as info:
        fetch(httpserver.url_for("/slow"), opts)
    assert info.value.attempts == 2  # type: ignore[attr-defined]


def test_total_deadline_applies(httpserver: HTTPServer) -> None:
    def slow(_request: Request) -> Response:
        time.sleep(1.0)
        return Response(PAGE, content_type="text/html")

    httpserver.expect_request("/deadline").respond_with_handler(slow)
    opts = replace(OPTS, read_timeout=5, total_timeout=0.3, max_attempts=1)
    with pytest.raises(FetchTimeout, match="in total"):
        fetch(httpserver.url_for("/deadline"), opts)


def test_404_is_not_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone").respond_with_data("no", status=404)
    with pytest.raises(HTTPStatusError) as info:
        fetch(httpserver.url_for("/gone"))
    assert info.value.status == 404
    assert len(requests_to(httpserver, "/gone")) == 1


def test_500_is_retried_with_backoff(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/err").respond_with_data("boom", status=500)
    sleeps: list[float] = []
    with pytest.raises(HTTPStatusError) as info:
        fetch(httpserver.url_for("/err"), sleeps=sleeps)
    assert info.value.status == 500
    assert len(requests_to(httpserver, "/err")) == 3
    assert sleeps == [0.01, 0.02]


def test_500_then_success_recovers(httpserver: HTTPServer) -> None:
    calls = []

    def flaky(_request: Request) -> Response:
        calls.append(1)
        if len(calls) == 1:
            return Response("boom", status=503)
        return Response(PAGE, content_type="text/html")

    httpserver.expect_request("/flaky").respond_with_handler(flaky)
    result = fetch(httpserver.url_for("/flaky"))
    assert result.status == 200 and result.attempts == 2


def test_429_honours_retry_after(httpserver: HTTPServer) -> None:
    calls = []

    def limited(_request: Request) -> Response:
        calls.append(1)
        if len(calls) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "7"})
        return Response(PAGE, content_type="text/html")

    httpserver.expect_request("/limited").respond_with_handler(limited)
    sleeps: list[float] = []
    result = fetch(httpserver.url_for("/limited"), sleeps=sleeps)
    assert result.status == 200
    assert sleeps == [7.0]


def test_429_with_long_retry_after_gives_up_and_keeps_it(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/later").respond_with_data(
        "", status=429, headers={"Retry-After": "3600"}
    )
    sleeps: list[float] = []
    with pytest.raises(HTTPStatusError) as info:
        fetch(httpserver.url_for("/later"), sleeps=sleeps)
    assert info.value.retry_after == 3600.0
    assert sleeps == []


def test_body_over_cap_is_cut_off(httpserver: HTTPServer) -> None:
    big = "<p>" + "x" * 200_000 + "</p>"

    def chunked(_request: Request) -> Response:
        return Response(
            (big[i : i + 8192] for i in range(0, len(big), 8192)), content_type="text/html"
        )

    httpserver.expect_request("/big").respond_with_handler(chunked)
    with pytest.raises(BodyTooLarge, match="more than the cap"):
        fetch(httpserver.url_for("/big"), replace(OPTS, max_bytes=50_000))


def test_declared_length_over_cap_is_refused_before_reading(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/declared").respond_with_data("x" * 60_000, content_type="text/html")
    with pytest.raises(BodyTooLarge, match="declares 60000 bytes"):
        fetch(httpserver.url_for("/declared"), replace(OPTS, max_bytes=50_000))


def test_non_html_type_is_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/img.png").respond_with_data(
        b"\x89PNG\r\n", content_type="image/png"
    )
    with pytest.raises(UnsupportedContentType, match="image/png"):
        fetch(httpserver.url_for("/img.png"))


def test_xhtml_and_plain_text_are_accepted(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data(PAGE, content_type="application/xhtml+xml")
    httpserver.expect_request("/LICENSE").respond_with_data(
        "LICENSE TEXT", content_type="text/plain"
    )
    assert fetch(httpserver.url_for("/x")).content_type == "application/xhtml+xml"
    assert fetch(httpserver.url_for("/LICENSE")).body == b"LICENSE TEXT"


def test_connection_refused_is_a_connect_error() -> None:
    with pytest.raises(ConnectFailed):
        fetch("http://127.0.0.1:9/nothing-listens-here", replace(OPTS, max_attempts=1))


def test_robots_txt_disallow_and_override(httpserver: HTTPServer) -> None:
    httpserver.clear()
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: claimwatch\nDisallow: /private/\n", content_type="text/plain"
    )
    httpserver.expect_request("/private/p.html").respond_with_data(PAGE, content_type="text/html")
    httpserver.expect_request("/public.html").respond_with_data(PAGE, content_type="text/html")
    with pytest.raises(RobotsDisallowed):
        fetch(httpserver.url_for("/private/p.html"))
    assert fetch(httpserver.url_for("/public.html")).status == 200
    assert fetch(httpserver.url_for("/private/p.html"), robots=False).status == 200
    assert requests_to(httpserver, "/private/p.html")  # only the override reached it


def test_robots_txt_server_error_means_disallow(httpserver: HTTPServer) -> None:
    httpserver.clear()
    httpserver.expect_request("/robots.txt").respond_with_data("", status=503)
    httpserver.expect_request("/p.html").respond_with_data(PAGE, content_type="text/html")
    with pytest.raises(RobotsDisallowed):
        fetch(httpserver.url_for("/p.html"), replace(OPTS, max_attempts=1))


def test_host_delay_spaces_requests(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/d.html").respond_with_data(PAGE, content_type="text/html")
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def run() -> None:
        async with Fetcher(replace(OPTS, host_delay=5.0, per_host=1), sleep=sleep) as f:
            await f.fetch(FetchRequest(url=httpserver.url_for("/d.html"), robots=False))
            await f.fetch(FetchRequest(url=httpserver.url_for("/d.html"), robots=False))

    asyncio.run(run())
    assert len(sleeps) == 1 and 4.0 < sleeps[0] <= 5.0


def test_non_public_addresses_are_refused_unless_allowed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/internal").respond_with_data(PAGE, content_type="text/html")
    guarded = replace(OPTS, allow_private=False)
    with pytest.raises(BlockedAddress, match=r"127\.0\.0\.1, a non-public address"):
        fetch(httpserver.url_for("/internal"), guarded)
    assert requests_to(httpserver, "/internal") == []  # refused before connecting
    assert fetch(httpserver.url_for("/internal"), guarded, allow_private=True).status == 200


def test_a_redirect_to_a_private_address_is_checked_on_its_hop() -> None:
    async def run() -> None:
        async with Fetcher(replace(OPTS, allow_private=False)) as f:
            await f._check_address(httpx.URL("http://169.254.169.254/latest/meta-data/"))

    with pytest.raises(BlockedAddress, match=r"169\.254\.169\.254"):
        asyncio.run(run())


@pytest.mark.parametrize(
    ("coding", "pack"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("identity", lambda b: b),
    ],
)
def test_compressed_bodies_are_decoded(httpserver: HTTPServer, coding: str, pack) -> None:  # type: ignore[no-untyped-def]
    page = ("<p>" + "Meta said its open models would stay free. " * 500 + "</p>").encode()
    httpserver.expect_request("/z").respond_with_data(
        pack(page), content_type="text/html", headers={"Content-Encoding": coding}
    )
    result = fetch(httpserver.url_for("/z"), OPTS)
    assert result.body == page
    assert requests_to(httpserver, "/z")[0].headers["Accept-Encoding"] == "gzip, deflate"


def test_compressed_body_is_capped_as_it_inflates(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/bomb").respond_with_data(
        gzip.compress(b" " * 5_000_000),
        content_type="text/html",
        headers={"Content-Encoding": "gzip"},
    )
    with pytest.raises(BodyTooLarge, match="decompresses to more than the cap of 50000"):
        fetch(httpserver.url_for("/bomb"), replace(OPTS, max_bytes=50_000))


@pytest.mark.parametrize(
    ("coding", "body", "error", "message"),
    [
        ("gzip", b"\x1f\x8b\x08\x00 not gzip at all", BadResponse, "corrupt compressed body"),
        ("br", b"whatever", UnsupportedContentType, "content-encoding 'br'"),
    ],
)
def test_bad_or_unknown_encodings_are_named(  # type: ignore[no-untyped-def]
    httpserver: HTTPServer, coding: str, body: bytes, error, message: str
) -> None:
    httpserver.expect_request("/enc").respond_with_data(
        body, content_type="text/html", headers={"Content-Encoding": coding}
    )
    with pytest.raises(error, match=message):
        fetch(httpserver.url_for("/enc"), replace(OPTS, max_attempts=1))


def test_robots_txt_is_kept_in_the_store_for_its_freshness(
    sqlite_store: Any, httpserver: HTTPServer
) -> None:
    """One robots.txt request a day per host, across runs; Cache-Control can shorten it."""
    from datetime import timedelta

    from archiver import pipeline
    from store.models import SourceSpec
    from tests.support import NOW

    store = sqlite_store
    httpserver.clear()
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /private/\n", content_type="text/plain"
    )
    httpserver.expect_request("/a.html").respond_with_data(PAGE, content_type="text/html")
    store.add_source(SourceSpec(url=httpserver.url_for("/a.html"), label="a"), NOW)
    store.add_source(SourceSpec(url=httpserver.url_for("/private/b.html"), label="b"), NOW)
    options = pipeline.CheckOptions(fetch=OPTS, processes=0, claims=())

    def run(when):  # type: ignore[no-untyped-def]
        results = pipeline.check(store, store.list_sources(), options, clock=lambda: when)
        return {r.source.name: r for r in results}

    first = run(NOW)
    assert first["b"].error_class == "RobotsDisallowed"
    for hours in (1, 23):
        again = run(NOW + timedelta(hours=hours))
        assert again["b"].error_class == "RobotsDisallowed"  # the kept rules still apply
    assert len(requests_to(httpserver, "/robots.txt")) == 1
    run(NOW + timedelta(hours=25))
    assert len(requests_to(httpserver, "/robots.txt")) == 2


def test_robots_txt_max_age_shortens_its_stay(sqlite_store, httpserver: HTTPServer) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from archiver import pipeline
    from store.models import SourceSpec
    from tests.support import NOW

    store = sqlite_store
    httpserver.clear()
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nAllow: /\n",
        content_type="text/plain",
        headers={"Cache-Control": "max-age=600"},
    )
    httpserver.expect_request("/a.html").respond_with_data(PAGE, content_type="text/html")
    store.add_source(SourceSpec(url=httpserver.url_for("/a.html"), label="a"), NOW)
    options = pipeline.CheckOptions(fetch=OPTS, processes=0, claims=())
    for minutes in (0, 5, 11):
        pipeline.check(
            store,
            store.list_sources(),
            options,
            clock=partial(lambda m: NOW + timedelta(minutes=m), minutes),
        )
    assert len(requests_to(httpserver, "/robots.txt")) == 2
