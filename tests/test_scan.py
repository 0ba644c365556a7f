"""`flags scan`: a claim added after its sources were archived meets what they say now.

A check matches only new text, so without a scan a new claim (or a claim given a
statement in another language) never meets the archive. The scan matches every
watched page's current text, feeds and seed articles aside, and never repeats a flag.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.support import EVERYDAY, WALKOUT, article_html, claimwatch, story_dir
from tests.support.rail import (
    REFUSAL_DE,
    REFUSAL_EN,
    REFUSES,
    SEMANTIC,
    STRIKE,
    STRIKING_DE,
    Watched,
)

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Rail news</title>
<item><title>Deutsche Bahn refuses shorter week for train drivers</title>
<link>{url}</link><description>The railway says it cannot pay.</description></item>
</channel></rss>"""


def flags(story: Path) -> list[dict]:
    r = claimwatch(story, "flags", "--json", "--limit", "0")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.mark.e2e
@pytest.mark.slow
def test_a_claim_added_later_is_found_in_the_archive_by_a_scan(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """The story starts with one claim; its pages are archived; a second claim is added
    to the claims file, and init names it. A check of unchanged pages flags nothing for
    it; `flags scan`
    finds it in an article and in a page (in German, with an English statement), not in
    the feed whose headline says the same, stores the flags new with their paragraph,
    and a second scan adds nothing. --dry-run and --claim keep to what they say."""
    story = story_dir(tmp_path)
    claims_file = story / "seeds" / "claims.yaml"
    claims_file.write_text("version: 2\nclaims:\n" + STRIKE, encoding="utf-8")
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    pages = {
        "/a.html": article_html("Rail strike", [WALKOUT, REFUSAL_EN, EVERYDAY[0]]),
        "/b.html": article_html("Bahn", [REFUSAL_DE, EVERYDAY[1]]),
    }
    for path, html in pages.items():
        httpserver.expect_request(path).respond_with_data(html, content_type="text/html")
    feed = FEED.format(url=httpserver.url_for("/x.html"))
    httpserver.expect_request("/feed.xml").respond_with_data(feed, content_type="application/rss+xml")  # fmt: skip
    semantic: dict[str, str | None] = {"CLAIMWATCH_SEMANTIC": None}
    r = claimwatch(story, "init")
    assert r.returncode == 0 and "flags scan" not in r.stdout  # a first import: no archive
    for args in (
        ("/a.html", "--label", "a", "--kind", "article"),
        ("/b.html", "--label", "b"),
        ("/feed.xml", "--label", "rail-feed", "--kind", "feed", "--topic", "zeppelin"),
    ):
        r = claimwatch(story, "sources", "add", httpserver.url_for(args[0]), *args[1:])
        assert r.returncode == 0, r.stderr
    assert claimwatch(story, "check", "--all", env=semantic).returncode == 0
    before = flags(story)
    assert not [f for f in before if f["claim"] == "railway-refuses"]

    claims_file.write_text("version: 2\nclaims:\n" + STRIKE + REFUSES, encoding="utf-8")
    r = claimwatch(story, "init")  # init names the new claim and says how to meet the archive
    assert r.returncode == 0 and "new: railway-refuses: 'claimwatch flags scan'" in r.stdout
    assert "flags scan" not in claimwatch(story, "init").stdout  # the same claims again
    assert claimwatch(story, "check", "--all", env=semantic).returncode == 0
    assert flags(story) == before  # unchanged pages: nothing new is matched

    dry = claimwatch(story, "flags", "scan", "--dry-run", "--json", env=semantic)
    assert dry.returncode == 0, dry.stderr
    would = [json.loads(line) for line in dry.stdout.splitlines()]
    assert {("a", REFUSAL_EN), ("b", REFUSAL_DE)} <= {(w["source"], w["evidence"]) for w in would}
    assert all(w["claim"] in ("strike-this-week", "railway-refuses") for w in would)
    assert f"scanned 2 text(s): would flag {len(would)};" in dry.stderr  # not the feed or seed
    assert flags(story) == before

    r = claimwatch(story, "flags", "scan", "--claim", "railway-refuses", env=semantic)
    assert r.returncode == 0, r.stderr
    new = [f for f in flags(story) if f not in before]
    assert {(f["source"], f["claim"], f["evidence"]) for f in new} == {
        ("a", "railway-refuses", REFUSAL_EN),
        ("b", "railway-refuses", REFUSAL_DE),
    }
    for f in new:
        assert f["verdict"] is None and f["change_id"] is None and f["version"] == 1
        assert f["reasons"][0].startswith("archive scan, paragraph ")
    assert f"scanned 2 text(s): {len(new)} new flag(s)" in r.stderr
    assert REFUSAL_EN in r.stdout  # each new flag is shown as `flags` shows it

    again = claimwatch(story, "flags", "scan", env=semantic)
    assert again.returncode == 0 and "0 new flag(s)" in again.stderr, again.stderr
    assert len(flags(story)) == len(before) + len(new)
    digest = claimwatch(story, "digest", "--dry-run", "--out", str(story / "digest"))
    assert digest.returncode == 0, digest.stderr
    assert REFUSAL_DE in next((story / "digest").glob("*.html")).read_text("utf-8")

    for bad, says in [
        (("--claim", "nope"), "no claim 'nope'"),
        (("--source", "nowhere"), "nowhere"),
        (("--source", "rail-feed"), "rail-feed is a feed: only pages and articles are scanned"),
    ]:
        r = claimwatch(story, "flags", "scan", *bad)
        assert r.returncode == 2 and says in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.e2e
@pytest.mark.slow
def test_a_history_scan_finds_what_a_page_said_before_it_dropped_it(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """A page said the railway refused, then an edit dropped the sentence, and only then
    was the claim added: a check never met the sentence, and a plain scan reads only
    the current text. `--history` finds the sentence on version 1 and says it
    is gone; a sentence both versions have is flagged once, on the first; nothing is
    repeated by a second scan of either kind."""
    watched = Watched(tmp_path, httpserver, "version: 2\nclaims:\n" + STRIKE)
    story = watched.home
    claims_file = story / "seeds" / "claims.yaml"
    watched.check(STRIKING_DE, REFUSAL_EN, EVERYDAY[0])
    watched.check(STRIKING_DE, EVERYDAY[0], EVERYDAY[1])
    semantic = SEMANTIC
    claims_file.write_text("version: 2\nclaims:\n" + STRIKE + REFUSES, encoding="utf-8")
    assert claimwatch(story, "init").returncode == 0  # the claim comes after the edit
    assert [f for f in flags(story) if f["claim"] == "railway-refuses"] == []

    plain = claimwatch(story, "flags", "scan", "--dry-run", "--json", env=semantic)
    assert plain.returncode == 0, plain.stderr
    assert REFUSAL_EN not in plain.stdout and "scanned 1 text(s)" in plain.stderr

    dry = claimwatch(story, "flags", "scan", "--history", "--dry-run", "--json", env=semantic)
    assert dry.returncode == 0, dry.stderr
    would = [json.loads(line) for line in dry.stdout.splitlines()]
    assert "scanned 2 text(s)" in dry.stderr
    refusal = [w for w in would if w["evidence"] == REFUSAL_EN]
    assert [(w["claim"], w["version"]) for w in refusal] == [("railway-refuses", 1)]
    assert refusal[0]["reasons"][1] == "gone from the current text (version 2)"
    striking = [w for w in would if w["evidence"] == STRIKING_DE]
    assert [(w["claim"], w["version"]) for w in striking] == [("strike-this-week", 1)]
    assert not any("gone" in reason for reason in striking[0]["reasons"])
    assert [f for f in flags(story) if f["claim"] == "railway-refuses"] == []  # dry: none

    r = claimwatch(story, "flags", "scan", "--history", env=semantic)
    assert r.returncode == 0, r.stderr
    stored = {(f["claim"], f["version"], f["evidence"]) for f in flags(story)}
    assert ("railway-refuses", 1, REFUSAL_EN) in stored
    assert "gone from the current text (version 2)" in r.stdout
    count = len(flags(story))
    for args in (("--history",), ()):
        again = claimwatch(story, "flags", "scan", *args, env=semantic)
        assert again.returncode == 0 and "0 new flag(s)" in again.stderr, again.stderr
    assert len(flags(story)) == count


@pytest.mark.slow
def test_a_scan_reads_the_sentence_vectors_a_check_or_an_earlier_scan_kept(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """A scan embeds a sentence only once across runs: what a check embedded, or an
    earlier scan, is read from the store; what it embeds is kept there. In this
    process and in worker processes alike; a dry run reads them and stores nothing."""
    import tempfile
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from archiver.app.matching import Parallel
    from archiver.app.scan import ScanOptions, scan
    from archiver.app.story import prepare_matching, stored_claims
    from archiver.claims.matcher import make_matcher
    from archiver.claims.semantic import E5Embedder
    from store.repo import Store
    from store.schema import sentence_vectors

    watched = Watched(tmp_path, httpserver, "version: 2\nclaims:\n" + STRIKE)
    watched.check(WALKOUT, EVERYDAY[0])  # a page: its first version is not matched
    store = Store(f"sqlite:///{watched.home / 'x.db'}")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    claims = stored_claims(store)

    def kept() -> int:
        with store.reading() as conn:
            return int(
                conn.execute(select(func.count()).select_from(sentence_vectors)).scalar_one()
            )

    with tempfile.TemporaryDirectory() as work:
        spec = prepare_matching(store, claims, None, Path(work), now)

        def embedded(dry_run: bool = False) -> int:
            """Scan with a new process's matcher (nothing in memory): sentences embedded."""
            matcher = make_matcher(spec)
            assert isinstance(matcher.embedder, E5Embedder)
            scan(store, claims, matcher, ScanOptions(dry_run=dry_run), now)
            return matcher.embedder.computed

        before = kept()
        dry = embedded(dry_run=True)
        assert dry > 0 and kept() == before  # a dry run stores nothing
        assert embedded() == dry and kept() > before
        assert embedded(dry_run=True) == 0  # a dry run reads what is kept
        assert embedded() == 0  # every sentence came from the store

        watched.check(REFUSAL_EN, EVERYDAY[1])  # an edit: the check embeds its sentences
        assert embedded() == 0  # the check's vectors, from the store

        with store.transaction() as conn:
            conn.execute(sentence_vectors.delete())
        scan(store, claims, Parallel(spec, 1), ScanOptions(), now)  # in a worker process
        assert kept() > 0  # what the worker embedded came back to be kept
        assert embedded() == 0
    store.close()
