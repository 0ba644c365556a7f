"""The fetcher: polite, bounded, conditional HTTP GETs with httpx.

One ``Fetcher`` serves a whole check run. It caps concurrency overall and per
host, spaces requests to one host by ``host_delay``, sends If-None-Match /
If-Modified-Since, follows redirects itself (so loops are named and counted),
streams bodies under a size cap, honours robots.txt (RFC 9309), and retries
transient failures with exponential backoff and ``Retry-After``. It returns a
``FetchResult`` or raises a ``FetchError`` whose ``attempts`` says how many
tries were made. It never touches the store.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import Message
from types import TracebackType
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from archiver import __version__
from archiver.net import guard
from archiver.net.login import Login, authorization, login_hint, split_login
from archiver.net.transport import guarded_transport
from store.errors import (
    BadResponse,
    BlockedAddress,
    BodyTooLarge,
    ConnectFailed,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    RobotsDisallowed,
    TooManyRedirects,
    UnsupportedContentType,
    UnsupportedURL,
)
from store.kinds import PAGE_TYPES, PDF_TYPES, UNTYPED
from store.models import mask_url

REDIRECTS = (301, 302, 303, 307, 308)
ROBOTS_AGENT = "claimwatch"

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class FetchOptions:
    user_agent: str = f"claimwatch/{__version__} (content archiving and change monitoring)"
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0  # one attempt, from connect to last byte
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    max_attempts: int = 3
    backoff_base: float = 1.0  # seconds; doubles each retry
    max_retry_after: float = 60.0  # a longer Retry-After ends the check instead of waiting
    concurrency: int = 16
    per_host: int = 2
    host_delay: float = 1.0  # seconds between two requests to one host
    keepalive: int | None = None  # idle connections kept; None: as many as concurrency
    # Loopback, private and other non-public addresses are refused unless a request
    # allows them; True allows them for every request. Link-local and cloud metadata
    # addresses are refused always (archiver/net/guard.py).
    allow_private: bool = False
    ca_file: str | None = None  # trust these CA certificates instead of the system's


ROBOTS_FRESH = 86400  # RFC 9309 2.4: a cached robots.txt is used for a day at most
ROBOTS_MAX = 500 * 1024  # RFC 9309 2.5: at least 500 KiB of rules are read


@dataclass(frozen=True)
class RobotsEntry:
    """One origin's robots.txt as fetched: ``status`` 200 with its rules, or the 4xx that
    means none. Kept by the caller (the store) until ``expires_at``."""

    status: int
    body: str
    expires_at: datetime


@dataclass(frozen=True)
class FetchRequest:
    url: str
    etag: str | None = None
    last_modified: str | None = None
    robots: bool = True
    accept: tuple[str, ...] = PAGE_TYPES
    allow_private: bool = False  # a source the user added explicitly with --allow-private
    allow_redirects_anywhere: bool = False  # ... whose redirects may reach other private hosts


@dataclass(frozen=True)
class FetchResult:
    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    body: bytes
    attempts: int = 1
    duration_ms: int = 0
    redirects: tuple[str, ...] = field(default=())

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def content_type(self) -> str | None:
        """The body's media type, without parameters. A PDF is "application/pdf" however
        the server typed it (its alias, bytes, or nothing): its first bytes say so."""
        value = self.headers.get("content-type")
        media = _media_type(value) if value else None
        if media in PDF_TYPES or ((media is None or media in UNTYPED) and is_pdf(self.body)):
            return PDF_TYPES[0]
        return media

    @property
    def charset(self) -> str | None:
        value = self.headers.get("content-type")
        if not value:
            return None
        msg = Message()
        msg["content-type"] = value
        charset = msg.get_param("charset")
        return charset if isinstance(charset, str) else None

    @property
    def etag(self) -> str | None:
        return sendable(self.headers.get("etag"))

    @property
    def last_modified(self) -> str | None:
        return sendable(self.headers.get("last-modified"))


def without_login(request: FetchRequest) -> tuple[FetchRequest, Login | None]:
    """The request for its URL without its login (``archiver.net.login``), and the login."""
    url, login = split_login(request.url)
    return (replace(request, url=url) if url != request.url else request), login


def is_pdf(body: bytes) -> bool:
    """Whether the body is a PDF: its header, within the first 1,024 bytes (readers
    allow that much before it)."""
    return b"%PDF-" in body[:1024]


def robots_origin(url: str) -> str:
    """The origin whose robots.txt governs ``url``: scheme://host[:port], lower case
    (never a login: robots.txt is asked for without one)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".lower()


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


