"""What every part of the web view shares: its options, the security middleware, the
templates, and ``Site``, the store with the helpers each page reads its request with
(bounded numbers, a source by reference, the filters) and answers errors with.

``make_site`` builds them as closures over one store and one set of options;
``archiver.web.pages``, ``.feeds`` and ``.api`` take a ``Site`` and return their routes.
"""

from __future__ import annotations

import hmac
import ipaddress
import itertools
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from archiver.app.search import archive_search
from archiver.app.status import StatusOptions
from archiver.claims.matcher import stance_unsure
from archiver.cli.base import parse_since
from archiver.text.direction import direction
from archiver.text.search import MIN_PHRASE, too_short
from store.errors import NotFoundError, StoreBusy, UsageError
from store.models import Source, Version, link_url
from store.repo import Store

HERE = Path(__file__).resolve().parent.parent  # archiver/: templates/ and static/
log = logging.getLogger("claimwatch.web")
STANCES = ("supports", "contradicts", "mentions")
SEARCH_MAX = 500  # characters of a sources search
API_PAGE = 500  # records in a page of /api/v1/changes and /api/v1/flags, at most
SEARCH_SHOWN = 100  # sources the search page lists
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
RAW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WebOptions:
    token: str | None = None  # required for every request when set
    page_size: int = 50
    clock: Callable[[], datetime] = _utcnow  # "since 2d", review times, the status
    status: StatusOptions | None = None  # /api/v1/status's digest cron (default: none)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html", "xml", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC") if d else "-"
    env.filters["iso"] = lambda d: d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if d else ""
    env.filters["link"] = link_url  # an href never carries a login, even masked
    env.globals["dir_of"] = direction
    env.globals["unsure"] = lambda f: stance_unsure(f.reasons, f.verdict)
    return env


class Security(BaseHTTPMiddleware):
    """Headers on every response; the token when one is set; the CSRF cookie."""

    def __init__(self, app: Any, options: WebOptions):
        super().__init__(app)
        self.options = options

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        params = request.query_params.multi_items()
        if "\x00" in request.url.path or any("\x00" in k + v for k, v in params):
            # No source, claim or filter holds one, and PostgreSQL refuses it in a query.
            return PlainTextResponse("the address has a NUL character (%00): remove it\n", 400)
        token = self.options.token
        set_token = False
        if token:
            given = (
                request.query_params.get("token")
                or request.cookies.get("cw_token")
                or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            )
            if not given or not same(given, token):
                needed = "a token is needed: open this address with ?token=…\n"
                return PlainTextResponse(needed, 401)
            set_token = "token" in request.query_params
        csrf = request.cookies.get("cw_csrf") or secrets.token_urlsafe(24)
        request.state.csrf = csrf
        response = await call_next(request)
        if not request.url.path.startswith("/raw/"):
            response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("X-Frame-Options", "DENY")
        if "cw_csrf" not in request.cookies:
            response.set_cookie("cw_csrf", csrf, httponly=True, samesite="strict")
        if set_token and token:
            # Lax: sent when a link in an e-mail (another site) is followed, so the
            # digest's and the alerts' links open; never with another site's POST, and
            # a review also needs the same-site CSRF cookie and its form's token.
            response.set_cookie("cw_token", token, httponly=True, samesite="lax")
        return response


@dataclass(frozen=True)
class Site:
    """The store, the options and the templates, with the request helpers of
    ``make_site``: each raises the ``HTTPException`` a bad parameter deserves."""

    store: Store
    options: WebOptions
    env: Environment
    page: Callable[..., HTMLResponse]
    number: Callable[..., int]
    search: Callable[[Request], str | None]
    source_of: Callable[[str], Source]
    version_of: Callable[..., Version]
    since_of: Callable[[Request], datetime | None]
    stance_of: Callable[[Request], str | None]
    known_claim: Callable[[str | None], str | None]
    source_id_of: Callable[[Request], int | None]
    paged: Callable[..., tuple[list[Any], bool, int]]
    searched: Callable[[Request, int], tuple[str, bool, list[Any], bool]]
    posted: Callable[[Request], Any]
    not_found: Callable[[Request, Exception], Any]
    store_failed: Callable[[Request, Exception], Any]


