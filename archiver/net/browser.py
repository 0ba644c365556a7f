"""The browser fetcher: a page built by JavaScript, rendered in headless Chromium.

For sources added with ``--browser`` (``browser: true``). Playwright drives the
system's Chromium (``[fetch] browser_executable``, Debian's ``/usr/bin/chromium`` by
default); claimwatch never downloads a browser. It is an optional extra:
``pip install 'claimwatch[browser]'``.

Bounded:

* one browser process, started on first use and reused; a browser that died is
  replaced at the next check, and the check it died in fails alone
  (``BrowserFailed``);
* at most ``max_pages`` pages render at once, each in a fresh context (no cookies
  carried over) with downloads refused, service workers blocked and no permissions;
* a page gets ``timeout`` seconds to load and settle, then fails (``FetchTimeout``).

Chromium opens no connection of its own. Every request the page makes is
intercepted (``route``) and made by claimwatch, through the same guarded transport
as the HTTP fetcher: the host is resolved, every address judged, and the
connection opened to a judged address (``guard.GuardedBackend``), so a DNS answer
that changes between a check and the connect (rebinding) is caught here too. The
response is handed back to the page (``route.fulfill``); redirects go back to
Chromium, whose next hop is intercepted in turn. A non-public address is allowed
only for the page's own origin (host and port), and only for a source allowed to
be private; metadata addresses never. So a script cannot reach another port on
loopback, the intranet or a cloud metadata service. With ``block_third_party``,
requests to other sites are refused too. WebSockets are refused: article text
does not arrive over them, and they cannot be carried through the guard. Images,
media and fonts are not requested at all.

The rendered HTML (``page.content()``) is what the capture stores as raw.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from archiver.net import guard
from archiver.net.fetch import FetchOptions, FetchRequest, FetchResult, without_login
from archiver.net.login import Login, authorization
from archiver.net.transport import guarded_transport
from store.errors import (
    BlockedAddress,
    BrowserFailed,
    ConnectFailed,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    UsageError,
)

# What the machine notes say Chromium needs here: no sandbox as root, no GPU, and no
# background connections to Google's services (refused on a closed network).
_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


@dataclass(frozen=True)
class BrowserOptions:
    executable: str = "/usr/bin/chromium"
    timeout: float = 20.0  # seconds for one page to load and settle
    max_pages: int = 2  # pages rendering at once
    settle_ms: int = 500  # after the load event, for late scripts to finish
    allow_private: bool = False  # the configuration's allow_private_addresses (tests)
    user_agent: str | None = None
    max_bytes: int = 10 * 1024 * 1024  # one response the page asked for, decoded
    chromium_args: tuple[str, ...] = ()  # added to the launch arguments (tests)


# Requests that carry no article text are not made at all: the page loads sooner and
# nothing large passes through the guarded client.
_NO_TEXT = frozenset(("image", "media", "font"))

# Headers that belong to one connection, or that the guarded client sets itself.
_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
     "trailer", "host", "content-length", "accept-encoding")
)  # fmt: skip


class BrowserFetcher:
    """Renders pages in one reused Chromium; use as an async context manager."""

    def __init__(self, options: BrowserOptions | None = None, resolver: Any = None):
        self.options = options or BrowserOptions()
        self._resolve = resolver or guard.resolve
        self._pw: Any = None
        self._browser: Any = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(max(1, self.options.max_pages))
        self._client: httpx.AsyncClient | None = None
        self.launches = 0  # browsers started (tests check reuse and replacement)

    async def __aenter__(self) -> BrowserFetcher:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._client is not None:
                await self._client.aclose()
        self._client = None
        with contextlib.suppress(Exception):
            if self._browser is not None:
                await self._browser.close()
        with contextlib.suppress(Exception):
            if self._pw is not None:
                await self._pw.stop()
        self._browser = self._pw = None
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None

    async def _ensure(self) -> Any:
        async with self._lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            await self.close()
            try:
                from playwright.async_api import async_playwright
            except ImportError:
                raise UsageError(
                    "--browser needs Playwright: pip install 'claimwatch[browser]' "
                    "(it drives the system's Chromium; nothing is downloaded)"
                ) from None
            self._pw = await async_playwright().start()
            try:
                self._browser = await self._pw.chromium.launch(
                    executable_path=self.options.executable,
                    headless=True,
                    args=[*_ARGS, *self.options.chromium_args],
                )
            except Exception as exc:
                await self.close()
                raise BrowserFailed(
                    f"cannot start Chromium at {self.options.executable} ({_first_line(exc)}); "
                    "install Debian's chromium or set [fetch] browser_executable"
                ) from None
            self.launches += 1
            return self._browser

    def _guarded_client(self) -> httpx.AsyncClient:
        """The client every request of every page goes through (made on first use, on
        the browser's own event loop)."""
        if self._client is None:
            fetch = FetchOptions(read_timeout=self.options.timeout, concurrency=16)
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.options.timeout, connect=10.0),
                follow_redirects=False,  # Chromium follows, and each hop is routed again
                headers={"Accept-Encoding": "gzip, deflate"},
                transport=guarded_transport(fetch, self._resolve),
            )
        return self._client

    async def fetch(self, request: FetchRequest, block_third_party: bool = False) -> FetchResult:
        """Render ``request.url``; the rendered HTML is the body."""
        request, login = without_login(request)
        async with self._slots:
            browser = await self._ensure()
            started = time.monotonic()
            try:
                return await asyncio.wait_for(
                    self._render(browser, request, login, block_third_party, started),
                    self.options.timeout + 5,
                )
            except FetchError:
                raise
            except TimeoutError:
                raise FetchTimeout(
                    f"{request.url}: the page did not load in {self.options.timeout:g}s"
                ) from None
            except Exception as exc:
                if not browser.is_connected():
                    raise BrowserFailed(
                        f"{request.url}: the browser stopped during the check; the next "
                        "check starts a new one"
                    ) from None
                raise BrowserFailed(f"{request.url}: {_first_line(exc)}") from None

    async def _render(
        self,
        browser: Any,
        request: FetchRequest,
        login: Login | None,
        block_third_party: bool,
        started: float,
    ) -> FetchResult:
        page = urlsplit(request.url)
        site = _site(page.hostname or "")
        origin = (
            (page.hostname or "").lower(),
            page.port or (443 if page.scheme == "https" else 80),
        )
        may_be_private = self.options.allow_private or request.allow_private
        blocked: list[str] = []
        failures: list[str] = []
        context = await browser.new_context(
            accept_downloads=False,
            service_workers="block",
            permissions=[],
            java_script_enabled=True,
            user_agent=self.options.user_agent,
        )
        try:

            async def policy_for(url: str) -> guard.AddressPolicy | str:
                """The address policy a page's request goes out under, or why it may not
                go out. The connect is judged again (rebinding); this first check gives
                the reason early, and refuses other sites with ``block_third_party``."""
                parts = urlsplit(url)
                host = parts.hostname or ""
                if parts.scheme not in ("http", "https") or not host:
                    return url
                if block_third_party and _site(host) != site:
                    return url
                try:
                    port = parts.port or (443 if parts.scheme == "https" else 80)
                    # A non-public address only for the page's own origin, when allowed:
                    # a script may not reach another port or host on the intranet.
                    own = (host.lower(), port) == origin and may_be_private
                    policy = guard.AddressPolicy(anywhere=own)
                    guard.judge(url, host, await self._resolve(host, port), policy)
                except (BlockedAddress, ConnectFailed, ValueError) as exc:
                    return f"{url} ({exc})"
                return policy

            async def judge(route: Any) -> None:
                url = route.request.url
                if urlsplit(url).scheme in ("data", "blob", "about"):
                    await route.continue_()
                    return
                if route.request.resource_type in _NO_TEXT:
                    await route.abort("blockedbyclient")  # never fetched: no article text
                    return
                policy = await policy_for(url)
                if isinstance(policy, guard.AddressPolicy):
                    try:
                        await self._fulfil(route, policy, login)
                        return
                    except BlockedAddress as exc:
                        policy = f"{url} ({exc})"
                    except Exception as exc:  # any failure is this request's alone
                        # Every request is answered: one left unanswered would hang the
                        # page until its timeout.
                        failures.append(f"{url}: {_first_line(exc)}")
                        with contextlib.suppress(Exception):
                            await route.abort("failed")
                        return
                blocked.append(policy)
                await route.abort("blockedbyclient")

            async def refuse_socket(ws: Any) -> None:
                # WebSockets bypass route(), and Chromium would open them itself.
                blocked.append(f"{ws.url} (WebSockets are not opened for browser sources)")
                await ws.close(code=1008, reason="blocked by claimwatch")

            await context.route("**/*", judge)
            await context.route_web_socket("**/*", refuse_socket)
            page = await context.new_page()
            timeout_ms = self.options.timeout * 1000
            try:
                response = await page.goto(request.url, wait_until="load", timeout=timeout_ms)
            except Exception as exc:
                if not browser.is_connected() or "has been closed" in str(exc):
                    raise BrowserFailed(
                        f"{request.url}: the browser stopped during the check; the next "
                        "check starts a new one"
                    ) from None
                if blocked and request.url in blocked[0]:
                    raise BlockedAddress(blocked[0]) from None
                if failures and failures[0].startswith(f"{request.url}:"):
                    raise ConnectFailed(failures[0]) from None
                if "Timeout" in type(exc).__name__:
                    raise FetchTimeout(
                        f"{request.url}: the page did not load in {self.options.timeout:g}s"
                    ) from None
                raise ConnectFailed(f"{request.url}: {_first_line(exc)}") from None
            with contextlib.suppress(Exception):
                await page.wait_for_load_state("networkidle", timeout=timeout_ms / 2)
            await page.wait_for_timeout(self.options.settle_ms)
            status = response.status if response is not None else 200
            if status >= 400:
                raise HTTPStatusError(status, request.url)
            html = await page.content()
            final_url = page.url
        finally:
            with contextlib.suppress(Exception):
                await context.close()
        headers = {"content-type": "text/html; charset=utf-8", "x-claimwatch-browser": "1"}
        if blocked:
            headers["x-claimwatch-blocked"] = str(len(blocked))
        return FetchResult(
            url=request.url,
            final_url=final_url,
            status=status,
            headers=headers,
            body=html.encode("utf-8"),
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    async def _fulfil(self, route: Any, policy: guard.AddressPolicy, login: Login | None) -> None:
        """Make the page's request through the guarded client and hand the page the
        response, decoded and at most ``max_bytes``. A request to the origin of the
        source URL's login carries it, as the fetcher's requests do."""
        asked = route.request
        headers = {
            k: v
            for k, v in (await asked.all_headers()).items()
            if k.lower() not in _HOP_BY_HOP and not k.startswith(":")  # no HTTP/2 pseudo-headers
        }
        outgoing = self._guarded_client().build_request(
            asked.method, asked.url, headers=headers, content=asked.post_data_buffer
        )
        outgoing.headers.update(authorization(login, outgoing.url))
        token = guard.POLICY.set(policy)
        try:
            response = await self._guarded_client().send(outgoing, stream=True)
            try:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.options.max_bytes:
                        raise ResponseTooLarge(f"more than {self.options.max_bytes} bytes")
            finally:
                await response.aclose()
        finally:
            guard.POLICY.reset(token)
        back: dict[str, str] = {}
        for name, value in response.headers.multi_items():
            if name.lower() in _HOP_BY_HOP or name.lower() == "content-encoding":
                continue
            back[name] = f"{back[name]}\n{value}" if name in back else value  # Set-Cookie
        await route.fulfill(status=response.status_code, headers=back, body=bytes(body))


class ResponseTooLarge(Exception):
    """A response the page asked for passed ``BrowserOptions.max_bytes``."""


class BrowserHost:
    """One BrowserFetcher kept across runs that each have their own event loop.

    ``serve`` checks in a new ``asyncio.run`` every dispatch, and a Playwright browser
    belongs to the loop that started it: without a host, every dispatch with a
    ``--browser`` source started Chromium again. The host runs the fetcher on its own
    loop in a daemon thread; ``fetch`` may be awaited from any loop. Chromium still
    starts only when a page needs it. ``close`` stops it and the thread.
    """

    def __init__(self, options: BrowserOptions | None = None, resolver: Any = None):
        self.fetcher = BrowserFetcher(options, resolver)
        self._loop: asyncio.AbstractEventLoop | None = None  # started by the first fetch
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    @property
    def launches(self) -> int:
        return self.fetcher.launches

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._start:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="claimwatch-browser", daemon=True
                )
                self._thread.start()
            return self._loop

    async def fetch(self, request: FetchRequest, block_third_party: bool = False) -> FetchResult:
        future = asyncio.run_coroutine_threadsafe(
            self.fetcher.fetch(request, block_third_party), self._running_loop()
        )
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        with self._start:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.fetcher.close(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def _site(host: str) -> str:
    """The registrable part of a host, roughly: its last two labels (an IP is itself)."""
    host = host.strip("[]").lower().rstrip(".")
    if host.replace(".", "").isdigit() or ":" in host:
        return host
    return ".".join(host.split(".")[-2:])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
