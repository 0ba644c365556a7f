"""The web view: the story, its claims on a timeline, sources, versions side by side,
the change log, flags with review, Atom feeds and a JSON API (Starlette, Jinja2).

Run by ``claimwatch web``. Safe by default:

* it binds 127.0.0.1; any other address needs a token (``[web] token``,
  ``CLAIMWATCH_WEB_TOKEN``), asked for as ``?token=`` once (then a cookie) or as
  ``Authorization: Bearer``;
* every response carries a strict Content-Security-Policy: scripts only from the
  app itself (there is one small script, for picking versions), no framing;
* writes (a reviewer's verdict) are POST with a CSRF token (double submit: a
  SameSite=Strict cookie and a form field);
* an archived page's HTML is never rendered in the app's origin: it is shown as
  escaped text, or served from its own path with ``Content-Security-Policy:
  default-src 'none'; sandbox`` inside a sandboxed iframe;
* every template autoescapes; charts are SVG drawn on the server; the stylesheet
  and script are served by the app: nothing comes from a CDN.

The JSON API under ``/api/v1`` returns the records the CLI's ``--json`` prints,
with the same field names (docs/api.md).
"""

from __future__ import annotations

import hmac
import ipaddress
import itertools
import json
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from archiver.app.evidence import add_evidence
from archiver.app.search import archive_search
from archiver.app.status import StatusOptions, status_record
from archiver.app.words import score_words
from archiver.claims.matcher import stance_unsure
from archiver.cli.base import json_default, parse_since
from archiver.text.diff import DiffOptions, diff
from archiver.text.direction import direction
from archiver.text.pdf import PDF
from archiver.text.render import Header, RenderOptions, hunks
from archiver.text.search import MIN_PHRASE, folded
from store.db import MAX_BIG_ID
from store.errors import NotFoundError, StoreBusy, StoreError, UsageError
from store.models import FlagFilter, Source, StoredChange, StoredFlag, Version
from store.repo import Store

HERE = Path(__file__).resolve().parent
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
    env.globals["dir_of"] = direction
    env.globals["unsure"] = lambda f: stance_unsure(f.reasons, f.verdict)
    return env


class _Security(BaseHTTPMiddleware):
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
            if not given or not _same(given, token):
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


