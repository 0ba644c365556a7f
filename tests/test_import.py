"""sources import (sources.yaml, OPML, a URL list) and sources export: validated like
the seeds, all or nothing, and export reads back as the same watchlist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def claimwatch(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archiver.cli", "--db", f"sqlite:///{db}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
    path = tmp_path / "x.db"
    assert claimwatch(path, "init", "--seeds", str(seeds)).returncode == 0
    return path


def urls(db: Path) -> list[str]:
    import json

    out = claimwatch(db, "sources", "list", "--json").stdout.splitlines()
    return [json.loads(x)["url"] for x in out if json.loads(x)["kind"] != "seed"]


@pytest.mark.e2e
@pytest.mark.slow
def test_a_url_list_an_opml_file_and_sources_yaml(tmp_path: Path, db: Path) -> None:
    plain = tmp_path / "list.txt"
    plain.write_text(
        "# my watchlist\nhttps://example.org/a\n\nhttps://example.org/b\nhttps://example.org/a\n",
        encoding="utf-8",
    )
    r = claimwatch(db, "sources", "import", str(plain))
    assert r.returncode == 0 and "imported 2 sources" in r.stdout
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><body><outline text="News">'
        '<outline text="One" type="rss" xmlUrl="https://example.org/one.xml"/>'
        '<outline text="Two" type="rss" xmlUrl="https://example.org/two.xml"/>'
        "</outline></body></opml>",
        encoding="utf-8",
    )
    assert claimwatch(db, "sources", "import", str(opml)).returncode == 0
    again = claimwatch(db, "sources", "import", str(plain))
    assert "imported 0 sources" in again.stdout and "(2 already watched)" in again.stdout
    assert urls(db) == [
        "https://example.org/a",
        "https://example.org/b",
        "https://example.org/one.xml",
        "https://example.org/two.xml",
    ]


@pytest.mark.e2e
@pytest.mark.slow
def test_a_bad_line_imports_nothing(tmp_path: Path, db: Path) -> None:
    plain = tmp_path / "list.txt"
    plain.write_text("https://example.org/a\nnot a url\n", encoding="utf-8")
    r = claimwatch(db, "sources", "import", str(plain))
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"claimwatch: error: {plain}:2: field 'url': 'not a url' is not an http(s) URL"
    )
    assert urls(db) == []


@pytest.mark.e2e
@pytest.mark.slow
def test_a_label_another_source_holds_imports_nothing(tmp_path: Path, db: Path) -> None:
    """It was an internal error with a SQL statement in it; now it is one line naming the
    file, the label and the source that holds it."""
    assert (
        claimwatch(db, "sources", "add", "https://example.org/c", "--label", "beta").returncode == 0
    )
    listed = tmp_path / "sources.yaml"
    listed.write_text(
        "sources:\n  - url: https://example.org/a\n  - url: https://example.org/d\n"
        "    label: beta\n",
        encoding="utf-8",
    )
    r = claimwatch(db, "sources", "import", str(listed))
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"claimwatch: error: {listed}: label 'beta' is already used by https://example.org/c; "
        "choose another label or leave it out; nothing was imported"
    )
    assert urls(db) == ["https://example.org/c"]


@pytest.mark.e2e
@pytest.mark.slow
def test_export_reads_back_as_the_same_watchlist(tmp_path: Path, db: Path) -> None:
    listed = tmp_path / "sources.yaml"
    listed.write_text(
        "sources:\n"
        "  - url: https://example.org/licence\n    label: licence\n    every: 1d\n"
        "    tags: [licence]\n    ignore: ['Last updated .*']\n"
        "  - url: https://example.org/feed.xml\n    kind: feed\n    topic: meta AND llama\n"
        "    cron: '0 7 * * *'\n    robots: false\n",
        encoding="utf-8",
    )
    assert claimwatch(db, "sources", "import", str(listed)).returncode == 0
    out = tmp_path / "export.yaml"
    assert claimwatch(db, "sources", "export", "--out", str(out)).returncode == 0
    other = tmp_path / "other.db"
    seeds = tmp_path / "seeds"
    assert claimwatch(other, "init", "--seeds", str(seeds)).returncode == 0
    assert claimwatch(other, "sources", "import", str(out)).returncode == 0
    import json

    def rows(path: Path) -> list[dict[str, object]]:
        lines = claimwatch(path, "sources", "list", "--json").stdout.splitlines()
        keep = ("url", "kind", "label", "every", "cron", "tags", "ignore", "topic", "robots")
        return [{k: json.loads(x)[k] for k in keep} for x in lines]

    assert rows(other) == rows(db)
    assert claimwatch(db, "sources", "export").stdout == out.read_text(encoding="utf-8")


@pytest.mark.e2e
@pytest.mark.slow
def test_export_says_which_sources_need_allow_private_again(tmp_path: Path, db: Path) -> None:
    """--allow-private cannot travel in a file (sources.yaml refuses the field), so an
    export names the sources that had it, on stderr and in a comment atop the file."""
    for args in (
        ["http://127.0.0.1:9/status", "--label", "intranet", "--allow-private"],
        ["https://example.org/a", "--label", "public"],
    ):
        assert claimwatch(db, "sources", "add", *args).returncode == 0
    out = tmp_path / "export.yaml"
    r = claimwatch(db, "sources", "export", "--out", str(out))
    assert r.returncode == 0
    note = r.stderr.strip().splitlines()[-1]
    assert note.startswith("note: 1 source added with --allow-private (intranet)"), r.stderr
    assert "public" not in note
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Note: 1 source added with --allow-private (intranet)")
    other = tmp_path / "other.db"
    assert claimwatch(other, "init", "--seeds", str(tmp_path / "seeds")).returncode == 0
    r = claimwatch(other, "sources", "import", str(out))
    assert r.returncode == 0
    assert urls(other) == urls(db)
    # ... and the import says which ones checks will not fetch, and what to do.
    [note] = [line for line in r.stderr.splitlines() if line.startswith("note:")]
    assert note.startswith("note: 1 source with a loopback, private or metadata address")
    assert "http://127.0.0.1:9/status" in note and "--allow-private" in note
