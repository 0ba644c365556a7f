"""The offline demo end to end, and the CLI reference staying in step with --help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jobs import demo
from store.models import FlagFilter
from store.repo import Store

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.mark.slow
def test_the_demo_archives_the_story(tmp_path: Path) -> None:
    result = demo.run(tmp_path / "demo", SEEDS, say=lambda _line: None)
    timeline = yaml.safe_load((SEEDS / "demo" / "timeline.yaml").read_text(encoding="utf-8"))
    found = {e["page"] for e in timeline["feed"]["entries"]}
    watched = {w["page"]: w["label"] for w in timeline["watch"]}
    store = Store(result.store_url)
    by_url = {
        s.url.split("?")[0].split(":", 2)[-1].split("/", 1)[-1]: s for s in store.list_sources()
    }
    for name, page in timeline["pages"].items():
        distinct = {(s["title"], tuple(s["paragraphs"])) for s in page["states"].values()}
        key = page["path"].lstrip("/")
        if name == "offtopic":
            assert key not in by_url  # off-topic feed entry: not added
            continue
        assert name in found or name in watched
        source = by_url[key]
        # one version per distinct text: noise-only revisions (counters, "updated N
        # minutes ago", rotating links, new script builds) made none
        assert len(store.versions(source.id)) == len(distinct), name
    teaser = by_url["tech/llama-teaser.html"]
    assert [c.kind for c in store.changes(source_id=teaser.id)] == [
        "revert",
        "edit",
    ]  # the flip-back
    assert result.reverts == 1
    flags = {(f.claim_id, f.stance) for f in store.flags()}
    assert ("meta-ends-open-releases", "supports") in flags
    assert ("meta-ends-open-releases", "contradicts") in flags
    assert ("capex-65b-wall-street", "supports") in flags
    arabic = by_url["ar/meta-llama.html"]
    assert any(f.stance == "supports" for f in store.flags(FlagFilter(source_id=arabic.id)))
    # The newsroom statement's edit drops its promise to keep releasing Llama openly:
    # the removal is flagged, as a contradiction the page no longer makes.
    statement = by_url["newsroom/open-source-ai.html"]
    [dropped] = store.flags(FlagFilter(source_id=statement.id, removed=True))
    assert (dropped.claim_id, dropped.stance) == ("meta-ends-open-releases", "contradicts")
    assert "will keep releasing Llama models" in dropped.evidence
    eml, html = result.digest_files
    assert eml.exists() and "meta-ends-open-releases" in html.read_text(encoding="utf-8")
    store.close()


@pytest.mark.e2e
@pytest.mark.slow
def test_the_cli_prints_the_summary(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "archiver.cli", "demo", "--dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "changes:  13 edits, 1 flip-back recognised" in r.stdout  # counted in words
    assert "10 checks, 1 new version\n" in r.stdout
    assert (
        "meta-ends-open-releases:" in r.stdout
        and "contradicts" in r.stdout
        and "supports" in r.stdout
    )
    assert (
        f"claimwatch --db sqlite:///{tmp_path / 'd' / 'claimwatch.db'} diff meta-statement"
        in r.stdout
    )
    assert "1 removed from pages" in r.stdout
    assert r.stdout.rstrip().endswith("claimwatch.db flags --removed")


@pytest.mark.e2e
def test_cli_reference_is_current(golden) -> None:  # type: ignore[no-untyped-def]
    from archiver.cli.reference import reference

    text = reference()
    for command in (
        "claimwatch diff",
        "claimwatch claims match",
        "claimwatch serve",
        "claimwatch demo",
    ):
        assert f"## {command}\n" in text
    golden(ROOT / "docs" / "cli.md", text)


RAIL_TIMELINE = """
start: 2026-03-02T06:00:00Z
step_hours: 6
steps: 3
pages:
  union:
    path: /union/strike.html
    kind: page
    site: Rail Workers Union
    states:
      0:
        title: Strike notice
        paragraphs:
          - The train drivers' union has called a national strike from Monday.
          - Drivers will stop work for three days unless the operator raises its pay offer.
      2:
        title: Strike notice
        paragraphs:
          - The train drivers' union has called a national strike from Monday.
          - Drivers will stop work for three days unless the operator raises its pay offer.
          - The union said on Friday that the strike is off after the operator offered a seven percent rise.
  weather:
    path: /weather.html
    kind: page
    site: Weather Desk
    states:
      0:
        title: The week ahead
        paragraphs:
          - Rain is expected across the north on Monday, with sunshine later in the week.
feed:
  path: /search/rail.rss
  title: "News search: rail strike"
  topic: strike
  entries: []
watch:
  - {page: union, label: union-notice, every: 6h}
  - {page: weather, label: weather, every: 6h}
"""

RAIL_CLAIMS = """
version: 2
claims:
  - id: national-rail-strike
    statements:
      en: Train drivers will strike across the country from Monday.
  - id: fares-rise
    statements:
      en: Rail fares will rise by five percent in May.
