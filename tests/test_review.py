"""The reviewer's verdicts, as a user gives them: `flags confirm`, `flags reject` and
`flags review` on a real store fed by a loopback page. A verdict is kept through
re-checks, `gc` and both exports; a rejected sentence is not flagged again; the digest
leaves rejected flags out and marks confirmed ones."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from warcio.archiveiterator import ArchiveIterator

from tests.support import (
    EVERYDAY,
    FIRST,
    RAIL_CLAIMS,
    WALKOUT,
    Page,
    article_html,
    claimwatch,
    story_dir,
)

CLOSED = "Meta said it will keep its next frontier model closed and sell access to it."
OPEN = "WhatsApp will show ads in its Updates tab, more than a decade after Meta bought it for $19 billion."


@pytest.fixture
def story_with_claims(tmp_path: Path) -> Path:
    return story_dir(tmp_path, claims=True)


def flags(story: Path, *args: str) -> list[dict]:
    r = claimwatch(story, "flags", "--json", *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def the_flag(story: Path, evidence: str) -> dict:
    [row] = [f for f in flags(story) if f["evidence"] == evidence]
    return row


@pytest.mark.e2e
@pytest.mark.slow
def test_verdicts_are_kept_and_a_rejected_sentence_is_not_flagged_again(
    story_with_claims: Path, httpserver: HTTPServer, tmp_path: Path
) -> None:
    story = story_with_claims
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    page = Page(article_html("Meta's lab sets release rules", FIRST))
    httpserver.expect_request("/a.html").respond_with_handler(page)
    assert claimwatch(story, "init").returncode == 0
    claimwatch(story, "sources", "add", httpserver.url_for("/a.html"), "--label", "a")

    def version(*sentences: str) -> None:
        page.html = article_html("Meta's lab sets release rules", [*FIRST, *sentences])
        r = claimwatch(story, "check", "a")
        assert r.returncode == 0, r.stderr

    version()
    version(CLOSED, OPEN)
    closed, opened = the_flag(story, CLOSED), the_flag(story, OPEN)
    assert closed["verdict"] is None and opened["verdict"] is None
    assert len(flags(story)) == 2

    r = claimwatch(story, "flags", "reject", str(closed["id"]))
    assert r.returncode == 0, r.stderr
    r = claimwatch(story, "flags", "confirm", str(opened["id"]), "--stance", "contradicts")
    assert r.returncode == 0, r.stderr
    assert the_flag(story, CLOSED)["verdict"] == "rejected"
    assert (the_flag(story, OPEN)["verdict"], the_flag(story, OPEN)["verdict_stance"]) == (
        "confirmed",
        "contradicts",
    )
    r = claimwatch(story, "flags", "reject", "999999")
    assert r.returncode == 2 and "999999" in r.stderr

    # The claims' counts are the reviewer's: the rejected flag left out, the confirmed
    # one under the stance given (as on the web view's story page).
    listed = {
        row["id"]: row
        for row in map(
            json.loads, claimwatch(story, "claims", "list", "--json").stdout.splitlines()
        )
    }
    stances = ("supports", "contradicts", "mentions")
    assert [listed[closed["claim"]][s] for s in stances] == [0, 0, 0]
    assert [listed[opened["claim"]][s] for s in stances] == [0, 1, 0]
    assert listed[opened["claim"]]["examples"]["contradicts"] >= 1  # the verdict, at once

    # Shown where a user looks at a claim's evidence.
    shown = claimwatch(story, "claims", "show", closed["claim"]).stdout
    assert "rejected by a reviewer" in shown

    # The sentence goes away and comes back: a new version, but the rejected evidence
    # is not flagged again; a new sentence still is.
    version(OPEN)
    version(CLOSED, OPEN)
    assert [f["evidence"] for f in flags(story)].count(CLOSED) == 1  # only the reviewed one
    again = "Meta will keep its most capable model closed, a spokesperson said."
    version(CLOSED, OPEN, again)
    assert again in [f["evidence"] for f in flags(story)]

    # gc and both exports keep the verdicts.
    assert claimwatch(story, "gc", "--keep-raw-versions", "1").returncode == 0
    assert the_flag(story, CLOSED)["verdict"] == "rejected"
    out = tmp_path / "all.jsonl"
    assert claimwatch(story, "export", "json", "--all", "--out", str(out)).returncode == 0
    exported = [
        f
        for line in out.read_text(encoding="utf-8").splitlines()
        for v in json.loads(line).get("versions", [])
        for f in v["flags"]
    ]
    verdicts = {f["evidence"]: (f["verdict"], f["verdict_stance"]) for f in exported}
    assert verdicts[CLOSED] == ("rejected", None)
    assert verdicts[OPEN] == ("confirmed", "contradicts")
    warc = tmp_path / "a.warc.gz"
    assert claimwatch(story, "export", "warc", "a", "--out", str(warc)).returncode == 0
    in_warc = []
    with warc.open("rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type == "metadata":
                in_warc += json.loads(record.content_stream().read())["flags"]
    assert {f["evidence"]: f["verdict"] for f in in_warc}[CLOSED] == "rejected"

    # The digest leaves the rejected flag out and marks the confirmed one.
    digest_dir = tmp_path / "digest"
    r = claimwatch(story, "digest", "--dry-run", "--out", str(digest_dir))
    assert r.returncode == 0, r.stderr
    [preview] = list(digest_dir.glob("*.eml"))
    text = preview.read_text(encoding="utf-8")
    assert "contradicts 0.97, confirmed" in text or ", confirmed]" in text
    assert CLOSED not in text


@pytest.mark.e2e
@pytest.mark.slow
def test_review_walks_unreviewed_flags_interactively(
    story_with_claims: Path, httpserver: HTTPServer
) -> None:
    story = story_with_claims
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    page = Page(article_html("Meta's lab sets release rules", FIRST))
    httpserver.expect_request("/a.html").respond_with_handler(page)
    claimwatch(story, "init")
    claimwatch(story, "sources", "add", httpserver.url_for("/a.html"), "--label", "a")
    claimwatch(story, "check", "a")
    page.html = article_html("Meta's lab sets release rules", [*FIRST, CLOSED, OPEN])
    claimwatch(story, "check", "a")
    assert len(flags(story)) == 2
    review = [sys.executable, "-m", "archiver.cli", "--db", f"sqlite:///{story / 'x.db'}"]
    review += ["flags", "review"]
    # Answers that run out quit the review like [q]uit: it said "aborted" and exited 130.
    r = subprocess.run(review, input="s\n", capture_output=True, text=True, cwd=story)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout.endswith("\n0 reviewed\n")
    # Each flag shows the claim it is judged against, not only the claim's id.
    listed = claimwatch(story, "claims", "list", "--json").stdout.splitlines()
    said = {c["id"]: c["statement"] for c in map(json.loads, listed)}
    newest = flags(story)[0]
    assert f"flag {newest['id']}" in r.stdout
    assert f"claim: {said[newest['claim']]}" in r.stdout
    # Reject the first ("n", as "r"); confirm the second, keeping its stance (the default).
    r = subprocess.run(
        review, input="n\nc\n\n", capture_output=True, text=True, cwd=story, timeout=120
    )
    assert r.returncode == 0, r.stderr
    verdicts = sorted(f["verdict"] for f in flags(story))
    assert verdicts == ["confirmed", "rejected"]
    # Nothing is left to review.
    r = claimwatch(story, "flags", "review")
    assert r.returncode == 0 and "nothing to review" in (r.stdout + r.stderr).lower()


@pytest.mark.e2e
@pytest.mark.slow
def test_flags_add_flags_a_sentence_the_matcher_missed_and_replaces_a_rejection(
    story_with_claims: Path, httpserver: HTTPServer
) -> None:
    """`flags add` names a sentence by quoting part of it: a new confirmed flag when the
    matcher had none for it, a confirmation when it had one; an earlier rejection of
    the same sentence for the claim is replaced, and the sentence counts once as an
    example. Every mistake is one line, exit 2, and writes nothing."""
    story = story_with_claims
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    missed = "The company has not said what licence its next model will carry."
    page = Page(article_html("Meta's lab sets release rules", [*FIRST, missed]))
    httpserver.expect_request("/a.html").respond_with_handler(page)
    assert claimwatch(story, "init").returncode == 0
    claimwatch(story, "sources", "add", httpserver.url_for("/a.html"), "--label", "a")
    assert claimwatch(story, "check", "a").returncode == 0
    page.html = article_html("Meta's lab sets release rules", [*FIRST, CLOSED, missed])
    assert claimwatch(story, "check", "a").returncode == 0
    closed = the_flag(story, CLOSED)
    assert missed not in [f["evidence"] for f in flags(story)]
    claim = closed["claim"]

    def examples() -> dict[str, int]:
        r = claimwatch(story, "claims", "list", "--json")
        return {c["id"]: c["examples"] for c in map(json.loads, r.stdout.splitlines())}[claim]

    before = examples()
    assert "near misses (examples of no claim): " in claimwatch(story, "claims", "list").stdout
    for args, says in [
        (["--sentence", "model"], "4 sentences of version 2 of a contain 'model'"),
        (["--sentence", "no such words"], "no sentence of version 2 of a contains"),
        (["--sentence", f"{CLOSED} {missed}"], "runs over more than one sentence"),
        (["--sentence", "licence", "--claim", "no-such-claim"], "no claim 'no-such-claim'"),
    ]:
        full = ["flags", "add", "a", "--claim", claim, "--stance", "contradicts", *args]
        if "--claim" in args:
            full[3:5] = []
        r = claimwatch(story, *full)
        assert r.returncode == 2, r.stderr
        assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = claimwatch(story, "flags", "add", "a", "7", "--claim", claim, "--stance", "supports",
                   "--sentence", "licence")  # fmt: skip
    assert r.returncode == 2 and "a has no version 7" in r.stderr
    assert len(flags(story)) == 1 and examples() == before

    # A missed sentence, quoted in part, in another case and spacing.
    r = claimwatch(story, "flags", "add", "a", "--claim", claim, "--stance", "contradicts",
                   "--sentence", "WHAT  licence")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("flag ") and " added: " in r.stdout
    added = the_flag(story, missed)
    assert (added["verdict"], added["verdict_stance"], added["version"]) == (
        "confirmed",
        "contradicts",
        2,
    )
    assert any("added by the reviewer" in reason for reason in added["reasons"])
    assert added["added"] is True and the_flag(story, CLOSED)["added"] is False
    assert examples()["contradicts"] == before["contradicts"] + 1
    r = claimwatch(story, "digest", "--dry-run", "--out", str(story / "digest"))
    assert r.returncode == 0, r.stderr
    [preview] = list((story / "digest").glob("*.eml"))
    message = email.message_from_bytes(preview.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert f'[contradicts, added by a reviewer] "{missed}"' in body.get_content()

    # The reviewer rejects the matcher's flag, the page changes (the rejected sentence is
    # not flagged again), then the reviewer changes their mind on the new version.
    assert claimwatch(story, "flags", "reject", str(closed["id"])).returncode == 0
    page.html = article_html("Meta's lab sets release rules", [*FIRST, CLOSED, missed, OPEN])
    assert claimwatch(story, "check", "a").returncode == 0
    assert [f["evidence"] for f in flags(story)].count(CLOSED) == 1
    r = claimwatch(story, "flags", "add", "a", "--claim", claim, "--stance", "supports",
                   "--sentence", "next frontier model closed")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "1 earlier rejection" in r.stdout
    both = [f for f in flags(story) if f["evidence"] == CLOSED]
    assert sorted(f["version"] for f in both) == [2, 3]
    assert {(f["verdict"], f["verdict_stance"]) for f in both} == {("confirmed", "supports")}
    assert examples()["supports"] == before["supports"] + 1  # one example for the two

    # Adding what the matcher already flagged confirms its flag rather than doubling it.
    r = claimwatch(story, "flags", "add", "a", "2", "--claim", claim, "--stance", "supports",
                   "--sentence", "next frontier model closed")  # fmt: skip
    assert r.returncode == 0 and "(the matcher had flagged it)" in r.stdout, r.stdout
    assert len([f for f in flags(story) if f["evidence"] == CLOSED]) == 2


@pytest.mark.e2e
@pytest.mark.slow
def test_a_new_storys_first_example_does_not_make_every_sentence_evidence(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """A story told as statements only: the reviewer adds the first piece of evidence
    with `flags add`, and the next check, which compares new text with that example,
    flags none of the everyday news added to the page. Before the background near
    misses, every new sentence was flagged for the strike claim at 1.00. `claims match`
    on a claims file whose examples all carry a label behaves the same."""
    story = story_dir(tmp_path)
    (story / "seeds" / "claims.yaml").write_text(RAIL_CLAIMS, encoding="utf-8")
    semantic: dict[str, str | None] = {"CLAIMWATCH_SEMANTIC": None}
    intro = ["The rail dispute enters its third month.", WALKOUT]
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    page = Page(article_html("Rail strike", intro[:1]))
    httpserver.expect_request("/a.html").respond_with_handler(page)
    assert claimwatch(story, "init").returncode == 0
    claimwatch(story, "sources", "add", httpserver.url_for("/a.html"), "--label", "a")
    assert claimwatch(story, "check", "a", env=semantic).returncode == 0
    page.html = article_html("Rail strike", intro)
    assert claimwatch(story, "check", "a", env=semantic).returncode == 0
    r = claimwatch(story, "flags", "add", "a", "--claim", "strike-this-week",
                   "--stance", "supports", "--sentence", "walked off the job")  # fmt: skip
    assert r.returncode == 0, r.stderr
    before = {f["id"] for f in flags(story)}
    listed = claimwatch(story, "claims", "list").stdout
    assert "no near misses yet: everyday news stands in" in listed, listed

    page.html = article_html("Rail strike", [*intro, *EVERYDAY])
    assert claimwatch(story, "check", "a", env=semantic).returncode == 0
    new = [f for f in flags(story) if f["id"] not in before]
    assert not [f for f in new if f["claim"] == "strike-this-week"], new

    (story / "seeds" / "examples.jsonl").write_text(
        json.dumps({"id": "e1", "text": WALKOUT, "labels": {"strike-this-week": "supports"}})
        + "\n",
        encoding="utf-8",
    )
    (story / "seeds" / "claims.yaml").write_text(
        "examples: [examples.jsonl]\n" + RAIL_CLAIMS, encoding="utf-8"
    )
    passages = "".join(json.dumps({"id": n, "text": t}) + "\n" for n, t in enumerate(EVERYDAY))
    r = claimwatch(story, "claims", "match", "--claims", "seeds/claims.yaml", "-",
                   env=semantic, input=passages)  # fmt: skip
    assert r.returncode == 0, r.stderr
    matched = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(matched) == len(EVERYDAY)
    assert not [m for m in matched if "strike-this-week" in json.dumps(m)], matched
