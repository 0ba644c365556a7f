"""The web view's pages: the story, sources, a source's versions side by side, one
version, the archived bytes (sandboxed), the change log, the flags with review, and
the search of the archive's text."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from archiver.app.evidence import add_evidence
from archiver.text.diff import DiffOptions, diff
from archiver.text.pdf import PDF
from archiver.text.render import Header, RenderOptions, hunks
from archiver.web.charts import sparkline, timeline
from archiver.web.site import RAW_CSP, SEARCH_SHOWN, STANCES, Site, score_param
from store.errors import NotFoundError, UsageError
from store.models import FlagFilter, Source, StoredFlag, Version


def routes(site: Site) -> list[Route]:
    store, options, page, number = site.store, site.options, site.page, site.number
    search, source_of, since_of = site.search, site.source_of, site.since_of
    version_of = site.version_of
    stance_of, known_claim, source_id_of = site.stance_of, site.known_claim, site.source_id_of
    paged, searched, posted = site.paged, site.searched, site.posted

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

    # The searches read every source's text, seconds on a large archive: plain
    # functions, which Starlette runs in its thread pool, so the server keeps answering
    # other pages meanwhile.
    def search_page(request: Request) -> HTMLResponse:
        phrase, history, found, more = searched(request, SEARCH_SHOWN)
        return page(request, "web/search.html.j2", q=phrase, history=history, found=found,
                    more=more, shown=SEARCH_SHOWN)  # fmt: skip

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
        header = Header(s.name, f"version {old.number}", f"version {new.number}", s.shown_url)
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
        v = version_of(s, request.path_params["n"])
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
        v = version_of(s, request.path_params["n"])
        raw = store.read_raw(v)
        if v.content_type == PDF:  # bytes no one reads as text: the file, to download
            return page(request, "web/raw.html.j2", s=s, v=v, body=None, size=len(raw))
        return page(request, "web/raw.html.j2", s=s, v=v, body=raw.decode("utf-8", "replace"))

    async def raw_frame(request: Request) -> Response:
        """The archived HTML, for a sandboxed iframe only: no script, no request."""
        s = source_of(request.path_params["ref"])
        v = version_of(s, request.path_params["n"])
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

    async def changes_page(request: Request) -> HTMLResponse:
        minimum = score_param(request.query_params.get("min"), 0.0)
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
        v = version_of(s, form.get("version", ""), status=400)  # the form's mistake
        stance = form.get("stance", "")
        if stance not in STANCES:
            raise HTTPException(400, "stance is supports, contradicts or mentions")
        claim, quote = form.get("claim", ""), form.get("sentence", "")
        try:
            added = add_evidence(store, s, v, claim, stance, quote, options.clock())
        except UsageError as exc:
            raise HTTPException(400, str(exc)) from None
        return RedirectResponse(f"/flags/{added.flag.id}", status_code=303)

    return [
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
    ]