MAX_RETRY_AFTER = 7 * 86400.0  # a longer Retry-After is read as a week
MAX_VALIDATOR = 1024  # an ETag or Last-Modified longer than this is not kept


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date),
    at most ``MAX_RETRY_AFTER``; None for a value that is neither."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value[:12]), MAX_RETRY_AFTER)
    when = http_date(value)
    if when is None:
        return None
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER)


def http_date(value: str) -> datetime | None:
    """An HTTP date header (Retry-After, Expires) as an aware datetime; None if it is not one."""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def sendable(value: str | None) -> str | None:
    """A validator (ETag, Last-Modified) as it can be sent back in a request, or None.
    RFC 9110 lets a server send obs-text bytes in an ETag; a request header must be
    visible ASCII, so such a validator is dropped (the next check is unconditional)."""
    if not value or len(value) > MAX_VALIDATOR or not (value.isascii() and value.isprintable()):
        return None
    return value


class Fetcher:
    """Use as ``async with Fetcher(options) as f: await f.fetch(request)``."""

    def __init__(
        self,
        options: FetchOptions | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: guard.Resolver = guard.resolve,
        robots: dict[str, RobotsEntry] | None = None,
    ):
        """``robots``: robots.txt entries known from earlier runs, by origin; the ones
        this fetcher fetches afresh are in ``robots_fetched`` for the caller to keep."""
        self.options = options or FetchOptions()
        self._sleep = sleep
        self._now = now
        self._resolve = resolver
        o = self.options
        self._client = httpx.AsyncClient(
            headers={
                "User-Agent": o.user_agent,
                "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
                # Only codings _Inflater bounds while decoding (no br or zstd bombs).
                "Accept-Encoding": "gzip, deflate",
            },
            timeout=httpx.Timeout(o.read_timeout, connect=o.connect_timeout),
            follow_redirects=False,
            transport=transport or guarded_transport(o, resolver),
        )
        self._all = asyncio.Semaphore(o.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._last_request: dict[str, float] = {}
        self._robots: dict[str, RobotFileParser | bool] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._robots_known = dict(robots or {})
        self.robots_fetched: dict[str, RobotsEntry] = {}

    def know_robots(self, entries: dict[str, RobotsEntry]) -> None:
        """More robots.txt entries known from earlier runs (read as sources stream in)."""
        self._robots_known.update(entries)

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()

    async def fetch(self, request: FetchRequest) -> FetchResult:
        """Fetch one URL, retrying transient failures; raise ``FetchError`` when it fails."""
        request, login = without_login(request)
        token = guard.POLICY.set(self._policy(request))
        try:
            return await self._fetch(request, login)
        finally:
            guard.POLICY.reset(token)

    def _policy(self, request: FetchRequest) -> guard.AddressPolicy:
        if self.options.allow_private:
            return guard.AddressPolicy(anywhere=True)
        if not request.allow_private:
            return guard.AddressPolicy()
        host = urlsplit(request.url).hostname
        return guard.AddressPolicy(private_host=host, anywhere=request.allow_redirects_anywhere)

    async def _fetch(self, request: FetchRequest, login: Login | None) -> FetchResult:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await self._attempt(request, login)
            except FetchError as exc:
                exc.attempts = attempt  # type: ignore[attr-defined]
                wait = self._retry_wait(exc, attempt)
                if wait is None:
                    raise
                await self._sleep(wait)
                continue
            ms = int((time.monotonic() - started) * 1000)
            return FetchResult(
                url=request.url,
                final_url=result.final_url,
                status=result.status,
                headers=result.headers,
                body=result.body,
                attempts=attempt,
                duration_ms=ms,
                redirects=result.redirects,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_wait(self, exc: FetchError, attempt: int) -> float | None:
        o = self.options
        if not exc.transient or attempt >= o.max_attempts:
            return None
        backoff = o.backoff_base * 2 ** (attempt - 1)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            if retry_after > o.max_retry_after:
                return None
            return max(backoff, retry_after)
        return backoff

    async def _attempt(self, request: FetchRequest, login: Login | None) -> FetchResult:
        url = request.url
        seen = [url]
        for _hop in range(self.options.max_redirects + 1):
            parts = _check_url(url)
            if parts.userinfo:  # a redirect's own user information is never sent nor shown
                parts = parts.copy_with(userinfo=b"")
            url = str(parts)  # as httpx sends it (dot segments resolved): what errors name
            await self._check_address(parts)
            if request.robots and not await self._robots_allow(url):
                raise RobotsDisallowed(f"robots.txt of {parts.host} disallows {url}")
            headers = authorization(login, parts)
            if etag := sendable(request.etag):
                headers["If-None-Match"] = etag
            if last_modified := sendable(request.last_modified):
                headers["If-Modified-Since"] = last_modified
            try:
                status, resp_headers, body = await self._get(url, headers, request.accept)
            except HTTPStatusError as exc:
                if exc.status != 401:
                    raise
                raise HTTPStatusError(401, url, hint=login_hint(headers)) from None
            if status in REDIRECTS:
                location = resp_headers.get("location")
                if not location:
                    raise HTTPStatusError(status, url)
                url = urljoin(url, location)
                if url in seen:
                    loop = " -> ".join(mask_url(u) for u in [*seen, url])
                    raise TooManyRedirects("redirect loop: " + loop)
                seen.append(url)
                continue
            result = FetchResult(
                request.url, url, status, resp_headers, body, redirects=tuple(seen[1:])
            )
            if status == 200 and result.content_type in UNTYPED:  # bytes, and not a PDF
                raise UnsupportedContentType(
                    f"{url} is {result.content_type} and its body is not a PDF; claimwatch "
                    "reads HTML, plain text and PDF"
                )
            return result
        raise TooManyRedirects(
            f"more than {self.options.max_redirects} redirects from {request.url}"
        )

    async def _get(
        self, url: str, headers: dict[str, str], accept: tuple[str, ...], polite: bool = True
    ) -> tuple[int, dict[str, str], bytes]:
        """One GET under the limits; returns status, headers and the (capped) body.

        ``polite`` requests wait ``host_delay`` after the previous polite request
        to the host; robots.txt is fetched without that wait.
        """
        host = urlsplit(url).netloc.lower()
        sem = self._hosts.setdefault(host, asyncio.Semaphore(self.options.per_host))
        async with self._all, sem:
            if polite:
                await self._polite_wait(host)
            try:
                async with asyncio.timeout(self.options.total_timeout):
                    return await self._stream(url, headers, accept)
            except TimeoutError:
                raise FetchTimeout(
                    f"{url} took longer than {self.options.total_timeout:g}s in total"
                ) from None
            except httpx.TimeoutException as exc:
                raise FetchTimeout(
                    f"{url}: {type(exc).__name__.lower()} ({str(exc) or 'timed out'})"
                ) from None
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise UnsupportedURL(f"{url}: {exc}") from None
            except httpx.RemoteProtocolError as exc:
                raise BadResponse(f"{url}: malformed response: {exc}") from None
            except httpx.HTTPError as exc:
                raise ConnectFailed(
                    f"{url}: {type(exc).__name__}: {str(exc) or 'connection failed or reset'}"
                ) from None
            finally:
                if polite:
                    self._last_request[host] = time.monotonic()

    async def _check_address(self, url: httpx.URL) -> None:
        """Judge a hop's host before the request, under the request's policy. The
        connect itself is judged again (``guard.GuardedBackend``); this check is what
        stops a kept-alive connection, opened for a source allowed to reach a private
        host, from serving a request that is not."""
        policy = guard.POLICY.get()
        if policy.anywhere:
            return  # nothing to refuse but metadata, which no connection ever reaches
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await self._resolve(url.host, port)
        guard.judge(str(url), url.host, addresses, policy)

    async def _polite_wait(self, host: str) -> None:
        last = self._last_request.get(host)
        if last is not None and self.options.host_delay > 0:
            wait = last + self.options.host_delay - time.monotonic()
            if wait > 0:
                await self._sleep(wait)

    async def _stream(
        self, url: str, headers: dict[str, str], accept: tuple[str, ...]
    ) -> tuple[int, dict[str, str], bytes]:
        cap = self.options.max_bytes
        async with self._client.stream("GET", url, headers=headers) as resp:
            resp_headers = {k.lower(): v for k, v in resp.headers.items()}
            status = resp.status_code
            if status in REDIRECTS or status == 304:
                return status, resp_headers, b""
            if status >= 400:
                retry_after = parse_retry_after(resp_headers.get("retry-after"), self._now())
                raise HTTPStatusError(status, url, retry_after)
            ctype = resp_headers.get("content-type")
            if ctype and _media_type(ctype) not in accept:
                named = ", ".join(a for a in accept if a not in UNTYPED)  # PDFs, when sniffed
                raise UnsupportedContentType(f"{url} is {_media_type(ctype)}, not one of {named}")
            declared = resp_headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise BodyTooLarge(f"{url} declares {int(declared)} bytes, over the cap of {cap}")
            inflater = _Inflater(url, resp_headers.get("content-encoding"), cap)
            chunks: list[bytes] = []
            size = 0
            async for raw in resp.aiter_raw():
                chunk = inflater.feed(raw, cap - size)
                size += len(chunk)
                if size > cap:
                    raise BodyTooLarge(f"{url} sent more than the cap of {cap} bytes")
                chunks.append(chunk)
            chunks.append(inflater.finish())
            return status, resp_headers, b"".join(chunks)

    async def robots_allow(self, request: FetchRequest) -> bool:
        """Whether robots.txt lets claimwatch fetch the request's URL (the browser
        fetcher asks too); robots.txt is fetched under the request's address policy."""
        request, _login = without_login(request)
        token = guard.POLICY.set(self._policy(request))
        try:
            return await self._robots_allow(request.url)
        finally:
            guard.POLICY.reset(token)

    async def _robots_allow(self, url: str) -> bool:
        origin = robots_origin(url)
        if origin not in self._robots:
            async with self._robots_locks.setdefault(origin, asyncio.Lock()):
                if origin not in self._robots:
                    self._robots[origin] = await self._load_robots(origin)
        rules = self._robots[origin]
        if isinstance(rules, bool):
            return rules
        return rules.can_fetch(ROBOTS_AGENT, url)

    async def _load_robots(self, origin: str) -> RobotFileParser | bool:
        """RFC 9309: 4xx means no rules (allow); 5xx means disallow all.

        A fresh entry from an earlier run is used as it is. A fetched 200 or 4xx is
        kept for its Cache-Control/Expires freshness, a day at most (and by default);
        a 5xx is not kept. A network failure (refused, timed out) is raised as itself:
        the page's check then fails with the real reason, and robots.txt is asked
        again next time.
        """
        now = self._now()
        entry = self._robots_known.get(origin)
        if entry is None or entry.expires_at <= now:
            status, headers, body = await self._robots_get(origin + "/robots.txt")
            if status >= 500:
                return False
            fresh = cache_hint(headers, now) if status < 300 else None
            seconds = ROBOTS_FRESH if fresh is None else min(fresh, ROBOTS_FRESH)
            text = body[:ROBOTS_MAX].decode("utf-8", "replace") if status < 300 else ""
            text = text.replace("\x00", "")  # rules never hold NUL; PostgreSQL text cannot
            entry = RobotsEntry(status, text, now + timedelta(seconds=seconds))
            self.robots_fetched[origin] = entry
        if 400 <= entry.status < 500:
            return True
        parser = RobotFileParser()
        parser.parse(entry.body.splitlines())
        return parser

    async def _robots_get(self, url: str) -> tuple[int, dict[str, str], bytes]:
        """robots.txt, following redirects hop by hop under the same address guard as
        the page: a redirect to a blocked address is never requested, and counts as no
        rules (so the answer tells nothing about what listens there)."""
        for _hop in range(self.options.max_redirects + 1):
            try:
                await self._check_address(_check_url(url))
                status, headers, body = await self._get(
                    url, {}, ("text/plain", "text/html"), polite=False
                )
            except HTTPStatusError as exc:
                return exc.status, {}, b""
            except (
                UnsupportedContentType,
                BodyTooLarge,
                TooManyRedirects,
                UnsupportedURL,
                BlockedAddress,
            ):
                return 404, {}, b""  # unusable rules: as if there were none
            if status in REDIRECTS and headers.get("location"):
                url = urljoin(url, headers["location"])
                continue
            return status, headers, body
        return 404, {}, b""


class _Inflater:
    """Decode a gzip or deflate body chunk by chunk, never producing more than the
    bytes still allowed: a small compressed chunk cannot expand past the cap (httpx's
    own decoders inflate each chunk whole)."""

    def __init__(self, url: str, encoding: str | None, cap: int):
        self.url, self.cap = url, cap
        coding = (encoding or "identity").strip().lower()
        self.zlib: zlib._Decompress | None = None
        if coding in ("gzip", "x-gzip"):
            self.zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif coding == "deflate":
            self.zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header
        elif coding not in ("identity", ""):
            raise UnsupportedContentType(f"{url} uses content-encoding {coding!r}")

    def feed(self, data: bytes, room: int) -> bytes:
        if self.zlib is None:
            return data
        try:
            out = self.zlib.decompress(data, max(room, 0) + 1)
        except zlib.error as exc:
            raise BadResponse(f"{self.url}: corrupt compressed body ({exc})") from None
        if self.zlib.unconsumed_tail:
            raise BodyTooLarge(f"{self.url} decompresses to more than the cap of {self.cap} bytes")
        return out

    def finish(self) -> bytes:
        if self.zlib is None:
            return b""
        try:
            return self.zlib.flush()
        except zlib.error as exc:
            raise BadResponse(f"{self.url}: corrupt compressed body ({exc})") from None


def _check_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UnsupportedURL(f"{mask_url(url)!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UnsupportedURL(f"{mask_url(url)!r}: only http and https URLs can be fetched")
    return parsed


MAX_FRESH = 366 * 86400  # the longest freshness a response may claim (a year)


def cache_hint(headers: dict[str, str], now: datetime) -> int | None:
    """Seconds the response says it stays fresh (Cache-Control max-age, or Expires)."""
    control = headers.get("cache-control", "")
    for part in control.split(","):
        name, _, value = part.strip().partition("=")
        value = value.strip()
        if name.lower() == "max-age" and value.isascii() and value.isdigit():
            return min(int(value[:12]), MAX_FRESH)
    when = http_date(headers.get("expires") or "")
    if when is None:
        return None
    return min(max(0, int((when - now).total_seconds())), MAX_FRESH)