"""


@pytest.mark.e2e
@pytest.mark.slow
def test_a_demo_of_another_story_points_at_its_own_pages_and_claims(tmp_path: Path) -> None:
    """``demo --seeds`` replays any story: what it prints to explore next names that
    story's most revised page and most flagged claim, never the seed story's."""
    seeds = tmp_path / "rail"
    (seeds / "demo").mkdir(parents=True)
    (seeds / "demo" / "timeline.yaml").write_text(RAIL_TIMELINE, encoding="utf-8")
    (seeds / "claims.yaml").write_text(RAIL_CLAIMS, encoding="utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "archiver.cli", "demo", "--dir", str(tmp_path / "d"),
         "--seeds", str(seeds), "--semantic"],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    explore = r.stdout.split("explore:\n", 1)[1].splitlines()
    db = f"claimwatch --db sqlite:///{tmp_path / 'd' / 'claimwatch.db'}"
    assert f"  {db} diff union-notice" in explore
    flagged = r.stdout.split("flags per claim:\n", 1)[1].split("\n")[0].strip()
    assert flagged.startswith("national-rail-strike: "), r.stdout  # the strike is off
    assert f"  {db} claims show national-rail-strike" in explore
    assert not any("meta" in line for line in explore)
    # Its claims have no examples: the digest says the stance is a guess.
    [html] = (tmp_path / "d").glob("digest-*.html")
    assert "stance unsure: the claim has no examples yet" in html.read_text(encoding="utf-8")
    # ... and so does the web view's list of flags, until a reviewer settles it.
    import httpx

    from tests.support.web import Served

    store = Store(f"sqlite:///{tmp_path / 'd' / 'claimwatch.db'}")
    served = Served(store)
    try:
        assert "(unsure)" in httpx.get(served.url + "/flags").text
        [flag] = store.flags(FlagFilter(claim_id="national-rail-strike"))
        store.review(flag.id, "confirmed", flag.created_at, "contradicts")
        assert "(unsure)" not in httpx.get(served.url + "/flags").text
    finally:
        served.stop()
        store.close()


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("ar", "rtl"),
        ("he", "rtl"),
        ("fa-IR", "rtl"),
        ("ckb", "rtl"),
        ("de", "ltr"),
        ("en_GB", "ltr"),
        ("arn", "ltr"),  # Mapudungun: a code that starts like Arabic's
        ("und", "auto"),
        ("", "auto"),
        (None, "auto"),
    ],
)
def test_a_languages_direction(lang: str | None, expected: str) -> None:
    """The ``dir`` of HTML claimwatch writes (the web view, the demo's pages) follows the
    language, for any story: not only Arabic, and the browser decides when unknown."""
    from archiver.text.direction import direction

    assert direction(lang) == expected


def test_the_explore_lines_name_the_program_as_it_can_be_typed(tmp_path: Path) -> None:
    """After the README's `.venv/bin/claimwatch demo`, `claimwatch` is on no PATH
    unless the virtualenv was activated: the lines to copy then name the path it was
    started by, and plain `claimwatch` only when that name finds this very program."""
    from archiver.cli.base import program_name

    script = tmp_path / "my venv" / "bin" / "claimwatch"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    linked = tmp_path / "bin" / "claimwatch"  # on PATH, a symlink to the same program
    linked.parent.mkdir()
    linked.symlink_to(script)
    other = tmp_path / "elsewhere" / "claimwatch"  # another install on PATH
    other.parent.mkdir()
    other.write_text("#!/bin/sh\n", encoding="utf-8")
    assert program_name(".venv/bin/claimwatch", None) == ".venv/bin/claimwatch"
    assert program_name(str(script), None) == f"'{script}'"  # quoted: the path has a space
    assert program_name(str(script), str(linked)) == "claimwatch"
    assert program_name(str(script), str(other)) == f"'{script}'"
    # python -m archiver.cli: argv[0] is the module's file; the name is the best guess
    assert program_name("/x/archiver/cli/__main__.py", None) == "claimwatch"


def test_error_hints_name_the_program_as_it_can_be_typed(tmp_path: Path) -> None:
    """The same for an error's hint: `.venv/bin/claimwatch status` on a store not yet
    made said to run 'claimwatch init', which that shell cannot find."""
    from archiver.cli.base import named_as_started

    line = "claimwatch: error: no store; run 'claimwatch init'"
    assert named_as_started(line, ".venv/bin/claimwatch", None) == (
        "claimwatch: error: no store; run '.venv/bin/claimwatch init'"
    )
    assert named_as_started(line, "/x/archiver/cli/__main__.py", None) == line
    spaced = str(tmp_path / "my venv" / "claimwatch")
    assert named_as_started(line, spaced, None) == line  # quotes in quotes: left alone
    script = Path(sys.executable).parent / "claimwatch"  # the installed entry point
    if not script.exists():
        pytest.fail(f"{script} is missing: install the project (pip install -e .)")
    r = subprocess.run(
        [str(script), "--db", f"sqlite:///{tmp_path / 'none.db'}", "status"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": "/usr/bin:/bin"},  # not activated
        timeout=60,
    )
    assert r.returncode != 0
    assert r.stderr.strip().endswith(f"; run '{script} init'")
