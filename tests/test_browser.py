"""The browser fetcher (sources add --browser) in Debian's Chromium, on loopback pages:
a page whose article its script fetches is archived with that text; without the
browser it is recognised as a JavaScript shell; a script reaching another port or a
metadata address is refused before any request leaves; a browser killed mid-check
fails that check alone. Skips without Chromium or Playwright; in CI that is a failure."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from archiver.net import guard
from archiver.net.browser import BrowserFetcher, BrowserOptions
from archiver.net.fetch import FetchOptions, FetchRequest
from archiver.net.guard import IPAddress
from archiver.text.shells import shell_reason
from store.errors import BrowserFailed, ConnectFailed
from store.models import SourceSpec
from store.repo import Store
from tests.support import CHROMIUM, NOW, claimwatch, needs_browser, story_dir

APP = """<!doctype html><html lang="en"><head><title>Council live</title></head><body>
<noscript>You need to enable JavaScript to run this app.</noscript>
<div id="root"></div>
<script>
fetch("/data.json").then(r => r.json()).then(d => {{
  const root = document.getElementById("root");
  root.innerHTML = "<article><h1>" + d.title + "</h1>" +
    d.paragraphs.map(p => "<p>" + p + "</p>").join("") + "</article>";
}});
{extra}
</script></body></html>"""

PARAGRAPHS = [
    "The town council approved the library budget on Tuesday by seven votes to two.",
    "Two members were absent, and the mayor said the branch on Elm Street stays open.",
    "The budget adds weekend hours from March and hires two more librarians.",
]


@pytest.fixture
def app_server(httpserver: HTTPServer) -> HTTPServer:
    needs_browser()
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/app.html").respond_with_data(
        APP.format(extra=""), content_type="text/html"
    )
    httpserver.expect_request("/data.json").respond_with_data(
        json.dumps({"title": "Library budget passes", "paragraphs": PARAGRAPHS}),
        content_type="application/json",
    )
    return httpserver


@pytest.mark.e2e
@pytest.mark.slow
def test_a_javascript_page_is_archived_through_the_browser_and_flagged_without_it(
    tmp_path: Path, app_server: HTTPServer
) -> None:
    story = story_dir(tmp_path)
    url = app_server.url_for("/app.html")
    assert claimwatch(story, "init").returncode == 0
    r = claimwatch(story, "sources", "add", url, "--label", "plain")
    assert r.returncode == 0, r.stderr
    r = claimwatch(story, "sources", "add", url + "?b", "--label", "app", "--browser")
    assert r.returncode == 0, r.stderr

    r = claimwatch(story, "check", "--all", "--json")
    results = {json.loads(line)["label"]: json.loads(line) for line in r.stdout.splitlines()}
    assert results["app"]["outcome"] == "new_version", results["app"]
    assert results["plain"]["outcome"] == "failed"
    assert results["plain"]["error_class"] == "JavaScriptShell"
    assert "--browser" in results["plain"]["error"]
    text = claimwatch(story, "show", "app").stdout
    assert all(p in text for p in PARAGRAPHS)
    assert "enable JavaScript" not in text
    raw = claimwatch(story, "show", "app", "--raw").stdout
    assert "<article><h1>Library budget passes</h1>" in raw  # the rendered DOM is the raw
    status = claimwatch(story, "status").stdout
    assert "plain" in status and "--browser" in status
    listed = {
        row["label"]: row
        for line in claimwatch(story, "sources", "list", "--json").stdout.splitlines()
        if (row := json.loads(line))["label"]
    }
    assert listed["app"]["browser"] is True and listed["plain"]["browser"] is False
    assert "--browser" in listed["plain"]["warning"] and listed["app"]["warning"] is None
    assert "needs --browser" in claimwatch(story, "sources", "list", env={"COLUMNS": "240"}).stdout


def test_shell_recognition_needs_a_notice_or_an_empty_root() -> None:
    assert shell_reason(b"<div id='root'></div><script></script>", None)
    assert shell_reason(b"<p>x</p>", "Please enable JavaScript to continue.")
    article = "The council approved the budget. " * 20
    assert shell_reason(b"<div id='root'></div><script></script>", article) is None
    assert shell_reason(b"<div id='root'><p>text</p></div><script></script>", None) is None


class Trap:
    """A second loopback server the page's script must never reach."""

    def __init__(self, server: HTTPServer):
        self.hits: list[str] = []
        server.expect_request("/secret").respond_with_handler(self)

    def __call__(self, request: Request) -> Response:
        self.hits.append(request.path)
        return Response("secret", headers={"Access-Control-Allow-Origin": "*"})


