"""What an edit takes away bears on the claims too.

A check matches the sentences an edit adds; a page that drops "the railway refuses
a shorter week" has changed what it says about that claim as much as one that adds
it. ``flags_for_change`` matches a removed sentence in the old text and flags it as
removed; a rewrite that says as much again, a sentence that only moved, and a
removed sentence that bears on nothing raise no such flag.
"""

from __future__ import annotations

import json
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from archiver.app.claimsfile import load_claims, load_story
from archiver.app.worker import flags_for_change, flags_for_coverage
from archiver.claims.matcher import Matcher, MatchSpec, make_matcher
from archiver.claims.rules import Claim, claim_to_dict
from archiver.claims.semantic import E5Embedder
from archiver.text.diff import DiffOptions, diff
from store.models import SourceSpec
from store.repo import Store
from tests.support import EVERYDAY, NOW, SEEDS, article_html, claimwatch
from tests.support.pipeline import OPTIONS, PARAS, Page, run, serve
from tests.support.rail import REFUSAL_DE, REFUSAL_EN, REFUSES, STRIKE, Watched
from tests.support.web import Served

CLAIMS = "version: 2\nclaims:\n" + STRIKE + REFUSES
STRIKING = (
    "The GDL train drivers union began a nationwide strike this week, halting passenger "
    "and freight services across Germany."
)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Claim, ...]:
    path = tmp_path_factory.mktemp("rail") / "claims.yaml"
    path.write_text(CLAIMS, encoding="utf-8")
    return load_story(path).claims


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return make_matcher(MatchSpec(), embedder=E5Embedder())


def found(old: list[str], new: list[str], claims: tuple[Claim, ...], m: Matcher) -> set[tuple]:
    """(claim, stance or 'removed', evidence) of each flag an edit from ``old`` to ``new``
    (paragraphs) raises."""
    a, b = "\n".join(old), "\n".join(new)
    flags, left = flags_for_change(diff(a, b, DiffOptions()), a, b, claims, m)
    assert left == 0
    return {(f.claim_id, "removed" if f.removed else f.stance, f.evidence) for f in flags}


