"""The JSON API under /api/v1: the records the CLI's --json prints, with the same field
names (docs/api.md). The change and flag logs page by keyset (``before=ID``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from archiver.app.status import StatusOptions, status_record
from archiver.cli.base import json_default
from archiver.web.site import API_PAGE, Site, score_param, yes_no
from store.db import MAX_BIG_ID
from store.models import FlagFilter


def routes(site: Site) -> list[Route]:
    store, options, number, search = site.store, site.options, site.number, site.search
    source_of, version_of, since_of = site.source_of, site.version_of, site.since_of
    stance_of, known_claim, source_id_of = site.stance_of, site.known_claim, site.source_id_of
    searched = site.searched

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

    def api_search(request: Request) -> Response:
        from archiver.cli.views import search_row

        limit = number(request, "limit", API_PAGE, API_PAGE, low=1)
        if not (request.query_params.get("q") or "").strip():
            raise HTTPException(400, "q (the phrase to look for) is required")
        _phrase, _history, found, _more = searched(request, limit)
        return api(
            {"source": f.source.name, "url": f.source.shown_url, **search_row(f)} for f in found
        )

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
        v = version_of(s, request.path_params["n"])
        return api([{**version_row(s, v), "text": store.read_text(v)}])

    async def api_changes(request: Request) -> Response:
        from archiver.cli.views import change_row

        minimum = score_param(request.query_params.get("min"), 0.0)
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
            min_score=score_param(request.query_params.get("min"), 0.0),
            source_id=source_id_of(request),
            limit=limit + 1,
            removed=yes_no(request.query_params.get("removed"), "removed"),
            before=cursor(request, lambda n: store.flags(FlagFilter(ids=(n,))), "flag"),
        )
        return api_page(request, store.flags(which), limit, flag_row)

    async def api_claims(request: Request) -> Response:
        from archiver.cli.claims import claim_rows

        return api(claim_rows(store))

    async def api_status(request: Request) -> Response:
        status = options.status or StatusOptions(store.url)
        return api([status_record(store, options.clock(), status)])

    return [
        Route("/api/v1/sources", api_sources),
        Route("/api/v1/sources/{ref}/versions", api_versions),
        Route("/api/v1/sources/{ref}/versions/{n}", api_version),
        Route("/api/v1/changes", api_changes),
        Route("/api/v1/flags", api_flags),
        Route("/api/v1/claims", api_claims),
        Route("/api/v1/status", api_status),
        Route("/api/v1/search", api_search),
    ]
