"""Atom feeds (valid Atom 1.0, stable entry ids, 50 entries a page with rel="next"):
every change, one source's changes, one claim's flags, and flags by stance."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from archiver.app.words import score_words
from archiver.web.site import STANCES, Site
from store.models import FlagFilter, StoredChange, StoredFlag


def routes(site: Site) -> list[Route]:
    store, env = site.store, site.env
    source_of, known_claim, paged = site.source_of, site.known_claim, site.paged

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

    return [
        Route("/feeds/changes.atom", feed_changes),
        Route("/feeds/sources/{ref}.atom", feed_source),
        Route("/feeds/claims/{claim}.atom", feed_claim),
        Route("/feeds/flags/{stance}.atom", feed_stance),
    ]