@pytest.mark.slow
def test_page_scripts_cannot_reach_other_ports_or_metadata_addresses(
    app_server: HTTPServer,
) -> None:
    trap_server = HTTPServer(host="127.0.0.1", port=0)
    trap_server.start()
    sockets = socket.create_server(("127.0.0.1", 0))  # counts raw connections
    sockets.settimeout(0.2)
    try:
        trap = Trap(trap_server)
        extra = (
            f'fetch("{trap_server.url_for("/secret")}").catch(() => 0);'
            'fetch("http://169.254.169.254/latest/meta-data/").catch(() => 0);'
            'new Image().src = "http://[::ffff:169.254.169.254]/x";'
            f'new WebSocket("ws://127.0.0.1:{sockets.getsockname()[1]}/");'
        )
        app_server.expect_request("/evil.html").respond_with_data(
            APP.format(extra=extra), content_type="text/html"
        )

        async def render() -> tuple[str, dict[str, str]]:
            options = BrowserOptions(executable=CHROMIUM, timeout=15, settle_ms=800)
            async with BrowserFetcher(options) as browser:
                request = FetchRequest(app_server.url_for("/evil.html"), allow_private=True)
                result = await browser.fetch(request)
                return result.body.decode(), result.headers

        html, headers = asyncio.run(render())
        assert "Library budget passes" in html  # the page's own origin is allowed
        assert trap.hits == []  # another port on loopback: refused before any request
        with pytest.raises(TimeoutError):
            sockets.accept()  # the WebSocket never connected either
        assert int(headers["x-claimwatch-blocked"]) >= 3
    finally:
        trap_server.stop()
        sockets.close()


@pytest.mark.slow
def test_a_name_that_rebinds_to_loopback_is_refused_at_the_connect(
    app_server: HTTPServer,
) -> None:
    """DNS rebinding: our lookup of rebind.example answers a public address, then
    loopback; Chromium's own resolver (``--host-resolver-rules``) says loopback. The
    page's request must still never reach the loopback server: Chromium makes no
    connection of its own, and claimwatch's connect judges the address it connects to."""
    trap_server = HTTPServer(host="127.0.0.1", port=0)
    trap_server.start()
    try:
        trap = Trap(trap_server)
        answers: dict[str, int] = {}

        async def rebinding(host: str, port: int) -> list[IPAddress]:
            if host != "rebind.example":
                return await guard.resolve(host, port)
            answers[host] = answers.get(host, 0) + 1
            first = answers[host] == 1  # the check sees a public address, the connect not
            return [ipaddress.ip_address("93.184.216.34" if first else "127.0.0.1")]

        secret = f"http://rebind.example:{trap_server.port}/secret"
        app_server.expect_request("/rebind.html").respond_with_data(
            APP.format(extra=f'fetch("{secret}").catch(() => 0);'), content_type="text/html"
        )

        async def render() -> dict[str, str]:
            options = BrowserOptions(
                executable=CHROMIUM,
                timeout=15,
                settle_ms=800,
                chromium_args=("--host-resolver-rules=MAP rebind.example 127.0.0.1",),
            )
            async with BrowserFetcher(options, resolver=rebinding) as browser:
                request = FetchRequest(app_server.url_for("/rebind.html"), allow_private=True)
                return (await browser.fetch(request)).headers

        headers = asyncio.run(render())
        assert trap.hits == []
        assert answers["rebind.example"] >= 2  # judged at the check and at the connect
        assert int(headers["x-claimwatch-blocked"]) >= 1
    finally:
        trap_server.stop()


