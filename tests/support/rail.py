"""The rail dispute's two-claim story and its sentences, for the tests that need a
claim added later or a sentence dropped (test_scan, test_change_flags)."""

from __future__ import annotations

from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Response

from tests.support import article_html, claimwatch, story_dir

STRIKE = """  - id: strike-this-week
    statements:
      en: The GDL union is striking nationwide this week, halting passenger and freight trains.
      de: Die GDL bestreikt diese Woche bundesweit den Personen- und Güterverkehr der Bahn.
"""
REFUSES = """  - id: railway-refuses
    statements:
      en: Deutsche Bahn refuses a shorter working week, saying it cannot afford it.
"""
REFUSAL_EN = (
    "Deutsche Bahn again rejected the union's demand for a 35-hour week, saying it could "
    "not afford to pay drivers the same for fewer hours."
)
REFUSAL_DE = (
    "Die Bahn lehnt die Forderung nach einer kürzeren Arbeitswoche weiter ab; sie sei "
    "nicht finanzierbar, sagte ein Sprecher."
)
STRIKING_DE = (
    "Die Lokführergewerkschaft GDL streikt seit Mittwoch bundesweit, Personen- und "
    "Güterzüge stehen still."
)


SEMANTIC: dict[str, str | None] = {"CLAIMWATCH_SEMANTIC": None}  # the learned matcher


class Watched:
    """A story in ``home`` with ``claims``, watching one page at /p.html (label "p") of
    ``httpserver``; ``check(*paragraphs)`` serves the page with those paragraphs and
    checks it with the learned matcher."""

    def __init__(self, home: Path, httpserver: HTTPServer, claims: str):
        self.home = story_dir(home)
        (self.home / "seeds" / "claims.yaml").write_text(claims, encoding="utf-8")
        self.html = ""
        httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
        httpserver.expect_request("/p.html").respond_with_handler(
            lambda _request: Response(self.html, content_type="text/html")
        )
        assert claimwatch(self.home, "init").returncode == 0
        r = claimwatch(self.home, "sources", "add", httpserver.url_for("/p.html"), "--label", "p")
        assert r.returncode == 0, r.stderr

    def check(self, *paragraphs: str) -> None:
        self.html = article_html("Rail", list(paragraphs))
        r = claimwatch(self.home, "check", "--all", env=SEMANTIC)
        assert r.returncode == 0, r.stderr