CASES = [
    pytest.param(
        [REFUSAL_EN, EVERYDAY[0]],
        [EVERYDAY[0]],
        {("railway-refuses", "removed", REFUSAL_EN)},
        id="a refusal dropped",
    ),
    pytest.param(
        [REFUSAL_EN, EVERYDAY[0], STRIKING],
        [EVERYDAY[0], STRIKING, REFUSAL_EN],
        set(),
        id="a refusal moved to the end",
    ),
    pytest.param(
        [REFUSAL_EN, EVERYDAY[0]],
        [REFUSAL_DE, EVERYDAY[0]],
        {("railway-refuses", "supports", REFUSAL_DE)},
        id="a refusal reworded in German: only the new wording",
    ),
    pytest.param(
        [EVERYDAY[0], EVERYDAY[1], STRIKING],
        [EVERYDAY[1], STRIKING],
        set(),
        id="a weather report dropped",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("old", "new", "expected"), CASES)
def test_what_an_edit_removes_is_flagged_as_removed(
    old: list[str],
    new: list[str],
    expected: set[tuple],
    story: tuple[Claim, ...],
    matcher: Matcher,
) -> None:
    assert found(old, new, story, matcher) == expected


@pytest.mark.slow
def test_a_removed_flag_says_where_it_was_and_keeps_its_sentences_stance(
    story: tuple[Claim, ...], matcher: Matcher
) -> None:
    a = "\n".join([EVERYDAY[1], f"{EVERYDAY[0]} {REFUSAL_EN}"])
    b = "\n".join([EVERYDAY[1], EVERYDAY[0]])
    (flag,), _left = flags_for_change(diff(a, b, DiffOptions()), a, b, story, matcher)
    assert flag.claim_id == "railway-refuses" and flag.from_change
    assert flag.reasons[0] == "sentence removed from paragraph 2: no longer on the page"
    assert flag.stance == "supports"  # the removed sentence's, read in the old text
    assert any(r.startswith("bears on the claim") for r in flag.reasons)


@pytest.mark.slow
def test_a_page_rewritten_whole_is_matched_only_up_to_the_budget(
    story: tuple[Claim, ...], matcher: Matcher
) -> None:
    """A page emptied or rewritten whole, or a huge new article, must still be archived
    within the CPU limit: the check matches its changed sentences (a new article's
    sentences) in the page's order up to a budget, and says how many it left."""
    old = "\n".join([REFUSAL_EN, EVERYDAY[0], EVERYDAY[1]])
    new = "\n".join([EVERYDAY[2]])
    change = diff(old, new, DiffOptions())
    flags, left = flags_for_change(change, old, new, story, matcher, budget=1)
    assert [(f.claim_id, f.removed) for f in flags] == [("railway-refuses", True)]
    assert left == 3  # two sentences removed and one added, after the first
    flags, left = flags_for_change(change, old, new, story, matcher, budget=0)
    assert (flags, left) == ((), 4)
    article = "\n".join([f"{EVERYDAY[0]} {EVERYDAY[1]}", REFUSAL_EN, STRIKING])
    flags, left = flags_for_coverage(article, story, matcher, budget=3)
    assert {f.claim_id for f in flags} == {"railway-refuses"} and left == 1
    assert flags_for_coverage(article, story, matcher, budget=1) == ((), 4)


@pytest.mark.e2e
@pytest.mark.slow
def test_a_check_flags_a_dropped_sentence_and_the_digest_says_so(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """A page's refusal sentence is dropped by an edit: the check stores a flag for the
    claim on the new version, `flags --json` and `flags` say it is removed, the claim's
    tally counts it apart from its stance, and the digest (text and HTML), the alert
    and the web view's flag pages say so."""
    watched = Watched(tmp_path, httpserver, CLAIMS)
    home = watched.home
    watched.check(EVERYDAY[1], REFUSAL_EN, EVERYDAY[0])
    watched.check(EVERYDAY[1], EVERYDAY[0], EVERYDAY[2])

    r = claimwatch(home, "flags", "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(f["claim"], f["version"], f["evidence"], f["removed"]) for f in rows] == [
        ("railway-refuses", 2, REFUSAL_EN, True)
    ]
    assert rows[0]["change_id"] is not None
    shown = claimwatch(home, "flags")
    assert "p v2  removed from the page" in shown.stdout, shown.stdout
    only = claimwatch(home, "flags", "--removed", "--json")
    assert [json.loads(line)["id"] for line in only.stdout.splitlines()] == [rows[0]["id"]]
    none = claimwatch(home, "flags", "--no-removed")
    assert none.stdout == "" and "no flags match these options" in none.stderr
    # The claim's tally counts it apart: the page no longer supports the claim.
    listed = claimwatch(home, "claims", "list", "--json")
    counts = {c["id"]: c for c in map(json.loads, listed.stdout.splitlines())}["railway-refuses"]
    assert (counts["supports"], counts["contradicts"], counts["removed"]) == (0, 0, 1)
    assert (
        "0 for, 0 against, 0 mentions, 1 removed from pages"
        in claimwatch(home, "claims", "list").stdout
    )
    review = claimwatch(home, "flags", "review", input="s\n")
    assert "p v2, removed from the page (the stance is the removed sentence's)" in review.stdout
    out = home / "digest"
    r = claimwatch(home, "digest", "--dry-run", "--out", str(out))
    assert r.returncode == 0, r.stderr
    html = next(out.glob("*.html")).read_text("utf-8")
    assert "removed: the page no longer says this" in html
    assert "<del>&ldquo;" in html
    message = message_from_bytes(next(out.glob("*.eml")).read_bytes(), policy=policy.default)
    text = message.get_body(("plain",))
    assert text is not None
    assert f'removed from the page] "{REFUSAL_EN}"' in text.get_content()

    posts: list[dict] = []

    def receive(request: Request) -> Response:
        posts.append(json.loads(request.get_data()))
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(receive)
    hook: dict[str, str | None] = {
        "CLAIMWATCH_ALERT_URLS": f"json://127.0.0.1:{httpserver.port}/hook"
    }
    assert claimwatch(home, "alerts", env=hook).returncode == 0
    titles = [p["title"] for p in posts if "railway-refuses" in p["title"]]
    assert len(titles) == 1 and titles[0].endswith(", removed from the page)"), posts

    served = Served(Store(f"sqlite:///{home / 'x.db'}"))
    try:
        listing = httpx.get(f"{served.url}/flags").text
        one = httpx.get(f"{served.url}/flags/{rows[0]['id']}").text
        front = httpx.get(f"{served.url}/").text
        api = [httpx.get(f"{served.url}/api/v1/flags", params={"removed": v}) for v in "10x"]
    finally:
        served.stop()
    assert "1 removed from pages" in front
    assert [r.status_code for r in api] == [200, 200, 400]
    assert [len(r.json()) for r in api[:2]] == [1, 0]
    assert "p v2, removed from the page" in listing
    assert "removed: the page no longer says this" in one and "<del>Deutsche Bahn" in one


@pytest.mark.e2e
@pytest.mark.slow
def test_a_flip_back_that_takes_a_sentence_back_or_restores_it_is_flagged(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """A page adds the refusal, then flips between its two texts, as a page does whose
    headline is under an A/B test: each flip-back is one revert change, and what it
    took back is flagged with the version the page shows again and that revert, once.
    The flips after it raise nothing the source was not flagged with already."""
    watched = Watched(tmp_path, httpserver, CLAIMS)
    home = watched.home
    first, second = [EVERYDAY[1], EVERYDAY[0]], [EVERYDAY[1], REFUSAL_EN, EVERYDAY[0]]
    for paragraphs in (first, second, first, second, first, second):
        watched.check(*paragraphs)

    changes = claimwatch(home, "changes", "--json")
    kinds = {c["id"]: (c["kind"], c["to"]) for c in map(json.loads, changes.stdout.splitlines())}
    r = claimwatch(home, "flags", "--json")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    found = [
        (kinds[f["change_id"]], f["version"], f["removed"])
        for f in reversed(rows)
        if f["claim"] == "railway-refuses" and f["evidence"] == REFUSAL_EN
    ]
    assert found == [(("edit", 2), 2, False), (("revert", 1), 1, True)]
    assert [c for c, _to in kinds.values()].count("revert") == 4


def test_a_check_past_the_budget_archives_the_version_and_says_what_was_not_matched(
    store: Store, httpserver: HTTPServer
) -> None:
    """Through the pipeline: the new version is archived whole and the source carries the
    warning, naming how many sentences were left and the scan that matches them."""
    store.load_claims([claim_to_dict(c) for c in load_claims(SEEDS / "claims.yaml")], NOW)
    page = Page(article_html("Meta and its models", PARAS))
    store.add_source(SourceSpec(url=serve(httpserver, "/h.html", page), label="h"), NOW)
    options = replace(OPTIONS, match_budget=1)
    run(store, "h", 0, options)
    page.html = article_html("Meta and its models", [PARAS[0], EVERYDAY[0], EVERYDAY[1]])
    assert run(store, "h", 1, options).outcome == "new_version"
    source = store.get_source("h")
    assert len(store.versions(source.id)) == 2
    assert source.warning is not None and source.warning.startswith(
        "claims: 3 sentence(s) past the first 1 were not matched"
    )
    assert "flags scan --source" in source.warning