@pytest.mark.slow
def test_a_request_that_fails_at_the_connect_fails_fast_not_by_timeout() -> None:
    """Whatever goes wrong while claimwatch makes a page's request (here the name stops
    resolving between the check and the connect), the request is answered: the page
    fails at once with the reason, instead of hanging until the page timeout."""
    needs_browser()
    calls: dict[str, int] = {}

    async def flaky(host: str, port: int) -> list[IPAddress]:
        calls[host] = calls.get(host, 0) + 1
        if calls[host] == 1:
            return [ipaddress.ip_address("93.184.216.34")]  # the check: fine
        raise ConnectFailed(f"{host}: cannot resolve (gone)")  # the connect: gone

    async def render() -> None:
        options = BrowserOptions(executable=CHROMIUM, timeout=20, settle_ms=100)
        async with BrowserFetcher(options, resolver=flaky) as browser:
            await browser.fetch(FetchRequest("http://flaky.example/story.html"))

    started = time.monotonic()
    with pytest.raises(ConnectFailed, match="cannot resolve"):
        asyncio.run(render())
    assert time.monotonic() - started < 15  # well before the 20 s page timeout


@pytest.mark.slow
def test_redirects_and_cookies_work_through_the_guarded_client(app_server: HTTPServer) -> None:
    """Every response is fulfilled by claimwatch: a redirect is still followed by the
    page (each hop judged), and a cookie it sets is sent with the next request. Images
    are never requested (they hold no article text)."""
    pixels: list[str] = []

    def checked(request: Request) -> Response:
        cookie = request.headers.get("Cookie", "none")
        return Response(
            f"<html><body><article><h1>Consent</h1><p>The cookie header was {cookie}.</p>"
            '<img src="/pixel.png" alt="">'
            "<p>" + " ".join(PARAGRAPHS) + "</p></article></body></html>",
            content_type="text/html",
        )

    app_server.expect_request("/start").respond_with_response(
        Response("", status=302, headers={"Location": "/checked", "Set-Cookie": "consent=yes"})
    )
    app_server.expect_request("/checked").respond_with_handler(checked)

    def pixel(request: Request) -> Response:
        pixels.append(request.path)
        return Response(b"", content_type="image/png")

    app_server.expect_request("/pixel.png").respond_with_handler(pixel)

    async def render() -> tuple[str, str]:
        options = BrowserOptions(executable=CHROMIUM, timeout=15, settle_ms=200)
        async with BrowserFetcher(options) as browser:
            result = await browser.fetch(
                FetchRequest(app_server.url_for("/start"), allow_private=True)
            )
            return result.body.decode(), result.final_url

    html, final_url = asyncio.run(render())
    assert final_url.endswith("/checked")
    assert "The cookie header was consent=yes." in html
    assert pixels == []


@pytest.mark.e2e
@pytest.mark.slow
def test_a_browser_killed_mid_check_fails_that_check_and_the_next_starts_a_new_one(
    app_server: HTTPServer,
) -> None:
    requested = threading.Event()

    def slow(_request: Request) -> Response:
        requested.set()
        time.sleep(4)
        return Response("<html><body><p>late</p></body></html>", content_type="text/html")

    app_server.expect_request("/slow.html").respond_with_handler(slow)

    def kill_chromium_later() -> None:
        # Once the page's request has reached the server: the check is mid-flight
        # however long Chromium took to start on a busy machine.
        assert requested.wait(60)
        me = psutil.Process()
        for child in me.children(recursive=True):
            try:
                if "chrom" in child.name().lower():
                    child.kill()
            except psutil.Error:
                pass

    async def scenario() -> tuple[Exception | None, str, int]:
        options = BrowserOptions(executable=CHROMIUM, timeout=15, settle_ms=100)
        async with BrowserFetcher(options) as browser:
            killer = threading.Thread(target=kill_chromium_later)
            killer.start()
            failed = None
            try:
                await browser.fetch(
                    FetchRequest(app_server.url_for("/slow.html"), allow_private=True)
                )
            except Exception as exc:
                failed = exc
            killer.join()
            again = await browser.fetch(
                FetchRequest(app_server.url_for("/app.html"), allow_private=True)
            )
            return failed, again.body.decode(), browser.launches

    failed, html, launches = asyncio.run(scenario())
    assert isinstance(failed, BrowserFailed), failed
    assert "Library budget passes" in html
    assert launches == 2