def create_app(store: Store, options: WebOptions | None = None) -> Starlette:
    options = options or WebOptions()
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

    async def story(request: Request) -> HTMLResponse:
        articles = []
        for s in store.seed_articles():
            v = store.current_version(s)
            if v is not None:
                articles.append((s, v, store.read_text(v)))
        claims = store.claims()
        evidence: dict[str, list[StoredFlag]] = {c.id: [] for c in claims}
        for f in store.flags(FlagFilter(limit=5000)):
            if f.claim_id in evidence and f.verdict != "rejected":
                evidence[f.claim_id].append(f)
        # The counts are the store's (``Store.claims``: rejected flags left out, the
        # reviewer's stance), over every flag, not only the timeline's newest 5,000.
        charts = {claim: timeline(shown) for claim, shown in evidence.items()}
        return page(request, "web/story.html.j2", articles=articles, claims=claims,
                    charts=charts, summary=store.story_summary())  # fmt: skip

    def searched(request: Request, limit: int) -> tuple[str, bool, list[Any], bool]:
        """The phrase (``q``), whether every version is read (``history=1``), the first
        ``limit`` results and whether there are more."""
        phrase = request.query_params.get("q") or ""
        if len(phrase) > SEARCH_MAX:
            raise HTTPException(400, f"q must be at most {SEARCH_MAX} characters")
        history = _yes_no(request.query_params.get("history")) or False
        if not phrase.strip():
            return phrase, history, [], False
        if len(folded(phrase)) < MIN_PHRASE:
            raise HTTPException(400, f"q must be at least {MIN_PHRASE} characters")
        found = list(itertools.islice(
            archive_search(store, store.iter_sources(), phrase, history), limit + 1
        ))  # fmt: skip
        return phrase, history, found[:limit], len(found) > limit

    # The searches read every source's text, seconds on a large archive: plain
    # functions, which Starlette runs in its thread pool, so the server keeps answering
    # other pages meanwhile.
    def search_page(request: Request) -> HTMLResponse:
        phrase, history, found, more = searched(request, SEARCH_SHOWN)
        return page(request, "web/search.html.j2", q=phrase, history=history, found=found,
                    more=more, shown=SEARCH_SHOWN)  # fmt: skip

    def api_search(request: Request) -> Response:
        from archiver.cli.views import search_row

        limit = number(request, "limit", API_PAGE, API_PAGE, low=1)
        if not (request.query_params.get("q") or "").strip():
            raise HTTPException(400, "q (the phrase to look for) is required")
        _phrase, _history, found, _more = searched(request, limit)
        return api({"source": f.source.name, "url": f.source.url, **search_row(f)} for f in found)

    async def sources_page(request: Request) -> HTMLResponse:
        q = search(request)
        kind = request.query_params.get("kind") or None
        failing = request.query_params.get("failing") == "1"
        n = number(request, "page", 1) or 1
        rows, total = store.source_page(
            q, kind, failing, (n - 1) * options.page_size, options.page_size
        )
        pages = max(1, -(-total // options.page_size))
        changed = store.last_changes([s.id for s in rows])
        return page(request, "web/sources.html.j2", rows=rows, total=total, page=n, pages=pages,
                    q=q or "", kind=kind or "", failing=failing, changed=changed)  # fmt: skip

    async def source_page(request: Request) -> HTMLResponse:
        s = source_of(request.path_params["ref"])
        versions = store.versions(s.id)
        changes = store.changes(source_id=s.id, limit=500)
        sig = {c.to_version: c.significance for c in changes}
        numbers = [v.number for v in versions]
        a = number(request, "a", numbers[-2] if len(numbers) > 1 else 0, high=2**31)
        b = number(request, "b", numbers[-1] if numbers else 0, high=2**31)
        compared = None
        if a and b and a != b and a in numbers and b in numbers:
            compared = compare(s, store.get_version(s, a), store.get_version(s, b))
        return page(request, "web/source.html.j2", s=s, versions=versions, changes=changes,
                    sparkline=sparkline([sig.get(v.number, 0.0) for v in versions]),
                    a=a, b=b, compared=compared, claims=list(store.active_claims()))  # fmt: skip

    def compare(s: Source, old: Version, new: Version) -> dict[str, Any]:
        old_text, new_text = store.read_text(old), store.read_text(new)
        change = diff(old_text, new_text, DiffOptions(), old.title, new.title)
        header = Header(s.name, f"version {old.number}", f"version {new.number}", s.url)
        return {
            "change": change,
            "header": header,
            "hunks": hunks(change, new_text, RenderOptions(context=1)),
            "title_changed": bool(old.title and new.title and old.title != new.title),
            "left_out": 0,
        }

    async def version_page(request: Request) -> HTMLResponse:
        """One version: its text as archived, what was read with it, and its flags."""
        s = source_of(request.path_params["ref"])
        v = _version(s, request.path_params["n"])
        numbers = [x.number for x in store.versions(s.id)]
        at = numbers.index(v.number)
        earlier = numbers[at - 1] if at > 0 else None
        later = numbers[at + 1] if at + 1 < len(numbers) else None
        raised = store.flags(FlagFilter(source_id=s.id, limit=5000))
        return page(request, "web/version.html.j2", s=s, v=v, text=store.read_text(v),
                    earlier=earlier, later=later,
                    flags=[f for f in raised if f.version == v.number])  # fmt: skip

    async def raw_text(request: Request) -> HTMLResponse:
        s = source_of(request.path_params["ref"])
        v = _version(s, request.path_params["n"])
        raw = store.read_raw(v)
        if v.content_type == PDF:  # bytes no one reads as text: the file, to download
            return page(request, "web/raw.html.j2", s=s, v=v, body=None, size=len(raw))
        return page(request, "web/raw.html.j2", s=s, v=v, body=raw.decode("utf-8", "replace"))

    async def raw_frame(request: Request) -> Response:
        """The archived HTML, for a sandboxed iframe only: no script, no request."""
        s = source_of(request.path_params["ref"])
        v = _version(s, request.path_params["n"])
        if v.content_type == PDF:  # a download, never shown in the app's own origin
            name = f"{s.id}-v{v.number}.pdf"
            return Response(
                store.read_raw(v),
                media_type=PDF,
                headers={
                    "Content-Disposition": f'attachment; filename="{name}"',
                    "Content-Security-Policy": RAW_CSP,
                },
            )
        return Response(
            store.read_raw(v),
            media_type="text/html",
            headers={"Content-Security-Policy": RAW_CSP, "X-Frame-Options": "SAMEORIGIN"},
        )

    def _version(s: Source, n: str, status: int = 404) -> Version:
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

    async def changes_page(request: Request) -> HTMLResponse:
        minimum = _float(request.query_params.get("min"), 0.0)
        ref = request.query_params.get("source") or None
        source_id, since = source_id_of(request), since_of(request)
        since_text = request.query_params.get("since") or ""
        rows, more, n = paged(
            request,
            lambda limit: store.changes(
                since=since, source_id=source_id, min_significance=minimum, limit=limit
            ),
            size=100,
        )
        return page(request, "web/changes.html.j2", rows=rows, min=minimum, source=ref or "",
                    since=since_text, page=n, more=more)  # fmt: skip

    async def flags_page(request: Request) -> HTMLResponse:
        claim = known_claim(request.query_params.get("claim") or None)
        stance = stance_of(request)
        rows = store.flags(FlagFilter(claim_id=claim, stance=stance, limit=500))
        return page(request, "web/flags.html.j2", rows=rows, claim=claim or "", stance=stance or "",
                    claims=list(store.active_claims()))  # fmt: skip

    async def flag_page(request: Request) -> HTMLResponse:
        rows = store.flags(FlagFilter(ids=(int(request.path_params["id"]),)))
        if not rows:
            raise HTTPException(404, "no such flag")
        f = rows[0]
        # What the reviewer judges the sentence against, and the edit that brought it.
        claim = next((c for c in store.claims(active_only=False) if c.id == f.claim_id), None)
        edits = store.changes(ids=[f.change_id]) if f.change_id is not None else []
        change = edits[0] if edits else None
        return page(request, "web/flag.html.j2", f=f, claim=claim, change=change)

    async def posted(request: Request) -> dict[str, str]:
        """A form's fields, once its CSRF token matches the same-site cookie."""
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        cookie = request.cookies.get("cw_csrf", "")
        if not cookie or not _same(fields.get("csrf", ""), cookie):
            raise HTTPException(403, "the form is stale or from another site: reload the page")
        return fields

    async def review(request: Request) -> Response:
        form = await posted(request)
        verdict = str(form.get("verdict", ""))
        stance = str(form.get("stance", "")) or None
        if verdict not in ("confirmed", "rejected") or (stance and stance not in STANCES):
            raise HTTPException(400, "verdict is confirmed or rejected")
        flag_id = int(request.path_params["id"])
        try:
            store.review(flag_id, verdict, options.clock(), stance)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        return RedirectResponse(f"/flags/{flag_id}", status_code=303)

    async def add_flag(request: Request) -> Response:
        """Evidence the matcher missed, from the source page's form (``flags add``)."""
        form = await posted(request)
        s = source_of(request.path_params["ref"])
        v = _version(s, form.get("version", ""), status=400)  # the form's mistake
        stance = form.get("stance", "")
        if stance not in STANCES:
            raise HTTPException(400, "stance is supports, contradicts or mentions")
        claim, quote = form.get("claim", ""), form.get("sentence", "")
        try:
            added = add_evidence(store, s, v, claim, stance, quote, options.clock())
        except UsageError as exc:
            raise HTTPException(400, str(exc)) from None
        return RedirectResponse(f"/flags/{added.flag.id}", status_code=303)

    # -- Atom ------------------------------------------------------------------

    def paged(
        request: Request, fetch: Callable[[int], list[Any]], size: int = 50
    ) -> tuple[list[Any], bool, int]:
        """Page ``?page=`` of a newest-first listing: ``fetch(limit)`` reads up to the
        page's end and one row more, which says whether a next page exists."""
        n = number(request, "page", 1) or 1
        window = fetch(n * size + 1)[(n - 1) * size :]
        return window[:size], len(window) > size, n

    def atom(
        request: Request, title: str, entries: list[dict[str, Any]], n: int, more: bool
    ) -> Response:
        base = str(request.url.replace(query=""))
        xml = env.get_template("web/feed.atom.j2").render(
            title=title, feed_id=f"tag:claimwatch,2025:{request.url.path}", self_url=base,
            page=n, more=more, entries=entries,
            updated=max((e["updated"] for e in entries), default=datetime(2025, 1, 1, tzinfo=UTC)),
        )  # fmt: skip
        return Response(xml, media_type="application/atom+xml")

    def change_entries(rows: list[StoredChange], request: Request) -> list[dict[str, Any]]:
        root = str(request.base_url).rstrip("/")
        return [
            {
                "id": f"tag:claimwatch,2025:change/{c.id}",
                "title": f"{c.source_name}: {c.summary} (significance {c.significance:.2f})",
                "link": f"{root}/sources/{c.source_id}?a={c.from_version}&b={c.to_version}",
                "updated": c.created_at,
                "summary": "; ".join(c.reasons[:3]),
            }
            for c in rows
        ]

    def flag_entries(rows: list[StoredFlag], request: Request) -> list[dict[str, Any]]:
        root = str(request.base_url).rstrip("/")
        return [
            {
                "id": f"tag:claimwatch,2025:flag/{f.id}",
                "title": f"{f.claim_id} {f.final_stance} ({score_words(f.score, f.added)}): "
                f"{f.source_name}{', removed from the page' if f.removed else ''}",
                "link": f"{root}/flags/{f.id}",
                "updated": f.created_at,
                "summary": f.evidence,
            }
            for f in rows
            if f.verdict != "rejected"
        ]

    async def feed_changes(request: Request) -> Response:
        rows, more, n = paged(request, lambda limit: store.changes(limit=limit))
        return atom(request, "claimwatch: every change", change_entries(rows, request), n, more)

    async def feed_source(request: Request) -> Response:
        s = source_of(request.path_params["ref"])
        rows, more, n = paged(request, lambda limit: store.changes(source_id=s.id, limit=limit))
        return atom(request, f"claimwatch: {s.name}", change_entries(rows, request), n, more)

    async def feed_claim(request: Request) -> Response:
        claim = known_claim(request.path_params["claim"]) or ""
        rows, more, n = paged(
            request, lambda limit: store.flags(FlagFilter(claim_id=claim, limit=limit))
        )
        return atom(request, f"claimwatch: {claim}", flag_entries(rows, request), n, more)

    async def feed_stance(request: Request) -> Response:
        stance = request.path_params["stance"]
        if stance not in STANCES:
            raise HTTPException(404, "stance is supports, contradicts or mentions")
        rows, more, n = paged(
            request, lambda limit: store.flags(FlagFilter(stance=stance, limit=limit))
        )
        title = f"claimwatch: flags that {stance}"
        return atom(request, title, flag_entries(rows, request), n, more)

    # -- the JSON API: the CLI's --json records ---------------------------------

    def api(rows: Any, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(list(rows), default=json_default, ensure_ascii=False)
        return Response(body, media_type="application/json", headers=headers)

    def api_page(request: Request, rows: list[Any], limit: int, record: Any) -> Response:
        """A page of a newest-first log, read one row past ``limit``: when there is more,
        a ``Link: <...?before=ID>; rel="next"`` header names the next page (the same
        query from the page's last row on, so rows added meanwhile shift nothing)."""
        shown = rows[:limit]
        headers = None
        if len(rows) > limit:
            after = request.url.include_query_params(before=shown[-1].id)
            headers = {"Link": f'<{after}>; rel="next"'}
        return api((record(r) for r in shown), headers)

    def cursor(request: Request, find: Callable[[int], list[Any]], what: str) -> Any:
        """``before=ID``: the (time, id) of that change or flag, where the page resumes."""
        if "before" not in request.query_params:
            return None
        n = number(request, "before", 0, MAX_BIG_ID)
        found = find(n)
        if not found:
            raise HTTPException(404, f"no {what} {n}")
        return (found[0].created_at, found[0].id)

    async def api_sources(request: Request) -> Response:
        from archiver.cli.sources import source_row

        n = number(request, "page", 1) or 1
        rows, _total = store.source_page(
            search(request), request.query_params.get("kind"), False,
            (n - 1) * options.page_size, options.page_size,
        )  # fmt: skip
        return api(source_row(s) for s in rows)

    async def api_versions(request: Request) -> Response:
        from archiver.cli.views import version_row

        s = source_of(request.path_params["ref"])
        return api(version_row(s, v) for v in store.versions(s.id))

    async def api_version(request: Request) -> Response:
        from archiver.cli.views import version_row

        s = source_of(request.path_params["ref"])
        v = _version(s, request.path_params["n"])
        return api([{**version_row(s, v), "text": store.read_text(v)}])

    async def api_changes(request: Request) -> Response:
        from archiver.cli.views import change_row

        minimum = _float(request.query_params.get("min"), 0.0)
        limit = number(request, "limit", API_PAGE, API_PAGE, low=1)
        found = store.changes(
            since=since_of(request),
            source_id=source_id_of(request),
            min_significance=minimum,
            limit=limit + 1,
            before=cursor(request, lambda n: store.changes(ids=[n]), "change"),
        )
        return api_page(request, found, limit, change_row)

    async def api_flags(request: Request) -> Response:
        from archiver.cli.claims import flag_row

        limit = number(request, "limit", API_PAGE, API_PAGE, low=1)
        which = FlagFilter(
            claim_id=known_claim(request.query_params.get("claim") or None),
            stance=stance_of(request),
            since=since_of(request),
            min_score=_float(request.query_params.get("min"), 0.0),
            source_id=source_id_of(request),
            limit=limit + 1,
            removed=_yes_no(request.query_params.get("removed")),
            before=cursor(request, lambda n: store.flags(FlagFilter(ids=(n,))), "flag"),
        )
        return api_page(request, store.flags(which), limit, flag_row)

    async def api_claims(request: Request) -> Response:
        from archiver.cli.claims import claim_rows

        return api(claim_rows(store))

    async def api_status(request: Request) -> Response:
        status = options.status or StatusOptions(store.url)
        return api([status_record(store, options.clock(), status)])

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

    routes = [
        Route("/", story),
        Route("/sources", sources_page),
        Route("/sources/{ref}", source_page),
        Route("/sources/{ref}/versions/{n}", version_page),
        Route("/sources/{ref}/versions/{n}/raw", raw_text),
        Route("/raw/{ref}/{n}", raw_frame),
        Route("/changes", changes_page),
        Route("/flags", flags_page),
        Route("/flags/{id:int}", flag_page),
        Route("/search", search_page),
        Route("/flags/{id:int}/review", review, methods=["POST"]),
        Route("/sources/{ref}/flags", add_flag, methods=["POST"]),
        Route("/feeds/changes.atom", feed_changes),
        Route("/feeds/sources/{ref}.atom", feed_source),
        Route("/feeds/claims/{claim}.atom", feed_claim),
        Route("/feeds/flags/{stance}.atom", feed_stance),
        Route("/api/v1/sources", api_sources),
        Route("/api/v1/sources/{ref}/versions", api_versions),
        Route("/api/v1/sources/{ref}/versions/{n}", api_version),
        Route("/api/v1/changes", api_changes),
        Route("/api/v1/flags", api_flags),
        Route("/api/v1/claims", api_claims),
        Route("/api/v1/status", api_status),
        Route("/api/v1/search", api_search),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(_Security, options=options)],
        exception_handlers={HTTPException: not_found, 404: not_found, StoreError: store_failed},
    )


def timeline(shown: list[StoredFlag], width: int = 640, height: int = 100) -> dict[str, Any]:
    """An SVG timeline of one claim's flags (the ones to show: not rejected): time
    across, stance as lane and colour, score as size; each point links to its flag. The
    first and last flag's dates stand under the axis (``ticks``), with the hours when
    they share a day."""
    if not shown:
        return {"points": [], "ticks": [], "width": width, "height": height}
    times = [f.created_at.timestamp() for f in shown]
    lo, hi = min(times), max(times)
    span = (hi - lo) or 1.0
    lanes = {"supports": 20, "mentions": 45, "contradicts": 70}
    points = [
        {
            "x": round(20 + (t - lo) / span * (width - 40), 1),
            "y": lanes[f.final_stance],
            "r": round(3 + 6 * f.score, 1),
            "stance": f.final_stance,
            "id": f.id,
            "label": f"{f.created_at:%Y-%m-%d} {f.final_stance} "
            f"({score_words(f.score, f.added)}){', removed' if f.removed else ''}: "
            f"{f.evidence[:120]}",
        }
        for f, t in zip(shown, times, strict=True)
    ]
    first, last = min(f.created_at for f in shown), max(f.created_at for f in shown)
    if last.date() != first.date():
        labels = [f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}"]
    elif last != first:  # one day: the hours tell its points apart
        labels = [f"{first:%Y-%m-%d %H:%M}", f"{last:%H:%M}"]
    else:
        labels = [f"{first:%Y-%m-%d %H:%M}"]
    ends = ((20, "start"), (width - 20, "end"))
    ticks = [{"x": x, "anchor": a, "label": t} for (x, a), t in zip(ends, labels, strict=False)]
    return {"points": points, "ticks": ticks, "width": width, "height": height}


def sparkline(values: list[float], width: int = 240, height: int = 30) -> str:
    """SVG polyline points for a significance series (0..1)."""
    if not values:
        return ""
    step = width / max(1, len(values) - 1)
    return " ".join(
        f"{round(i * step, 1)},{round(height - 2 - v * (height - 4), 1)}"
        for i, v in enumerate(values)
    )


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison that any input, non-ASCII too, can go through."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def _float(value: str | None, default: float) -> float:
    """A score or significance from 0 to 1 (beyond it, the nearest end); "nan" is no
    number, and read as 0 it had listed everything."""
    try:
        number = float(value) if value else default
    except ValueError:
        number = math.nan
    if math.isnan(number):
        raise HTTPException(400, "min must be a number from 0 to 1")
    return min(1.0, max(0.0, number))


def _yes_no(value: str | None) -> bool | None:
    """A filter that is on (1), off (0) or not given."""
    if not value:
        return None
    if value not in ("0", "1"):
        raise HTTPException(400, "removed is 1 (only flags of removed sentences) or 0 (none)")
    return value == "1"
