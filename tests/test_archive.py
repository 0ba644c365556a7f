"""Proving and exporting the archive: verify finds damage; WARC and JSON read back."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Connection, select, text
from warcio.archiveiterator import ArchiveIterator

from archiver import pipeline
from archiver.app.claimsfile import load_claims
from archiver.app.evidence import add_evidence
from archiver.app.export import IDENTICAL, NOT_MODIFIED, SAME_TEXT_PROFILE, source_history
from archiver.claims.rules import claim_to_dict
from archiver.text.segment import sentences
from store.errors import UsageError
from store.models import FlagFilter, FlagRecord, SourceSpec, StoredFlag
from store.repo import Store
from store.schema import blobs, flags, versions
from store.verify import Report
from tests.support import NOW, article_html, cli
from tests.support.pipeline import OPTIONS, PARAS, Page, run, serve

CLAIMS = Path(__file__).resolve().parent.parent / "seeds" / "claims.yaml"
OUTCOMES = (
    "new_version",
    "not_modified",
    "same_bytes",
    "same_text",
    "new_version",
    "reverted",
    "failed",
)
CLOSED = "Meta said its next frontier model would keep its weights private and stop releasing open models."


def build_history(store: Store, httpserver: HTTPServer) -> str:
    """One source through every outcome: new, 304, same bytes, same text, an edit that
    raises a flag, a flip-back (which takes the flagged sentence back: a removed flag),
    and a failure."""
    store.load_claims([claim_to_dict(c) for c in load_claims(CLAIMS)], NOW)
    page = Page(article_html("Meta and its models", PARAS), etag=True)
    url = serve(httpserver, "/h.html", page)
    store.add_source(SourceSpec(url=url, label="h"), NOW)
    options = pipeline.CheckOptions(fetch=OPTIONS.fetch, processes=0)
    outcomes = [run(store, "h", 0, options).outcome, run(store, "h", 1, options).outcome]
    page.etag = False
    outcomes.append(run(store, "h", 2, options).outcome)
    page.html = article_html("Meta and its models", PARAS, extra="<aside>Shared 41 times</aside>")
    outcomes.append(run(store, "h", 3, options).outcome)
    page.html = article_html("Meta and its models", [*PARAS, CLOSED])
    outcomes.append(run(store, "h", 4, options).outcome)
    page.html = article_html("Meta and its models", PARAS)
    outcomes.append(run(store, "h", 5, options).outcome)
    httpserver.clear()
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/h.html").respond_with_data("gone", status=404)
    outcomes.append(run(store, "h", 6, options).outcome)
    assert outcomes == list(OUTCOMES)
    return url


def edits_flag(store: Store) -> StoredFlag:
    """The flag the edit raised; the flip-back that took its sentence back raised the
    only other one, on version 1, marked removed."""
    edit, took_back = sorted(store.flags(), key=lambda f: f.removed)
    assert (edit.version, edit.removed, took_back.version, took_back.removed) == (2, False, 1, True)
    assert took_back.evidence == edit.evidence and took_back.claim_id == edit.claim_id
    return edit


@contextmanager
def without_foreign_keys(store: Store) -> Iterator[Connection]:
    """Damage the store the way a bad disk or a hand edit would: past its constraints."""
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        yield conn


def sqlite_raw(store: Store, sql: str, *args: Any) -> None:
    path = store.url.removeprefix("sqlite:///")
    db = sqlite3.connect(path)  # foreign keys are off in a plain connection
    db.execute(sql, args)
    db.commit()
    db.close()


def damage(store: Store, sql: str, *args: Any) -> None:
    if store.engine.dialect.name == "sqlite":
        sqlite_raw(store, sql, *args)
        return
    with without_foreign_keys(store) as conn:
        conn.exec_driver_sql(sql.replace("?", "%s"), args)


def problems(store: Store, source: str | None = None) -> list[str]:
    chosen = store.get_source(source) if source else None
    return [p.line() for p in store.verify(chosen)]


@pytest.mark.slow
def test_a_whole_history_verifies_clean(store: Store, httpserver: HTTPServer) -> None:
    build_history(store, httpserver)
    report = Report()
    assert list(store.verify(None, report)) == []
    assert (report.sources, report.versions, report.problems) == (1, 2, 0)
    assert report.blobs == 4  # text and raw body of each version


@pytest.mark.slow
def test_verify_finds_a_flipped_byte(store: Store, httpserver: HTTPServer) -> None:
    build_history(store, httpserver)
    _v1, v2 = store.versions(store.get_source("h").id)
    with store.engine.begin() as conn:
        data = bytearray(
            conn.execute(select(blobs.c.data).where(blobs.c.digest == v2.raw_digest)).scalar_one()
        )
    data[len(data) // 2] ^= 0x10
    damage(store, "UPDATE blobs SET data = ? WHERE digest = ?", bytes(data), v2.raw_digest)
    found = problems(store)
    assert len(found) == 1
    assert found[0].startswith("h v2: corrupt: raw body: blob " + v2.raw_digest[:12])  # type: ignore[index]


@pytest.mark.slow
def test_verify_finds_a_missing_delta_base(store: Store, httpserver: HTTPServer) -> None:
    build_history(store, httpserver)
    v1, v2 = store.versions(store.get_source("h").id)
    with store.engine.connect() as conn:
        base = conn.execute(
            select(blobs.c.base_digest).where(blobs.c.digest == v2.text_digest)
        ).scalar_one()
    assert base == v1.text_digest  # v2's text is a delta on v1's
    damage(store, "DELETE FROM blobs WHERE digest = ?", v1.text_digest)
    found = problems(store, "h")
    assert f"h v1: missing-blob: text: blob {v1.text_digest[:12]} is not in the store" in found
    assert f"h v2: missing-base: text: blob {v1.text_digest[:12]} is not in the store" in found
    assert len(found) == 2


@pytest.mark.slow
def test_verify_finds_a_dangling_flag_and_a_gap(store: Store, httpserver: HTTPServer) -> None:
    build_history(store, httpserver)
    with store.engine.connect() as conn:
        flag_id = conn.execute(select(flags.c.id).order_by(flags.c.id)).scalars().first()
        last = conn.execute(select(versions.c.id).where(versions.c.number == 2)).scalar_one()
    damage(store, "UPDATE flags SET version_id = ? WHERE id = ?", 9999, flag_id)
    assert problems(store) == [
        f"h: dangling: flags row {flag_id} points at version 9999, which does not exist"
    ]
    damage(store, "UPDATE versions SET number = 3 WHERE id = ?", last)
    assert "h v3: numbering: expected version 2, found 3" in problems(store)


@pytest.mark.e2e
@pytest.mark.slow
def test_verify_command_exits_1_and_names_the_damage(
    sqlite_store: Store, httpserver: HTTPServer
) -> None:
    build_history(sqlite_store, httpserver)

    def verify(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(sqlite_store, "verify", *args)

    ok = verify()
    assert ok.returncode == 0, ok.stderr
    assert "verified 1 source(s), 2 version(s), 4 blob(s): no problems" in ok.stdout
    v1 = sqlite_store.versions(sqlite_store.get_source("h").id)[0]
    sqlite_raw(sqlite_store, "UPDATE blobs SET data = X'00' WHERE digest = ?", v1.raw_digest)
    bad = verify("--source", "h")
    assert bad.returncode == 1
    assert bad.stdout.startswith("h v1: corrupt: raw body:")
    # Version 2's raw body is a delta on version 1's, so it is lost with it, and said so.
    assert f"h v2: corrupt: raw body: blob {v1.raw_digest[:12]} unreadable" in bad.stdout  # type: ignore[index]
    assert "2 problem(s) found" in bad.stderr
    as_json = [json.loads(line) for line in verify("--json").stdout.splitlines()]
    assert [(p["kind"], p["source"], p["version"]) for p in as_json] == [
        ("corrupt", "h", 1),
        ("corrupt", "h", 2),
    ]


@pytest.mark.e2e
@pytest.mark.slow
def test_warc_export_reads_back_with_warcio(
    sqlite_store: Store, httpserver: HTTPServer, tmp_path: Path
) -> None:
    url = build_history(sqlite_store, httpserver)
    out = tmp_path / "h.warc.gz"
    r = cli(sqlite_store, "export", "warc", "h", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "h.warc.gz.part").exists()
    records = []
    with out.open("rb") as f:
        for rec in ArchiveIterator(f, check_digests="raise"):
            headers = rec.rec_headers
            payload = rec.content_stream().read()
            records.append((headers.get_header("WARC-Type"), rec, payload))
    kinds = [k for k, _, _ in records]
    # warcinfo; v1 response + metadata; 304; same bytes; same text; v2 + metadata; flip-back
    assert kinds == [
        "warcinfo",
        "response",
        "metadata",
        "revisit",
        "revisit",
        "revisit",
        "response",
        "metadata",
        "revisit",
    ]
    assert all(r.rec_headers.get_header("WARC-Record-ID") for _, r, _ in records)
    first, second = records[1], records[6]
    v1, v2 = sqlite_store.versions(sqlite_store.get_source("h").id)
    assert first[2] == sqlite_store.read_raw(v1)
    assert second[2] == sqlite_store.read_raw(v2)
    assert first[1].http_headers.get_statuscode() == "200"
    assert first[1].http_headers.get_header("Content-Type") == "text/html; charset=utf-8"
    assert first[1].rec_headers.get_header("WARC-Target-URI") == url
    profiles = [r.rec_headers.get_header("WARC-Profile") for k, r, _ in records if k == "revisit"]
    assert profiles == [NOT_MODIFIED, IDENTICAL, SAME_TEXT_PROFILE, SAME_TEXT_PROFILE]
    first_id = first[1].rec_headers.get_header("WARC-Record-ID")
    assert records[3][1].rec_headers.get_header("WARC-Refers-To") == first_id
    assert records[3][1].http_headers.get_statuscode() == "304"
    # The flip-back revisits version 1's response, not version 2's.
    assert records[8][1].rec_headers.get_header("WARC-Refers-To") == first_id
    meta = json.loads(records[7][2])
    assert meta["number"] == 2 and CLOSED in meta["text"]
    assert meta["change"]["from_version"] == 1
    assert [(f["claim_id"], f["stance"]) for f in meta["flags"]] == [
        ("meta-ends-open-releases", "supports")
    ]
    # Exporting again gives the same record ids.
    again = tmp_path / "again.warc.gz"
    cli(sqlite_store, "export", "warc", "--all", "--out", str(again))
    with again.open("rb") as f:
        ids = [rec.rec_headers.get_header("WARC-Record-ID") for rec in ArchiveIterator(f)]
    assert ids[1:] == [r.rec_headers.get_header("WARC-Record-ID") for _, r, _ in records][1:]


@pytest.mark.slow
def test_json_export_has_the_whole_history(store: Store, httpserver: HTTPServer) -> None:
    build_history(store, httpserver)
    doc = json.loads(json.dumps(source_history(store, store.get_source("h")), default=str))
    assert doc["source"]["label"] == "h"
    assert [v["number"] for v in doc["versions"]] == [1, 2]
    assert CLOSED in doc["versions"][1]["text"]
    assert [c["outcome"] for c in doc["captures"]] == list(OUTCOMES)
    assert doc["captures"][-1]["error_class"] == "HTTPStatusError"
    assert doc["captures"][5]["version"] == 1  # the flip-back points at version 1
    assert [(c["kind"], c["from_version"], c["to_version"]) for c in doc["changes"]] == [
        ("edit", 1, 2),
        ("revert", 2, 1),
    ]
    assert doc["versions"][1]["flags"][0]["stance"] == "supports"


@pytest.mark.e2e
@pytest.mark.slow
def test_export_refuses_an_unwritable_path_and_leaves_nothing(
    sqlite_store: Store, httpserver: HTTPServer, tmp_path: Path
) -> None:
    build_history(sqlite_store, httpserver)
    out = tmp_path / "missing-dir" / "x.json"
    r = cli(sqlite_store, "export", "json", "h", "--out", str(out))
    assert r.returncode == 2
    assert r.stderr.startswith(f"claimwatch: error: cannot write {out}")
    assert not out.parent.exists()
    both = cli(sqlite_store, "export", "json", "h", "--all")
    assert both.returncode == 2 and "give one SOURCE or --all" in both.stderr


@pytest.mark.slow
def test_the_change_log_pages_match_the_whole_log(store: Store, httpserver: HTTPServer) -> None:
    build_history(store, httpserver)
    whole = store.changes()
    assert len(whole) >= 2
    for page in (1, 2, 500):
        paged = list(store.iter_changes(page=page))
        assert [c.id for c in paged] == [c.id for c in whole]
        assert all(c.units == [] for c in paged)  # a listing does not load the units
    assert [c.id for c in store.iter_changes(limit=1, page=1)] == [whole[0].id]


def test_a_claims_counts_follow_the_reviewers_verdicts(
    store: Store, httpserver: HTTPServer
) -> None:
    """``claims list`` counts a confirmed flag under the stance the reviewer gave and
    leaves a rejected one out, on both backends (the count groups by that stance)."""
    build_history(store, httpserver)
    flag = edits_flag(store)
    stances = ("supports", "contradicts", "mentions")

    def counts() -> list[int]:
        [row] = [c for c in store.claims() if c.id == flag.claim_id]
        return [getattr(row, s) for s in stances]

    assert counts() == [int(flag.stance == s) for s in stances]
    store.review(flag.id, "confirmed", NOW, "mentions")
    assert counts() == [0, 0, 1]
    store.review(flag.id, "rejected", NOW)
    assert counts() == [0, 0, 0]


def test_a_flag_the_reviewer_adds_is_kept_on_both_backends(
    store: Store, httpserver: HTTPServer
) -> None:
    """``flags add`` at the store: a sentence the matcher did not flag becomes a new,
    confirmed flag; adding it again re-reviews that flag rather than doubling it, and
    the sentence is one example, with the latest stance."""
    build_history(store, httpserver)
    flag = edits_flag(store)
    version = store.get_version(store.get_source(str(flag.source_id)), flag.version)
    other = next(
        s.text.strip()
        for s in sentences(store.read_text(version))
        if s.text.strip() not in ("", flag.evidence)
    )
    added, replaced = store.add_flag(version, flag.claim_id, "contradicts", other, NOW)
    assert (added.verdict, added.verdict_stance, added.evidence, replaced) == (
        "confirmed",
        "contradicts",
        other,
        0,
    )
    assert added.added and added.id != flag.id and added.version == flag.version
    again, _ = store.add_flag(version, flag.claim_id, "mentions", other, NOW)
    assert again.id == added.id and again.verdict_stance == "mentions"
    assert len(store.flags()) == 3
    verdicts = [e for e in store.examples() if e[3] == "verdict"]
    assert verdicts == [(flag.claim_id, "mentions", other, "verdict")]
    # Once the claim is gone from the claims file, evidence for it is refused.
    kept = [claim_to_dict(c) for c in load_claims(CLAIMS) if c.id != flag.claim_id]
    store.load_claims(kept, NOW)
    with pytest.raises(UsageError, match=f"claim '{flag.claim_id}' is retired"):
        add_evidence(store, store.get_source(str(flag.source_id)), version, flag.claim_id,
                     "supports", other, NOW)  # fmt: skip
    assert len(store.flags()) == 3


def test_a_scans_flags_never_repeat_what_the_store_holds_on_both_backends(
    store: Store, httpserver: HTTPServer
) -> None:
    """``flags scan`` at the store: a found flag is stored new unless the version already
    has a flag for its claim, the source was flagged with its sentence for the claim, or
    the reviewer rejected that sentence for the claim (in any source)."""
    build_history(store, httpserver)
    flag = edits_flag(store)
    source = store.get_source(str(flag.source_id))
    version = store.get_version(source, flag.version)
    others = [c.id for c in store.claims() if c.id != flag.claim_id]
    text = [s.text.strip() for s in sentences(store.read_text(version)) if s.text.strip()]
    fresh, second = [t for t in text if t != flag.evidence][:2]

    def found(claim: str, evidence: str) -> FlagRecord:
        return FlagRecord(claim, "supports", 0.5, evidence, ["archive scan, paragraph 1"], False)

    store.review(flag.id, "rejected", NOW)  # its sentence is now rejected for its claim
    candidates = [
        found(flag.claim_id, flag.evidence),  # rejected for the claim
        found(others[0], fresh),  # new: stored
        found(others[0], second),  # a second flag for the same claim and version
        found(others[1], second),  # new: stored
    ]
    assert store.unseen(version, candidates) == [candidates[1], candidates[3]]
    assert len(store.flags()) == 2  # unseen writes nothing
    ids = store.add_found(version, candidates, NOW)
    stored = store.flags(FlagFilter(ids=tuple(ids)))
    assert sorted((f.claim_id, f.evidence) for f in stored) == sorted(
        [(others[0], fresh), (others[1], second)]
    )
    assert all(f.verdict is None and f.change_id is None for f in stored)
    assert store.add_found(version, candidates, NOW) == []  # a second scan adds nothing


def test_claims_keep_the_files_order_and_the_storys_summary(store: Store) -> None:
    """Claims are listed as their file orders them (they were listed by id), and the
    file's summary is the story's; a claim gone from the file comes last, kept."""
    from archiver.claims.rules import Claim

    def claim(cid: str) -> dict[str, Any]:
        return claim_to_dict(Claim(cid, (("en", f"Statement {cid}."),)))

    assert store.story_summary() == ""
    store.load_claims([claim("zeta"), claim("alpha"), claim("mid")], NOW, "The <story> & all")
    assert [c.id for c in store.claims()] == ["zeta", "alpha", "mid"] == list(store.active_claims())
    assert store.story_summary() == "The <story> & all"
    store.load_claims([claim("alpha"), claim("zeta")], NOW, "")
    assert (
        [c.id for c in store.claims()] == ["alpha", "zeta"] == list(store.active_claims())
    )  # not mid
    assert [(c.id, c.active) for c in store.claims(active_only=False)] == [
        ("alpha", True),
        ("zeta", True),
        ("mid", False),
    ]
    assert store.story_summary() == ""
    # A retired claim is still known (its flags are kept), but not active.
    known = [
        (c, store.has_claim(c), store.has_claim(c, active_only=True))
        for c in ("alpha", "mid", "nope")
    ]
    assert known == [("alpha", True, True), ("mid", True, False), ("nope", False, False)]
