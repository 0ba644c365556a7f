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

The parts: ``site`` (options, security, the shared request helpers), ``pages``,
``feeds``, ``api`` (each a ``routes(site)``) and ``charts``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from archiver.web import api, feeds, pages
from archiver.web.charts import sparkline, timeline
from archiver.web.site import HERE, Security, WebOptions, is_loopback, make_site
from store.errors import StoreError
from store.repo import Store

__all__ = ["WebOptions", "create_app", "is_loopback", "sparkline", "timeline"]


def create_app(store: Store, options: WebOptions | None = None) -> Starlette:
    site = make_site(store, options or WebOptions())
    routes: list[BaseRoute] = [*pages.routes(site), *feeds.routes(site), *api.routes(site)]
    routes.append(Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"))
    return Starlette(
        routes=routes,
        middleware=[Middleware(Security, options=site.options)],
        exception_handlers={
            HTTPException: site.not_found,
            404: site.not_found,
            StoreError: site.store_failed,
        },
    )
