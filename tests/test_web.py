"""The web view on the demo store, served by a real uvicorn on loopback: pages, the
claim timeline, versions side by side, the change filter, review with CSRF, Atom
feeds read by feedparser, the JSON API against the CLI's --json, the token rule, and
(in Debian's Chromium) that an archived hostile page runs nothing."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from archiver.app.status import StatusOptions
from archiver.web import WebOptions, timeline
from store.models import SourceSpec, StoredFlag
from store.repo import Store
from tests.support import claimwatch, needs_browser
from tests.support.web import Served

pytestmark = [pytest.mark.slow, pytest.mark.e2e]  # a real uvicorn over the demo store

HOSTILE = """<html><head><title>Hostile</title><script>fetch("{trap}/script");</script></head>
<body><article><h1>Hostile page</h1><p>A perfectly normal paragraph about a council budget
that runs long enough for extraction to keep it as the article text of this page.</p>
<img src="x" onerror="fetch('{trap}/onerror')"><a id="js" href="javascript:fetch('{trap}/link')">
click</a></article></body></html>"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Served]]:
    where = tmp_path_factory.mktemp("web")
    r = subprocess.run(
        [sys.executable, "-m", "archiver.cli", "demo"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CLAIMWATCH_SEMANTIC": "0"},
    )
    assert r.returncode == 0, r.stderr
    store = Store(f"sqlite:///{where / 'claimwatch-demo' / 'claimwatch.db'}")
    served = Served(store)
    yield where, served
    served.stop()
    store.close()


def db_args(where: Path) -> list[str]:
    return ["--db", f"sqlite:///{where / 'claimwatch-demo' / 'claimwatch.db'}"]


def cli_json(where: Path, *args: str) -> list[dict]:
    r = subprocess.run(
        [sys.executable, "-m", "archiver.cli", *db_args(where), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.mark.e2e
@pytest.mark.slow
def test_story_page_shows_the_arabic_seed_right_to_left_and_every_claim(demo) -> None:  # type: ignore[no-untyped-def]
    _where, served = demo
    r = httpx.get(served.url + "/")
    assert r.status_code == 200
    assert re.search(r'<div class="article" id="seed-\d+" lang="ar" dir="rtl">', r.text)
    article = r.text.split('<div class="article"', 1)[1].split("</div>", 1)[0]
    assert article.count("<p>") >= 5 and "\n</p>" not in article  # a paragraph each
    assert re.search(r'<text class="tick"[^>]*>2025-07-1\d', r.text)  # dated timelines
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "unsafe-inline" not in r.headers["content-security-policy"]
    assert r.text.count('class="claim"') == 10
    assert '<a href="/flags/' in r.text  # timeline points link to their evidence
    ids = re.findall(r'<div class="claim" id="claim-([\w-]+)">', r.text)
    flags = httpx.get(served.url + "/flags", params={"claim": ids[1]}).text
    assert re.findall(r"<option(?: selected)?>([\w-]+)</option>", flags)[:10] == ids
    assert f"<option selected>{ids[1]}</option>" in flags  # the filter keeps its claim


@pytest.mark.e2e
def test_a_flags_page_shows_its_claim_and_the_edit_that_brought_it(demo) -> None:  # type: ignore[no-untyped-def]
    """The reviewer saw the claim's id alone, and had to know by heart what each of ten
    claims says to judge the sentence against it."""
    where, served = demo
    [claim] = [c for c in cli_json(where, "claims", "list") if c["id"] == "wang-hire-talent-war"]
    edited = next(f for f in cli_json(where, "flags") if f["change_id"] is not None)
    [change] = [c for c in cli_json(where, "changes") if c["id"] == edited["change_id"]]
    page = httpx.get(f"{served.url}/flags/{edited['id']}").text
    assert f'?a={change["from"]}&amp;b={change["to"]}">the edit, v{change["from"]}' in page
    first = next(f for f in cli_json(where, "flags") if f["claim"] == claim["id"])
    page = httpx.get(f"{served.url}/flags/{first['id']}").text
    for lang, text in claim["statements"].items():
        assert f'<div class="statement" lang="{lang}"' in page and text in html.unescape(page)
    assert f'href="/#claim-{claim["id"]}"' in page


@pytest.mark.e2e
@pytest.mark.slow
def test_a_version_has_its_own_page_and_record_with_its_text(demo) -> None:  # type: ignore[no-untyped-def]
    """The web view showed a version only as a side of a comparison, or its raw bytes:
    never the text claimwatch archived. Its page gives that text by paragraph, what was
    read with it, the way to its neighbours, and the flags it raised."""
    where, served = demo
    edit = next(c for c in cli_json(where, "changes") if c["kind"] == "edit")
    source = next(s for s in cli_json(where, "sources", "list") if s["label"] == edit["source"])
    n = edit["to"]
    text = subprocess.run(
        [sys.executable, "-m", "archiver.cli", *db_args(where), "show", edit["source"], str(n)],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    page = httpx.get(f"{served.url}/sources/{source['id']}/versions/{n}")
    assert page.status_code == 200 and " style=" not in page.text
    shown = re.findall(r"<p>([^<]*)</p>", page.text.split('class="article full"', 1)[1])
    assert [html.unescape(p) for p in shown] == [p for p in text.split("\n") if p.strip()]
    assert f'href="/sources/{source["id"]}?a={edit["from"]}&amp;b={n}#diff"' in page.text
    assert f'href="/sources/{source["id"]}/versions/{n}/raw"' in page.text
    raised = [f for f in cli_json(where, "flags") if f["source"] == edit["source"]]
    for f in raised:
        assert (f'href="/flags/{f["id"]}"' in page.text) == (f["version"] == n), f
    [record] = httpx.get(f"{served.url}/api/v1/sources/{source['id']}/versions/{n}").json()
    assert record["number"] == n and record["text"] + "\n" == text
    listed = httpx.get(f"{served.url}/sources/{source['id']}").text
    assert f'<a href="/sources/{source["id"]}/versions/{n}">{n}</a>' in listed
    for missing in ("999", "x"):
        assert (
            httpx.get(f"{served.url}/sources/{source['id']}/versions/{missing}").status_code == 404
        )
        r = httpx.get(f"{served.url}/api/v1/sources/{source['id']}/versions/{missing}")
        assert r.status_code == 404 and set(r.json()) == {"error"}


@pytest.mark.e2e
@pytest.mark.slow
def test_search_the_archive_from_the_web_view(demo) -> None:  # type: ignore[no-untyped-def]
    """The CLI's search, as a page and an API endpoint with the same records."""
    where, served = demo
    for args in (["open source"], ["keep releasing", "--history"]):
        cli = cli_json(where, "search", *args)
        params = {"q": args[0], **({"history": "1"} if len(args) > 1 else {})}
        r = httpx.get(served.url + "/api/v1/search", params=params)
        assert r.status_code == 200 and r.json() == cli and cli, args
        page = httpx.get(served.url + "/search", params=params).text
        assert " style=" not in page
        for record in cli:
            assert html.escape(record["source"]) in page
        if len(args) == 1:
            assert page.count("<mark>") == sum(len(x["hits"]) for x in cli)
        else:
            [span] = cli[0]["spans"]
            gone = f"?a={span['to_version']}&amp;b={span['gone_in_version']}#diff"
            assert gone in page and "; gone in" in page
    page = httpx.get(served.url + "/search", params={"q": "<script>alert(1)</script>"}).text
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "No current text says" in page
    for path, params in (
        ("/search", {"q": "a"}),
        ("/search", {"q": "x" * 501}),
        ("/api/v1/search", {}),
        ("/api/v1/search", {"q": "open", "limit": "0"}),
        ("/api/v1/search", {"q": "open", "history": "yes"}),
    ):
        assert httpx.get(served.url + path, params=params).status_code == 400, (path, params)


def _flag_at(n: int, at: datetime) -> StoredFlag:
    return StoredFlag(n, "c", "supports", 0.9, "E.", [], "new", at, 1, "s", "u", 1, None, None)


@pytest.mark.parametrize(
    ("hours", "labels"),
    [
        ([0], ["2025-07-14 06:00"]),
        ([0, 12], ["2025-07-14 06:00", "18:00"]),  # one day: the hours tell them apart
        ([30, 0, 12], ["2025-07-14", "2025-07-15"]),
    ],
)
def test_a_claims_timeline_is_dated_at_both_ends(hours: list[int], labels: list[str]) -> None:
    """The story page's timelines had no dates: points in a row said nothing of when."""
    start = datetime(2025, 7, 14, 6, tzinfo=UTC)
    shown = [_flag_at(n, start + timedelta(hours=h)) for n, h in enumerate(hours)]
    chart = timeline(shown, width=640)
    assert [t["label"] for t in chart["ticks"]] == labels
    assert [(t["x"], t["anchor"]) for t in chart["ticks"]] == [(20, "start"), (620, "end")][
        : len(labels)
    ]
    assert min(p["x"] for p in chart["points"]) == 20


@pytest.mark.e2e
def test_sources_are_paged_and_filtered(demo) -> None:  # type: ignore[no-untyped-def]
    _where, served = demo
    r = httpx.get(served.url + "/sources", params={"q": "meta-statement"})
    assert r.status_code == 200 and "meta-statement" in r.text and "1 source(s)" in r.text
    r = httpx.get(served.url + "/sources", params={"kind": "feed"})
    assert "1 source(s)" in r.text
    r = httpx.get(served.url + "/sources", params={"page": "x"})
    assert r.status_code == 400
    assert httpx.get(served.url + "/changes", params={"page": "10" * 9}).status_code == 400


@pytest.mark.e2e
@pytest.mark.slow
def test_two_versions_side_by_side_mark_the_changed_words(demo) -> None:  # type: ignore[no-untyped-def]
    where, served = demo
    change = next(c for c in cli_json(where, "changes") if c["kind"] == "edit")
    source = next(s for s in cli_json(where, "sources", "list") if s["label"] == change["source"])
    r = httpx.get(
        f"{served.url}/sources/{source['id']}",
        params={"a": change["from"], "b": change["to"]},
    )
    assert r.status_code == 200
    assert "<del>" in r.text or "<ins>" in r.text
    assert f"version {change['from']} &rarr; version {change['to']}" in r.text
    assert "(current)" in r.text
    # The inline diff is the email's template. Its style attributes, which the page's
    # Content-Security-Policy (style-src 'self') refuses, left it without colours; on
    # the web it takes web.css's classes, and no page carries a style attribute.
    assert 'class="d-box"' in r.text and re.search(r'class="d-(add|del|mod)"', r.text)
    assert "style-src 'self';" in r.headers["content-security-policy"]
    css = httpx.get(served.url + "/static/web.css").text
    for name in set(re.findall(r'class="(d-[a-z]+)"', r.text)):
        assert f".{name}" in css, name
    for path in ("/", "/sources", "/changes", "/flags", r.url.path + "?" + r.url.query.decode()):
        assert " style=" not in httpx.get(served.url + path).text, path


@pytest.mark.e2e
def test_changes_filter_by_significance(demo) -> None:  # type: ignore[no-untyped-def]
    _where, served = demo
    every = httpx.get(served.url + "/changes").text
    high = httpx.get(served.url + "/changes", params={"min": "0.5"}).text
    sig = [float(x) for x in re.findall(r'<td class="sig">([0-9.]+)</td>', high)]
    assert sig and all(s >= 0.5 for s in sig)
    assert len(re.findall(r'<td class="sig">', every)) > len(sig)
    # By time: the demo's changes are from July 2025.
    assert 'class="sig"' in httpx.get(served.url + "/changes", params={"since": "2025-07-01"}).text
    assert "nothing" in httpx.get(served.url + "/changes", params={"since": "2h"}).text
    assert httpx.get(served.url + "/changes", params={"since": "yesterday"}).status_code == 400


@pytest.mark.e2e
def test_atom_feeds_are_valid_and_their_ids_stable(demo) -> None:  # type: ignore[no-untyped-def]
    _where, served = demo
    for path in (
        "/feeds/changes.atom",
        "/feeds/sources/2.atom",
        "/feeds/claims/meta-ends-open-releases.atom",
        "/feeds/flags/supports.atom",
    ):
        first = httpx.get(served.url + path)
        assert first.headers["content-type"].startswith("application/atom+xml")
        feed = feedparser.parse(first.content)
        assert feed.bozo == 0, (path, feed.get("bozo_exception"))
        again = feedparser.parse(httpx.get(served.url + path).content)
        assert [e.id for e in feed.entries] == [e.id for e in again.entries]
    assert feedparser.parse(httpx.get(served.url + "/feeds/changes.atom").content).entries


@pytest.mark.e2e
@pytest.mark.slow
def test_the_api_gives_the_clis_records(demo) -> None:  # type: ignore[no-untyped-def]
    where, served = demo
    api = httpx.get(served.url + "/api/v1/flags").json()
    cli = cli_json(where, "flags")
    assert [a["id"] for a in api] == [c["id"] for c in cli]
    assert set(api[0]) == set(cli[0])
    changes = httpx.get(served.url + "/api/v1/changes").json()
    assert set(changes[0]) == set(cli_json(where, "changes")[0])
    claims = httpx.get(served.url + "/api/v1/claims").json()
    assert claims == json.loads(json.dumps(cli_json(where, "claims", "list")))
    assert any(c["supports"] for c in claims) and any(sum(c["examples"].values()) for c in claims)
    assert httpx.get(served.url + "/api/v1/sources/nope/versions").status_code == 404
    [status] = httpx.get(served.url + "/api/v1/status").json()
    [cli_status] = cli_json(where, "status")
    assert status["sources"] > 0 and status["story_summary"]
    # The CLI names the URL as given and has the default digest cron; the server was
    # given neither (test_the_status_api_reads_the_injected_clock_and_cron).
    for record in (status, cli_status):
        del record["db"], record["next_digest"]
    assert status == json.loads(json.dumps(cli_status))


@pytest.mark.e2e
def test_a_database_that_cannot_answer_is_a_503_without_its_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A PostgreSQL that is down was a 500 and a traceback per request; now every page
    and the API say 503 with Retry-After, and only the server's log names the
    database (password masked)."""
    store = Store("postgresql://reader:s3cret@127.0.0.1:1/archive")  # nothing listens
    served = Served(store)
    try:
        with caplog.at_level("WARNING", logger="claimwatch.web"):
            api = httpx.get(served.url + "/api/v1/status")
            html = httpx.get(served.url + "/sources")
    finally:
        served.stop()
    assert (api.status_code, api.headers["retry-after"]) == (503, "30")
    assert api.json() == {
        "error": "the archive's database is not answering; the server's log says why"
    }
    assert html.status_code == 503 and "is not answering" in html.text
    assert "127.0.0.1:1" not in api.text + html.text and "s3cret" not in caplog.text
    [line] = [r.getMessage() for r in caplog.records if "/api/v1/status" in r.getMessage()]
    assert "cannot open database" in line and "reader:***@127.0.0.1:1" in line


@pytest.mark.e2e
def test_a_locked_archive_is_a_503_to_retry_and_the_verdict_waits(tmp_path: Path) -> None:
    """A review posted while another process holds SQLite's write lock (a check
    writing, a gc) is a 503 with a short Retry-After, not a 500; nothing is written,
    and the same form succeeds once the lock is gone."""
    import sqlite3

    from archiver.app.claimsfile import load_claims
    from archiver.claims.rules import claim_to_dict
    from store.models import NewVersion
    from store.repo import StoreOptions
    from tests.support.records import capture, schedule

    path = tmp_path / "x.db"
    store = Store(f"sqlite:///{path}", StoreOptions(busy_timeout_s=0.2))
    store.migrate()
    [claim] = load_claims(Path(__file__).resolve().parent.parent / "seeds" / "claims.yaml")[:1]
    store.load_claims([claim_to_dict(claim)], datetime(2025, 7, 20, tzinfo=UTC))
    sid = store.add_source(
        SourceSpec(url="http://127.0.0.1:9/a.html", label="a"), datetime.now(UTC)
    )
    version = store.add_version(
        NewVersion("Meta keeps its next model closed.", None), capture(sid), schedule()
    )
    flag, _ = store.add_flag(
        version, claim.id, "supports", "Meta keeps its next model closed.", datetime.now(UTC)
    )
    served = Served(store)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        with httpx.Client(base_url=served.url) as client:
            token = re.search(r'name="csrf" value="([^"]+)"', client.get(f"/flags/{flag.id}").text)
            assert token is not None
            form = {"verdict": "rejected", "csrf": token.group(1)}
            holder.execute("BEGIN EXCLUSIVE")
            locked = client.post(f"/flags/{flag.id}/review", data=form)
            holder.execute("ROLLBACK")
            assert (locked.status_code, locked.headers["retry-after"]) == (503, "5")
            assert "the archive is busy" in locked.text
            assert store.flags()[0].verdict == "confirmed"  # as added: nothing written
            assert client.post(f"/flags/{flag.id}/review", data=form).status_code == 303
        assert store.flags()[0].verdict == "rejected"
    finally:
        holder.close()
        served.stop()
        store.close()


@pytest.mark.e2e
def test_the_status_api_reads_the_injected_clock_and_cron(tmp_path: Path) -> None:
    """/api/v1/status is `status --json`'s record, at the server's clock: the next
    digest follows the cron it was given, in its time zone, and a source is due."""
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.migrate()
    now = datetime(2025, 7, 20, 9, 30, tzinfo=UTC)
    store.add_source(SourceSpec(url="http://127.0.0.1:9/a.html", label="a"), now)
    cron = StatusOptions(store.url, "0 7 * * *", "Asia/Riyadh")  # 04:00 UTC
    served = Served(store, WebOptions(clock=lambda: now, status=cron))
    try:
        [status] = httpx.get(served.url + "/api/v1/status").json()
    finally:
        served.stop()
        store.close()
    assert status["next_digest"] == "2025-07-21T04:00:00+00:00"
    assert status["sources"] == 1 and status["backlog"]["due"] == 1
    assert status["alerts"] == {"failing": 0, "last_error": None} and status["workers"] == []


@pytest.mark.e2e
@pytest.mark.slow
def test_the_api_filters_as_the_cli_does(demo) -> None:  # type: ignore[no-untyped-def]
    where, served = demo

    def get(path: str, **params: str) -> Any:
        r = httpx.get(served.url + path, params=params)
        assert r.status_code == 200, (path, params, r.text)
        return r.json()

    against = get("/api/v1/flags", stance="contradicts")
    assert against and {f["stance"] for f in against} == {"contradicts"}
    assert [f["id"] for f in against] == [
        f["id"] for f in cli_json(where, "flags", "--stance", "contradicts")
    ]
    strong = get("/api/v1/flags", min="0.8")
    assert strong and all(f["score"] >= 0.8 for f in strong)
    assert len(strong) < len(get("/api/v1/flags"))
    edit = next(c for c in cli_json(where, "changes") if c["kind"] == "edit")
    one = get("/api/v1/changes", source=edit["source"])
    assert one and {c["source"] for c in one} == {edit["source"]}
    assert len(one) < len(get("/api/v1/changes"))
    assert get("/api/v1/changes", since="2025-07-01") and get("/api/v1/flags", since="2025-07-01")
    assert get("/api/v1/changes", since="2h") == [] == get("/api/v1/flags", since="2h")
    for path, params in (
        ("/api/v1/flags", {"stance": "maybe"}),
        ("/api/v1/flags", {"since": "yesterday"}),
        ("/api/v1/changes", {"since": "yesterday"}),
        ("/api/v1/changes", {"min": "a lot"}),
        ("/api/v1/changes", {"min": "nan"}),  # read as 0, it listed everything
        ("/api/v1/flags", {"min": "NaN"}),
    ):
        r = httpx.get(served.url + path, params=params)
        assert r.status_code == 400 and set(r.json()) == {"error"}, (path, params)
    assert httpx.get(served.url + "/api/v1/changes", params={"source": "nope"}).status_code == 404
    for path in ("/api/v1/flags?claim=nope", "/flags?claim=nope", "/feeds/claims/nope.atom"):
        r = httpx.get(served.url + path)
        assert r.status_code == 404 and "no claim" in r.text and "nope" in r.text, path
    assert get("/api/v1/flags", claim="meta-ends-open-releases")


@pytest.mark.e2e
@pytest.mark.slow
def test_the_api_pages_the_logs_with_a_next_link(demo) -> None:  # type: ignore[no-untyped-def]
    """/api/v1/changes and /api/v1/flags stopped at the newest 500 with no way to the
    rest. ``limit`` sets the page size, and a full page's ``Link: rel="next"`` resumes
    after its last record, the other filters kept: walking the links gives every record
    of the unpaged listing once, in its order."""
    where, served = demo

    def walk(path: str, **params: str) -> tuple[list[int], int]:
        url: str | None = served.url + path
        seen: list[int] = []
        pages = 0
        while url:
            r = httpx.get(url, params=params if not seen else None)
            assert r.status_code == 200, r.text
            seen += [x["id"] for x in r.json()]
            pages += 1
            url = r.links.get("next", {}).get("url")
        return seen, pages

    every_flag = [f["id"] for f in cli_json(where, "flags")]
    assert len(every_flag) > 5
    assert walk("/api/v1/flags", limit="5") == (every_flag, -(-len(every_flag) // 5))
    supporting = [f["id"] for f in cli_json(where, "flags", "--stance", "supports")]
    assert walk("/api/v1/flags", limit="4", stance="supports")[0] == supporting
    every_change = [c["id"] for c in cli_json(where, "changes")]
    assert walk("/api/v1/changes", limit="3")[0] == every_change
    last = httpx.get(served.url + "/api/v1/flags", params={"limit": str(len(every_flag))})
    assert "link" not in last.headers  # the whole log in one page: no next
    for params in ({"limit": "0"}, {"limit": "501"}, {"limit": "x"}, {"before": "x"}):
        r = httpx.get(served.url + "/api/v1/flags", params=params)
        assert r.status_code == 400 and set(r.json()) == {"error"}, params
    gone = httpx.get(served.url + "/api/v1/changes", params={"before": "987654"})
    assert gone.status_code == 404 and gone.json() == {"error": "no change 987654"}


def test_a_storys_statements_show_in_their_own_languages(store: Store) -> None:
    """A story of the user's own, in German, French, Arabic and a statement of unknown
    language: each shows with its own language and direction, on the page and in the
    API (the store's two old columns hold the first two statements, whatever they are)."""
    from archiver.claims.rules import Claim, claim_to_dict

    strike = (
        ("de", "Die Lokführer streiken ab Montag im ganzen Land."),
        ("fr", "Les conducteurs de train font grève dans tout le pays dès lundi."),
        ("ar", "يضرب سائقو القطارات في أنحاء البلاد ابتداء من يوم الاثنين."),
    )
    claims = [Claim("rail-strike", strike), Claim("plain", (("und", "Fares rise in May."),))]
    summary = "Rail <strike> & what follows"
    store.load_claims([claim_to_dict(c) for c in claims], datetime(2026, 1, 5, tzinfo=UTC), summary)
    served = Served(store)
    try:
        page = httpx.get(served.url + "/").text
        api = httpx.get(served.url + "/api/v1/claims").json()
    finally:
        served.stop()
    for lang, direction, text in (
        ("de", "ltr", strike[0][1]),
        ("fr", "ltr", strike[1][1]),
        ("ar", "rtl", strike[2][1]),
        ("und", "auto", "Fares rise in May."),
    ):
        assert f'<div class="statement" lang="{lang}" dir="{direction}">{text}</div>' in page
    assert '<p class="summary" dir="auto">Rail &lt;strike&gt; &amp; what follows</p>' in page
    shown = [{k: c[k] for k in ("id", "statement", "statements")} for c in api]
    assert shown == [  # in the claims file's order
        {"id": "rail-strike", "statement": strike[0][1], "statements": dict(strike)},
        {
            "id": "plain",
            "statement": "Fares rise in May.",
            "statements": {"und": "Fares rise in May."},
        },
    ]


def test_a_search_of_any_length_is_answered_on_every_store(store: Store) -> None:
    """SQLite refuses a LIKE pattern over 50,000 bytes: a sources search of 60,000
    letters answered 500. A search over 500 characters is one 400 line now, and one of
    500 is searched."""
    store.add_source(
        SourceSpec(url="https://example.org/a", label="a"), datetime(2026, 1, 5, tzinfo=UTC)
    )
    served = Served(store)
    try:
        for path in ("/sources", "/api/v1/sources"):
            r = httpx.get(served.url + path, params={"q": "a" * 60_000})
            assert r.status_code == 400 and "q must be at most 500 characters" in r.text, path
            r = httpx.get(served.url + path, params={"q": "a" * 500})
            assert r.status_code == 200, path
        assert httpx.get(served.url + "/api/v1/sources", params={"q": "a" * 500}).json() == []
        assert [s["label"] for s in httpx.get(served.url + "/api/v1/sources?q=exa").json()] == ["a"]
    finally:
        served.stop()


def test_a_number_too_large_for_any_row_is_not_found_on_every_store(store: Store) -> None:
    """An id or version number past 64 bits answered 500 (SQLite's OverflowError), and
    past 31 bits on PostgreSQL ("integer out of range"). No row has one: a 404."""
    store.add_source(
        SourceSpec(url="https://example.org/a", label="a"), datetime(2026, 1, 5, tzinfo=UTC)
    )
    served = Served(store)
    try:
        for big in ("3000000000", "9223372036854775808", "9" * 30):
            for path in (f"/flags/{big}", f"/sources/{big}", f"/sources/a/versions/{big}/raw",
                         f"/raw/a/{big}", f"/api/v1/sources/{big}/versions",
                         f"/changes?source={big}", f"/api/v1/flags?source={big}"):  # fmt: skip
                assert httpx.get(served.url + path).status_code == 404, path
        assert httpx.get(served.url + "/sources/%C2%B2").status_code == 404  # "²".isdigit()
        assert httpx.get(served.url + "/sources/1").status_code == 200
    finally:
        served.stop()


def test_an_address_with_a_nul_character_is_refused_on_every_store(store: Store) -> None:
    """PostgreSQL refuses a NUL in a query's text, and every path or filter that reaches
    the store answered 500 with a traceback in the log. It is one 400 line now."""
    store.add_source(
        SourceSpec(url="https://example.org/a", label="a"), datetime(2026, 1, 5, tzinfo=UTC)
    )
    served = Served(store)
    try:
        for path in (
            "/sources/%00",
            "/sources?q=%00",
            "/sources?kind=a%00",
            "/changes?source=%00",
            "/flags?claim=%00",
            "/feeds/claims/%00.atom",
            "/feeds/sources/%00.atom",
            "/api/v1/sources?q=%00",
            "/api/v1/flags?claim=x%00y",
            "/api/v1/sources/%00/versions",
            "/raw/%00/1",
            "/sources?%00=1",
        ):
            r = httpx.get(served.url + path)
            assert (r.status_code, r.text) == (
                400,
                "the address has a NUL character (%00): remove it\n",
            ), path
        assert httpx.get(served.url + "/sources/a").status_code == 200
        assert (
            httpx.get(served.url + "/api/v1/sources", params={"q": "a"}).json()[0]["label"] == "a"
        )
    finally:
        served.stop()


@pytest.mark.e2e
@pytest.mark.slow
def test_review_needs_the_csrf_token(demo) -> None:  # type: ignore[no-untyped-def]
    where, served = demo
    flag = cli_json(where, "flags")[0]
    with httpx.Client(base_url=served.url) as client:
        client.get(f"/flags/{flag['id']}")
        forged = client.post(
            f"/flags/{flag['id']}/review", data={"verdict": "rejected", "csrf": "guess"}
        )
        assert forged.status_code == 403
        odd = client.post(f"/flags/{flag['id']}/review", data={"verdict": "x", "csrf": "é"})
        assert odd.status_code == 403
        page = client.get(f"/flags/{flag['id']}").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None
        done = client.post(
            f"/flags/{flag['id']}/review",
            data={"verdict": "confirmed", "stance": "mentions", "csrf": token.group(1)},
        )
        assert done.status_code == 303
    [after] = [f for f in cli_json(where, "flags") if f["id"] == flag["id"]]
    assert (after["verdict"], after["verdict_stance"]) == ("confirmed", "mentions")


@pytest.mark.e2e
@pytest.mark.slow
def test_evidence_the_matcher_missed_is_flagged_from_the_source_page(demo) -> None:  # type: ignore[no-untyped-def]
    """The source page's form does what `flags add` does: a quoted sentence of the
    chosen version becomes a confirmed flag for the chosen claim, and the browser lands
    on its page. A quote that fits no sentence or several, or a forged form, is refused
    with the reason, and nothing is written."""
    needs_browser()
    where, served = demo
    missed = "We released Llama 4 Scout and Llama 4 Maverick with open weights in April."
    before = cli_json(where, "flags", "--source", "meta-statement", "--limit", "0")
    assert missed not in [f["evidence"] for f in before]
    with httpx.Client(base_url=served.url) as client:
        html = client.get("/sources/meta-statement").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', html)
        assert csrf is not None and 'id="add-flag"' in html
        form = {"version": "3", "claim": "meta-ends-open-releases", "stance": "contradicts"}
        forged = client.post("/sources/meta-statement/flags", data={**form, "csrf": "guess",
                                                                    "sentence": "Llama 4 Scout"})  # fmt: skip
        assert forged.status_code == 403
        for quote, says, version in [
            ("open", "4 sentences of version 3 of meta-statement contain &#39;open&#39;", "3"),
            ("<b>absent</b>", "no sentence of version 3 of meta-statement contains", "3"),
            ("Llama 4 Scout", "meta-statement has no version 99", "99"),
            ("Llama 4 Scout", "meta-statement has no version 3x", "3x"),
        ]:
            refused = client.post(
                "/sources/meta-statement/flags",
                data={**form, "csrf": csrf.group(1), "sentence": quote, "version": version},
            )
            assert refused.status_code == 400 and says in refused.text, refused.text
            assert "<b>absent" not in refused.text  # the quote is text, never markup
    assert cli_json(where, "flags", "--source", "meta-statement", "--limit", "0") == before

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        page.goto(f"{served.url}/sources/meta-statement")
        page.select_option("#add-flag select[name=claim]", "meta-ends-open-releases")
        page.select_option("#add-flag select[name=stance]", "contradicts")
        page.fill("#add-flag input[name=sentence]", "llama 4 SCOUT")
        with page.expect_navigation():
            page.click("#add-flag button")
        assert re.search(r"/flags/\d+$", page.url), page.url
        assert page.locator("#evidence").inner_text() == missed
        assert "contradicts · added by a reviewer · confirmed by a reviewer as" in (
            page.locator("main p").first.inner_text()
        )
        browser.close()
    [added] = [
        f
        for f in cli_json(where, "flags", "--source", "meta-statement", "--limit", "0")
        if f["evidence"] == missed
    ]
    assert (added["claim"], added["verdict"], added["version"]) == (
        "meta-ends-open-releases",
        "confirmed",
        3,
    )
    # Everywhere a score is shown, the added flag says who flagged it instead of 1.00:
    # the story page's timeline point and the claim's Atom feed too.
    story = httpx.get(served.url + "/").text
    point = re.search(rf'href="/flags/{added["id"]}"><circle[^>]*><title>([^<]*)<', story)
    assert point is not None, story
    assert "contradicts (added by a reviewer): We released Llama 4 Scout" in point.group(1)
    feed = feedparser.parse(
        httpx.get(served.url + "/feeds/claims/meta-ends-open-releases.atom").content
    )
    titles = [e.title for e in feed.entries if e.link.endswith(f"/flags/{added['id']}")]
    assert titles == ["meta-ends-open-releases contradicts (added by a reviewer): meta-statement"]


@pytest.mark.e2e
@pytest.mark.slow
def test_a_review_link_followed_from_an_email_opens_the_flag_and_takes_the_verdict(
    demo: Any,
) -> None:
    """The digest and the alerts link a flag to its page ([web] url). Off loopback the
    web view needs its token, which the browser keeps as a cookie once the reader has
    opened it with ?token=. A link clicked in a mail client is a navigation from
    another site, and a SameSite=Strict cookie is not sent with it: the reader got
    "a token is needed" from every link. The token cookie is Lax now (sent on a
    top-level GET from another site, never with another site's POST), and the
    review form, same-site and carrying its CSRF token, still takes the verdict."""
    needs_browser()
    where, _served = demo
    store = Store(f"sqlite:///{where / 'claimwatch-demo' / 'claimwatch.db'}")
    served = Served(store, WebOptions(token="s3cret"))
    flag = next(f for f in cli_json(where, "flags") if f["verdict"] is None)
    link = f"{served.url}/flags/{flag['id']}"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page()
            first = page.goto(f"{served.url}/?token=s3cret")  # once, by hand
            assert first is not None and first.status == 200
            # The e-mail: a page of another site holding the link (answered by the
            # browser's own router, so nothing leaves the machine).
            mail = f'<p>A new flag. <a id="review" href="{link}">review</a></p>'
            page.route(
                "http://mail.example/**",
                lambda route: route.fulfill(body=mail, content_type="text/html"),
            )
            page.goto("http://mail.example/inbox")
            with page.expect_navigation() as opened:
                page.click("#review")
            response = opened.value
            assert response is not None and response.status == 200, page.content()
            assert flag["evidence"] in page.locator("#evidence").inner_text()
            page.locator("form:has(input[value=rejected]) button").click()
            page.wait_for_url(link)
            browser.close()
    finally:
        served.stop()
        store.close()
    [after] = [f for f in cli_json(where, "flags") if f["id"] == flag["id"]]
    assert after["verdict"] == "rejected"


@pytest.mark.e2e
@pytest.mark.slow
def test_a_token_is_required_when_set_and_off_loopback(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    where, _served = demo
    store = Store(f"sqlite:///{where / 'claimwatch-demo' / 'claimwatch.db'}")
    served = Served(store, WebOptions(token="s3cret"))
    try:
        refused = httpx.get(served.url + "/")
        assert refused.status_code == 401
        # Said in UTF-8, so a browser shows the ellipsis, not "â€¦".
        assert refused.headers["content-type"] == "text/plain; charset=utf-8"
        assert refused.text == "a token is needed: open this address with ?token=…\n"
        assert httpx.get(served.url + "/", params={"token": "s3cret"}).status_code == 200
        assert httpx.get(served.url + "/", params={"token": "sécret"}).status_code == 401
        bearer = {"Authorization": "Bearer s3cret"}
        assert httpx.get(served.url + "/api/v1/claims", headers=bearer).status_code == 200
    finally:
        served.stop()
        store.close()
    r = claimwatch(tmp_path, "web", "--host", "0.0.0.0", env={"CLAIMWATCH_WEB_TOKEN": None})
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "CLAIMWATCH_WEB_TOKEN" in r.stderr


@pytest.mark.e2e
@pytest.mark.slow
def test_an_archived_hostile_page_runs_nothing(
    demo: Any,
    httpserver: HTTPServer,
) -> None:
    needs_browser()
    where, served = demo
    hits: list[str] = []

    def trap(request: Request) -> Response:
        hits.append(request.path)
        return Response("", headers={"Access-Control-Allow-Origin": "*"})

    for path in ("/script", "/onerror", "/link"):
        httpserver.expect_request(path).respond_with_handler(trap)
    html = HOSTILE.format(trap=httpserver.url_for("").rstrip("/"))
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/hostile.html").respond_with_data(html, content_type="text/html")
    args = [sys.executable, "-m", "archiver.cli", *db_args(where)]
    env = {**os.environ, "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": "1"}
    url = httpserver.url_for("/hostile.html")
    for step in (["sources", "add", url, "--label", "hostile"], ["check", "hostile"]):
        r = subprocess.run(args + step, capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
    source = next(s for s in cli_json(where, "sources", "list") if s["label"] == "hostile")
    hits.clear()  # the check fetched the page; from here on nothing may reach the trap

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        dialogs: list[str] = []

        def dismiss(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", dismiss)
        page.goto(f"{served.url}/sources/{source['id']}/versions/1/raw")
        page.wait_for_timeout(1500)
        frame = page.frame_locator("iframe.raw")
        frame.locator("#js").click(timeout=5000)
        page.wait_for_timeout(1000)
        assert "&lt;script&gt;" in page.content() or "<script>fetch" not in page.content()
        # Pick two versions of a source: the changed words are marked.
        edit = next(c for c in cli_json(where, "changes") if c["kind"] == "edit")
        edited = next(s for s in cli_json(where, "sources", "list") if s["label"] == edit["source"])
        page.goto(f"{served.url}/sources/{edited['id']}")
        page.select_option("select[name=a]", str(edit["from"]))
        page.select_option("select[name=b]", str(edit["to"]))
        page.click("#pick button")
        page.wait_for_selector("#diff")
        assert page.locator("table.sbs del, table.sbs ins").count() > 0
        # Filter changes by significance.
        page.goto(f"{served.url}/changes")
        page.fill("input[name=min]", "0.5")
        page.click("form button")
        page.wait_for_url(re.compile(r".*min=0\.5.*"))
        shown = [float(t) for t in page.locator("td.sig").all_inner_texts()]
        assert shown and all(v >= 0.5 for v in shown)
        # The story page: Arabic right to left, as the browser computes it.
        page.goto(served.url + "/")
        direction = page.eval_on_selector(".article", "e => getComputedStyle(e).direction")
        # A timeline point leads to its evidence.
        page.locator("svg.timeline a").last.click()  # drawn last: on top
        page.wait_for_url(re.compile(r".*/flags/\d+$"))
        evidence = page.locator("#evidence").inner_text()
        # The README's screenshot: CLAIMWATCH_WEB_SCREENSHOT=docs/web-story.png pytest ...
        shot = Path(os.environ.get("CLAIMWATCH_WEB_SCREENSHOT") or where / "web-story.png")
        page.goto(served.url + "/")
        page.set_viewport_size({"width": 1100, "height": 900})
        page.screenshot(path=str(shot))
        browser.close()
    assert hits == []
    assert dialogs == []
    assert direction == "rtl"
    assert evidence.strip()
    assert shot.stat().st_size > 10_000


def test_the_web_view_without_its_extra_says_what_to_install(tmp_path: Path) -> None:
    """Installed without claimwatch[web], 'claimwatch web' was an internal error
    (ModuleNotFoundError: starlette). A package that cannot be imported stands in for
    the missing extra here."""
    blocked = tmp_path / "blocked"
    for name in ("uvicorn", "starlette"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(
            f"raise ModuleNotFoundError('no {name} here', name='{name}')\n", encoding="utf-8"
        )
    r = claimwatch(tmp_path, "web", "--port", "0", env={"PYTHONPATH": str(blocked)})
    assert r.returncode == 2, r.stderr
    [line] = r.stderr.strip().splitlines()
    assert line == "claimwatch: error: the web view needs uvicorn: pip install 'claimwatch[web]'"