@pytest.mark.slow
def test_serve_keeps_one_browser_across_dispatches(
    app_server: HTTPServer, sqlite_store: Store
) -> None:
    """Each dispatch of serve runs in its own event loop; the browser is kept across
    them (it used to start again every dispatch), and stops with the service."""
    from datetime import timedelta

    from archiver import pipeline
    from jobs.service import Service, ServiceOptions

    sqlite_store.add_source(
        SourceSpec(url=app_server.url_for("/app.html"), label="app", browser=True), NOW
    )
    clock = {"now": NOW}
    options = pipeline.CheckOptions(
        fetch=FetchOptions(allow_private=True, host_delay=0),
        browser=BrowserOptions(executable=CHROMIUM, timeout=15, settle_ms=100, allow_private=True),
        processes=0,
        claims=(),
    )
    service = Service(
        sqlite_store,
        ServiceOptions(worker_id="w", tick=60, lease=300, jitter=0, digest_cron=None),
        options,
        clock=lambda: clock["now"],
    )
    try:
        outcomes = []
        for hours in (0, 2, 4):
            clock["now"] = NOW + timedelta(hours=hours)
            outcomes += [(r.outcome, r.error) for r in service.dispatch()]
        assert [o for o, _ in outcomes] == ["new_version", "same_bytes", "same_bytes"], outcomes
        assert service.browser.launches == 1
        current = sqlite_store.current_version(sqlite_store.get_source("app"))
        assert current is not None
        assert "Library budget passes" in sqlite_store.read_text(current)
        chromium = [
            c for c in psutil.Process().children(recursive=True) if "chrom" in c.name().lower()
        ]
        assert chromium
    finally:
        service.close()
    _, alive = psutil.wait_procs(chromium, timeout=10)
    assert alive == []


@pytest.mark.slow
def test_a_login_in_the_url_goes_with_the_pages_requests_to_its_origin(
    app_server: HTTPServer,
) -> None:
    """A source URL's login (https://user:password@host/page) goes, as Basic
    authentication, with the page's requests to its own origin: the page and the data
    its script fetches. It never shows in the final URL. (A script's request to another
    origin on loopback is refused outright; the fetcher's tests cover the origin rule.)"""
    wanted = "Basic " + base64.b64encode(b"ana:Pw-7305").decode()
    seen: dict[str, str | None] = {}

    def members(request: Request) -> Response:
        seen[request.path] = request.headers.get("Authorization")
        if seen[request.path] != wanted:
            return Response("login", status=401, headers={"WWW-Authenticate": 'Basic realm="m"'})
        if request.path == "/members.json":
            data = {"title": "Members only", "paragraphs": PARAGRAPHS}
            return Response(json.dumps(data), content_type="application/json")
        page = APP.format(extra="").replace("/data.json", "/members.json")
        return Response(page, content_type="text/html")

    for path in ("/members.html", "/members.json"):
        app_server.expect_request(path).respond_with_handler(members)
    url = app_server.url_for("/members.html").replace("http://", "http://ana:Pw-7305@")

    async def render() -> tuple[str, str]:
        options = BrowserOptions(executable=CHROMIUM, timeout=15, settle_ms=300)
        async with BrowserFetcher(options) as browser:
            result = await browser.fetch(FetchRequest(url, allow_private=True))
            return result.body.decode(), result.final_url

    html, final_url = asyncio.run(render())
    assert PARAGRAPHS[0] in html  # the page and its data came through the login
    assert seen["/members.html"] == seen["/members.json"] == wanted
    assert final_url == app_server.url_for("/members.html")
