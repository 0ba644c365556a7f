"""Per-source selectors (CSS or XPath, with exclusions), as a user sets them: the text is
exactly the selection, an excluded ad never makes a version, a selector that matches
nothing is a failed capture, and changing the selector is not an edit of the page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from archiver.app.seeds import load_sources
from archiver.text.normalize import normalize
from archiver.text.selection import Selector, check, extract_selected, select_text
from store.errors import ConfigError, SelectorMatchedNothing, UsageError
from tests.support import claimwatch, story_dir

PAGE = """<html lang="de"><head><title>Rathaus: Sitzung</title>
<meta property="og:title" content="Council: the Tuesday meeting">
<style>p {{ color: red }}</style></head><body>
<nav>Home | Politics | Sport</nav>
<div class="article">
  <h1>The council met on Tuesday</h1>
  <p>The budget for the <b>library</b> was approved.</p>
  <div class="ad">Advert {ad}: buy a sofa</div>
  <p>The vote was <i>seven</i> to two.<br>Two members were absent.</p>
  <script>document.title = "x"</script>
</div>
<aside class="related">Most read: {ad}</aside>
</body></html>"""

SELECTED = (
    "The council met on Tuesday\nThe budget for the library was approved.\n"
    "The vote was seven to two.\nTwo members were absent."
)


def test_selection_is_exactly_the_selected_text_without_exclusions() -> None:
    html = PAGE.format(ad=1)
    text = normalize(select_text(html, Selector("div.article", ("div.ad",))))
    assert text == SELECTED
    with_ad = normalize(select_text(html, Selector("div.article")))
    assert "Advert 1: buy a sofa" in with_ad and "document.title" not in with_ad
    xpath = normalize(select_text(html, Selector("//div[@class='article']/p")))
    assert xpath.splitlines() == SELECTED.splitlines()[1:]
    page = extract_selected(html.encode(), None, Selector("div.article h1"))
    assert (page.text.strip(), page.title, page.language) == (
        "The council met on Tuesday",
        "Council: the Tuesday meeting",
        "de",
    )


def test_a_selector_that_matches_nothing_or_cannot_parse_is_one_clear_error() -> None:
    with pytest.raises(SelectorMatchedNothing, match=r"'div\.missing' matched nothing"):
        select_text(PAGE.format(ad=1), Selector("div.missing"))
    with pytest.raises(SelectorMatchedNothing, match="without text"):
        select_text("<html><body><div class='x'> </div></body></html>", Selector("div.x"))
    for bad, message in (("div[", "not a valid CSS selector"), ("//div[", "not a valid XPath")):
        with pytest.raises(UsageError, match=message):
            check(Selector(bad))
    with pytest.raises(UsageError, match="not a valid CSS"):
        check(Selector("div", ("p[",)))


def test_sources_yaml_takes_select_and_exclude(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(
        "sources:\n  - url: https://example.org/a\n    select: div.article\n"
        "    exclude: [div.ad, aside]\n",
        encoding="utf-8",
    )
    [spec] = load_sources(path)
    assert (spec.select, spec.exclude) == ("div.article", ("div.ad", "aside"))
    path.write_text(
        "sources:\n  - url: https://example.org/a\n    select: 'div['\n", encoding="utf-8"
    )
    with pytest.raises(
        ConfigError, match=r"sources.yaml:2: field .select.: .div\[. is not a valid CSS selector"
    ):
        load_sources(path)
    path.write_text(
        "sources:\n  - url: https://example.org/a\n    exclude: [div.ad]\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="exclude goes with select"):
        load_sources(path)


class Site:
    """The article page, whose ad (inside the article) changes on every request."""

    def __init__(self) -> None:
        self.requests = 0
        self.html = PAGE

    def __call__(self, request: Request) -> Response:
        self.requests += 1
        return Response(self.html.format(ad=self.requests), content_type="text/html")


def checks(story: Path, source: str = "a") -> dict:
    r = claimwatch(story, "check", source, "--json")
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout.splitlines()[0])


@pytest.mark.e2e
@pytest.mark.slow
def test_an_excluded_ad_never_makes_a_version_and_a_new_selector_is_not_an_edit(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    story = story_dir(tmp_path)
    site = Site()
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/a.html").respond_with_handler(site)
    url = httpserver.url_for("/a.html")
    assert claimwatch(story, "init").returncode == 0
    r = claimwatch(story, "sources", "add", url, "--label", "a", "--select", "div[")
    assert r.returncode == 2 and "not a valid CSS selector" in r.stderr
    r = claimwatch(
        story, "sources", "add", url, "--label", "a", "--select", "div.article",
        "--exclude", "div.ad",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr

    assert checks(story)["outcome"] == "new_version"
    assert [checks(story)["outcome"] for _ in range(3)] == ["same_text"] * 3
    assert site.requests == 4  # every check read the page; the ad changed every time
    history = claimwatch(story, "history", "a", "--json").stdout.splitlines()
    assert len(history) == 1
    assert claimwatch(story, "show", "a").stdout.strip() == SELECTED
    [listed] = [
        row
        for line in claimwatch(story, "sources", "list", "--json").stdout.splitlines()
        if (row := json.loads(line))["label"] == "a"
    ]
    assert (listed["select"], listed["exclude"]) == ("div.article", ["div.ad"])
    exported = claimwatch(story, "sources", "export").stdout
    assert "select: div.article" in exported and "div.ad" in exported

    # A selector that matches nothing: a failed capture that says so, no empty version.
    r = claimwatch(story, "sources", "edit", "a", "--select", "div.gone")
    assert r.returncode == 0, r.stderr
    failed = checks(story)
    assert failed["outcome"] == "failed" and failed["error_class"] == "SelectorMatchedNothing"
    assert "'div.gone' matched nothing" in failed["error"]
    assert len(claimwatch(story, "history", "a", "--json").stdout.splitlines()) == 1

    # A new selector: its first text is a new version marked "selector changed".
    assert claimwatch(story, "sources", "edit", "a", "--select", "div.article p").returncode == 0
    assert checks(story)["outcome"] == "new_version"
    [change] = [
        json.loads(line) for line in claimwatch(story, "changes", "--json").stdout.splitlines()
    ]
    assert (change["kind"], change["reasons"]) == ("selector", ["selector changed"])
    assert change["significance"] == 0.0
    # ... and the next real edit of the page is an ordinary edit again.
    site.html = PAGE.replace("<i>seven</i> to two", "<i>eight</i> to one")
    assert checks(story)["outcome"] == "new_version"
    kinds = [
        json.loads(line)["kind"]
        for line in claimwatch(story, "changes", "--json").stdout.splitlines()
    ]
    assert kinds == ["edit", "selector"]
    r = claimwatch(story, "sources", "edit", "a", "--no-select")
    assert r.returncode == 0 and "extracted article again" in r.stdout