def make_site(store: Store, options: WebOptions) -> Site:
    env = _env()

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(
            request=request, csrf=request.state.csrf, path=request.url.path, **context
        )
        return HTMLResponse(html, status)

    def number(
        request: Request, name: str, default: int = 0, high: int = 10_000, low: int = 0
    ) -> int:
        """A whole-number parameter, bounded: a page far out cannot make a query load
        the whole log."""
        try:
            value = int(request.query_params.get(name, default))
        except ValueError:
            raise HTTPException(400, f"{name} must be a whole number") from None
        if not low <= value <= high:
            raise HTTPException(400, f"{name} must be from {low} to {high}")
        return value

    def search(request: Request) -> str | None:
        """The sources search, bounded: SQLite refuses a LIKE pattern over 50,000 bytes,
        and a search of 100,000 letters in the address answered 500."""
        q = request.query_params.get("q") or None
        if q is not None and len(q) > SEARCH_MAX:
            raise HTTPException(400, f"q must be at most {SEARCH_MAX} characters")
        return q

    def source_of(ref: str) -> Source:
        try:
            return store.get_source(ref)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    def version_of(s: Source, n: str, status: int = 404) -> Version:
        """Version ``n`` of ``s``; a missing one is a 404 for a page, a 400 for a form."""
        try:
            return store.get_version(s, int(n))
        except (NotFoundError, ValueError):
            raise HTTPException(status, f"{s.name} has no version {n}") from None

    def since_of(request: Request) -> datetime | None:
        text = request.query_params.get("since") or ""
        try:
            return parse_since(text, options.clock()) if text else None
        except UsageError:
            raise HTTPException(400, "since is a time ago such as 2d or 12h, or a date") from None

    def stance_of(request: Request) -> str | None:
        stance = request.query_params.get("stance") or None
        if stance and stance not in STANCES:
            raise HTTPException(400, "stance is supports, contradicts or mentions")
        return stance

    def known_claim(claim: str | None) -> str | None:
        if claim and not store.has_claim(claim):
            raise HTTPException(404, f"no claim {claim!r}")
        return claim

    def source_id_of(request: Request) -> int | None:
        ref = request.query_params.get("source") or None
        return source_of(ref).id if ref else None

    def paged(
        request: Request, fetch: Callable[[int], list[Any]], size: int = 50
    ) -> tuple[list[Any], bool, int]:
        """Page ``?page=`` of a newest-first listing: ``fetch(limit)`` reads up to the
        page's end and one row more, which says whether a next page exists."""
        n = number(request, "page", 1) or 1
        window = fetch(n * size + 1)[(n - 1) * size :]
        return window[:size], len(window) > size, n

    def searched(request: Request, limit: int) -> tuple[str, bool, list[Any], bool]:
        """The phrase (``q``), whether every version is read (``history=1``), the first
        ``limit`` results and whether there are more."""
        phrase = search(request) or ""  # bounded as the sources search is
        history = yes_no(request.query_params.get("history"), "history") or False
        if not phrase.strip():
            return phrase, history, [], False
        if too_short(phrase):
            raise HTTPException(400, f"q must be at least {MIN_PHRASE} characters")
        found = list(itertools.islice(
            archive_search(store, store.iter_sources(), phrase, history), limit + 1
        ))  # fmt: skip
        return phrase, history, found[:limit], len(found) > limit

    async def posted(request: Request) -> dict[str, str]:
        """A form's fields, once its CSRF token matches the same-site cookie."""
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        cookie = request.cookies.get("cw_csrf", "")
        if not cookie or not same(fields.get("csrf", ""), cookie):
            raise HTTPException(403, "the form is stale or from another site: reload the page")
        return fields

    def error_page(request: Request, status: int, detail: str) -> Response:
        """``{"error": detail}`` under /api/, else the HTML error page."""
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": detail}, status)
        return page(request, "web/error.html.j2", status, code=status, detail=detail)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        return error_page(request, status, getattr(exc, "detail", "error"))

    async def store_failed(request: Request, exc: Exception) -> Response:
        """The store could not answer (locked, unreachable, full): a 503 the client may
        retry, and one line in the server's log. The error names the database (masked),
        which is the operator's business, not every reader's."""
        log.warning("%s %r: %s", request.method, request.url.path, exc)
        busy = isinstance(exc, StoreBusy)
        detail = (
            "the archive is busy; try again in a moment"
            if busy
            else "the archive's database is not answering; the server's log says why"
        )
        response = error_page(request, 503, detail)
        response.headers["Retry-After"] = "5" if busy else "30"
        return response

    return Site(
        store, options, env, page, number, search, source_of, version_of, since_of, stance_of,
        known_claim, source_id_of, paged, searched, posted, not_found, store_failed,
    )  # fmt: skip


def same(given: str, expected: str) -> bool:
    """Constant-time comparison that any input, non-ASCII too, can go through."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def score_param(value: str | None, default: float) -> float:
    """A score or significance from 0 to 1 (beyond it, the nearest end); "nan" is no
    number, and read as 0 it had listed everything."""
    try:
        number = float(value) if value else default
    except ValueError:
        number = math.nan
    if math.isnan(number):
        raise HTTPException(400, "min must be a number from 0 to 1")
    return min(1.0, max(0.0, number))


def yes_no(value: str | None, name: str) -> bool | None:
    """A filter that is on (1), off (0) or not given."""
    if not value:
        return None
    if value not in ("0", "1"):
        raise HTTPException(400, f"{name} is 1 or 0")
    return value == "1"
