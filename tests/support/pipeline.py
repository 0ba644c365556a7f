"""One check of one source against a loopback page, with the tests' fast options."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from archiver import pipeline
from archiver.net.fetch import FetchOptions
from store.repo import Store
from tests.support import NOW

OPTIONS = pipeline.CheckOptions(
    fetch=FetchOptions(
        allow_private=True, host_delay=0, backoff_base=0.01, max_attempts=2, read_timeout=2
    ),
    processes=0,
)
PARAS = [
    "Meta said on Monday that its next frontier model would keep its weights private.",
    "The company expects to spend about $65 billion on AI infrastructure this year.",
    "Analysts said the shift had been expected since the new lab was announced.",
]


class Page:
    """A page whose body the test changes between checks; counts conditional requests."""

    def __init__(self, html: str, etag: bool = False):
        self.html, self.etag, self.conditional = html, etag, 0

    def __call__(self, request: Request) -> Response:
        tag = f'"{abs(hash(self.html))}"'
        if self.etag and request.headers.get("If-None-Match") == tag:
            self.conditional += 1
            return Response(status=304)
        headers = {"ETag": tag} if self.etag else {}
        return Response(self.html, content_type="text/html; charset=utf-8", headers=headers)


def serve(httpserver: HTTPServer, path: str, page: Callable[[Request], Response]) -> str:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request(path).respond_with_handler(page)
    return httpserver.url_for(path)


def run(
    store: Store, ref: str, minutes: int = 0, options: pipeline.CheckOptions = OPTIONS
) -> pipeline.CheckResult:
    [result] = pipeline.check(
        store, [store.get_source(ref)], options, clock=lambda: NOW + timedelta(minutes=minutes)
    )
    return result
