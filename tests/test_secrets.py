"""Secrets never leave: the database password and the SMTP password appear in no output,
no log line, no error message and nothing the archive stores or exports."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pytest_httpserver import HTTPServer
from sqlalchemy import text

from store.repo import Store
from tests.support import SEEDS, article_html, copy_claims, free_port

DB_PASSWORD = "Db-Pw-7731-zebra"
SMTP_PASSWORD = "Smtp-Pw-4410-heron"


class _Refuse:
    """An SMTP server that asks for a login and refuses every one."""

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        return "250 OK"


def _deny(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    return AuthResult(success=False, handled=False)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.postgres
def test_no_secret_in_any_output(pg_server: str, httpserver: HTTPServer, tmp_path: Path) -> None:
    # Trust authentication accepts any password, so the URL can carry one and work.
    url = pg_server.replace("postgresql://postgres@", f"postgresql://postgres:{DB_PASSWORD}@")
    assert DB_PASSWORD in url
    with Store(pg_server).engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name in ("article-ar.txt", "article-ar.meta.yaml"):
        shutil.copy(SEEDS / name, seeds / name)
    copy_claims(seeds)
    (seeds / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/ok").respond_with_data(
        article_html("Fine", ["Meta said its open models would stay free for now."]),
        content_type="text/html",
    )
    httpserver.expect_request("/gone").respond_with_data("no", status=500)
    smtp = Controller(
        _Refuse(),
        hostname="127.0.0.1",
        port=free_port(),
        auth_require_tls=False,
        authenticator=_deny,
    )
    smtp.start()
    env = {
        **os.environ,
        "CLAIMWATCH_DB": url,
        "CLAIMWATCH_SEEDS": str(seeds),
        "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": "1",
        "CLAIMWATCH_SMTP_HOST": "127.0.0.1",
        "CLAIMWATCH_SMTP_PORT": str(smtp.port),
        "CLAIMWATCH_SMTP_TLS": "none",
        "CLAIMWATCH_SMTP_USER": "archivist",
        "CLAIMWATCH_SMTP_PASSWORD": SMTP_PASSWORD,
        "CLAIMWATCH_SMTP_TO": "ana@example.test",
        "CLAIMWATCH_DIGEST_CRON": "* * * * *",
    }
    outputs: list[str] = []

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [sys.executable, "-m", "archiver.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        outputs.append(f"$ {args[0]} -> {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    try:
        assert run("init").returncode == 0
        run("sources", "add", httpserver.url_for("/ok"), "--label", "ok")
        run("sources", "add", httpserver.url_for("/gone"), "--label", "gone")
        assert run("check", "--all").returncode == 1  # /gone fails
        run("status")
        run("status", "--json")
        run("config", "show")
        run("serve", "--once", "--log-format", "json")
        assert run("digest", "--send", "--send-empty").returncode != 0  # login refused
        run("export", "json", "--all")
        run("verify")
        dead = run("--db", url.replace("127.0.0.1:5432", "127.0.0.1:1"), "status")
        assert dead.returncode == 1
        assert dead.stderr.count("\n") == 1  # one line, however chatty the driver is
    finally:
        smtp.stop()
    everything = "\n".join(outputs)
    assert "535" in everything or "authentication" in everything.lower()  # the login was tried
    assert "***" in everything  # the URLs shown were masked, not dropped
    assert DB_PASSWORD not in everything
    assert SMTP_PASSWORD not in everything
    # Nor is either stored: every text column of every table, as the database dumps it.
    with Store(pg_server).engine.connect() as conn:
        tables = conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema='public'")
        ).scalars()
        for table in list(tables):
            dump = conn.execute(text(f'SELECT CAST(t AS text) FROM "{table}" t')).scalars()
            for row in dump:
                assert DB_PASSWORD not in row and SMTP_PASSWORD not in row, table


# A source URL's login: https://user:password@host/page.
LOGIN_PASSWORD = "Pw-Of-Page-5518-otter"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://ana:pw@example.org/p", "http://ana:***@example.org/p"),
        ("http://ana@example.org/p", "http://ana@example.org/p"),  # no password to hide
        ("http://ana:p@ss@example.org/p", "http://ana:***@example.org/p"),  # the last '@'
        ("http://ana:pw@example.org?next=a@b", "http://ana:***@example.org?next=a@b"),
        ("http://example.org?next=a:b@c", "http://example.org?next=a:b@c"),  # not a login
        ("http://example.org#a:b@c", "http://example.org#a:b@c"),
        ("http://example.org/@ana:x@y", "http://example.org/@ana:x@y"),  # a path
        ("https://a@b:pw@example.org:8443/p", "https://a@b:***@example.org:8443/p"),
        ("seed:column", "seed:column"),
    ],
)
def test_a_url_is_shown_with_its_password_masked_in_python_and_in_sql(
    store: Store, url: str, shown: str
) -> None:
    from sqlalchemy import literal, select

    from store.db import shown_url
    from store.models import mask_url

    assert mask_url(url) == shown
    with store.reading() as conn:  # what the web view's source search matches on
        assert conn.execute(select(shown_url(conn, literal(url)))).scalar_one() == shown


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("http://ana:***@example.org/p", "http://example.org/p"),
        ("http://ana@example.org:8080?x=a@b", "http://example.org:8080?x=a@b"),
        ("http://example.org/@ana", "http://example.org/@ana"),
        ("http://example.org?next=a:b@c", "http://example.org?next=a:b@c"),
    ],
)
def test_a_link_carries_no_login(url: str, link: str) -> None:
    from store.models import link_url

    assert link_url(url) == link


def test_the_login_goes_to_its_origin_only_and_never_into_a_reported_url() -> None:
    import httpx

    from archiver.net.fetch import FetchRequest, without_login
    from archiver.net.login import origin_of, split_login

    request, login = without_login(FetchRequest(url="https://ana:p%40ss@example.org/p?q=1"))
    assert request.url == "https://example.org/p?q=1"
    assert login is not None and (login.user, login.password) == ("ana", "p@ss")
    assert login.header() == "Basic YW5hOnBAc3M="  # base64 of ana:p@ss
    assert "p@ss" not in repr(login)
    assert login.origin == origin_of(httpx.URL("https://example.org:443/other"))
    assert login.origin != origin_of(httpx.URL("http://example.org/p"))  # no downgrade
    assert login.origin != origin_of(httpx.URL("https://example.org:8443/p"))
    plain = FetchRequest(url="https://example.org/p")
    assert without_login(plain) == (plain, None)
    assert split_login("https://ana:pw@[::1/") == ("https://ana:***@[::1/", None)  # refused later


@pytest.mark.parametrize(
    ("url", "feed", "lent"),
    [
        ("https://e.org/a", "https://ana:pw@e.org/feed", "https://ana:pw@e.org/a"),
        ("https://e.org:443/a", "https://ana:pw@e.org/feed", "https://ana:pw@e.org/a"),
        ("https://f.org/a", "https://ana:pw@e.org/feed", "https://f.org/a"),  # another host
        ("http://e.org/a", "https://ana:pw@e.org/feed", "http://e.org/a"),  # down to http
        ("https://e.org:8443/a", "https://ana:pw@e.org/feed", "https://e.org:8443/a"),
        ("https://bo:x@e.org/a", "https://ana:pw@e.org/feed", "https://bo:x@e.org/a"),  # its own
        ("https://e.org/a", "https://e.org/feed", "https://e.org/a"),  # no login to lend
    ],
)
def test_a_feeds_login_goes_to_the_articles_on_its_own_origin(
    url: str, feed: str, lent: str
) -> None:
    from archiver.net.login import lend_login

    assert lend_login(url, feed) == lent


@pytest.mark.e2e
@pytest.mark.slow
def test_a_page_behind_a_login_is_archived_and_its_password_shown_nowhere(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    import base64

    from werkzeug import Request, Response

    from archiver.web import WebOptions
    from tests.support import claimwatch
    from tests.support.web import Served

    wanted = "Basic " + base64.b64encode(f"ana:{LOGIN_PASSWORD}".encode()).decode()
    asked: dict[str, list[str | None]] = {}
    edits = iter(range(100))
    elsewhere = httpserver.url_for("/elsewhere").replace("127.0.0.1", "localhost")
    news = httpserver.url_for("/news")

    def handler(request: Request) -> Response:
        asked.setdefault(request.path, []).append(request.headers.get("Authorization"))
        if request.path == "/robots.txt":
            return Response("", status=404)
        if request.path == "/elsewhere":  # another origin: the login must not follow
            return Response(article_html("Elsewhere", ["A page on another host."] * 3))
        if request.headers.get("Authorization") != wanted:
            return Response("login", status=401, headers={"WWW-Authenticate": 'Basic realm="m"'})
        if request.path == "/moved":
            return Response("", status=302, headers={"Location": elsewhere})
        if request.path == "/feed.xml":  # its article is behind the same login
            item = f"<item><title>Budget</title><link>{news}</link></item>"
            rss = f'<rss version="2.0"><channel><title>Members</title>{item}</channel></rss>'
            return Response(rss, content_type="application/rss+xml")
        paragraphs = [
            f"Members were told the budget stands at {40 + next(edits)} million euros.",
            "The board meets again in the spring to review the figures for the year.",
        ]
        return Response(article_html("Members", paragraphs), content_type="text/html")

    for path in ("/robots.txt", "/members", "/moved", "/elsewhere", "/feed.xml", "/news"):
        httpserver.expect_request(path).respond_with_handler(handler)
    login = f"http://ana:{LOGIN_PASSWORD}@127.0.0.1:{httpserver.port}"
    wrong = f"http://ana:not-{LOGIN_PASSWORD}@127.0.0.1:{httpserver.port}"
    outputs: list[str] = []

    def run(*args: str) -> str:
        r = claimwatch(tmp_path, *args)
        outputs.append(f"$ {args[0]} -> {r.returncode}\n{r.stdout}{r.stderr}")  # not the URL typed
        return r.stdout

    run("init", "--no-seeds")
    run("sources", "add", f"{login}/members", "--label", "members")
    run("sources", "add", f"{wrong}/members")  # no label: its name is its URL
    run("sources", "add", f"{login}/moved", "--label", "moved")
    run("sources", "add", httpserver.url_for("/members"), "--label", "open")  # no login
    run("sources", "add", f"{login}/feed.xml", "--kind", "feed", "--label", "news")
    run("check", "--all")
    run("check", "--all")  # the members page changed: an edit, in the digest
    refused = claimwatch(tmp_path, "history", f"{wrong}/members").stderr
    assert "HTTP 401" in refused and "the login in the source's URL was refused" in refused
    asks = claimwatch(tmp_path, "history", "open").stderr
    assert "HTTP 401" in asks and "the page asks for a login: give it in the source's URL" in asks
    run("sources", "edit", f"{wrong}/members", "--url", f"{login}/members?copy=2")
    run("check", "--due")  # the edited source is due at once, and its login now works
    run("sources", "list")
    run("sources", "list", "--json")
    run("changes", "--json")
    run("show", "members")
    run("export", "json", "--all", "--out", str(tmp_path / "all.jsonl"))
    run("export", "warc", "members", "--out", str(tmp_path / "m.warc.gz"))
    run("digest", "--dry-run", "--since", "1d", "--out", str(tmp_path / "digest"))
    outputs.append((tmp_path / "all.jsonl").read_text(encoding="utf-8"))
    outputs.append(gzip.decompress((tmp_path / "m.warc.gz").read_bytes()).decode("latin-1"))
    outputs.extend(p.read_text(encoding="utf-8") for p in (tmp_path / "digest").iterdir())

    # The login was sent where it belongs, and nowhere else.
    assert wanted in asked["/members"]
    assert asked["/news"] and set(asked["/news"]) == {wanted}  # found by the feed: its login
    assert set(asked["/robots.txt"]) == {None}
    assert set(asked["/elsewhere"]) == {None}  # the redirect left the origin
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    assert [v.number for v in store.versions(store.get_source("members").id)] == [1, 2]
    assert len(store.versions(store.get_source(f"{login}/members?copy=2").id)) == 1
    assert store.versions(store.get_source("moved").id)[0].final_url == elsewhere

    served = Served(store, WebOptions())
    try:
        for path in (
            "/sources/1",
            "/sources/2/versions/1",
            "/sources",
            "/api/v1/sources",
            "/changes",
        ):
            page = httpx.get(served.url + path, timeout=30)
            assert page.status_code == 200, path
            outputs.append(page.text)
        outputs.append(httpx.get(served.url + "/feeds/changes.atom", timeout=30).text)
        # The listing's search matches the URL as shown: never by its password.
        by_password = httpx.get(served.url + "/sources", params={"q": "Page-5518"}).text
        by_host = httpx.get(served.url + "/sources", params={"q": "127.0.0.1"}).text
    finally:
        served.stop()
    assert "members" in by_host and "members" not in by_password
    everything = "\n".join(outputs)
    assert "ana:***@127.0.0.1" in everything  # shown, masked
    assert 'href="http://127.0.0.1' in everything  # linked without the login
    assert 'href="http://ana' not in everything  # a browser would send *** as a password
    assert LOGIN_PASSWORD not in everything and "Page-5518" not in everything  # a part too
    # Stored only where the fetch reads it: the sources' own URL column.
    with store.engine.connect() as conn:
        tables = conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'")).scalars()
        for table in list(tables):
            columns = [c[1] for c in conn.execute(text(f'PRAGMA table_info("{table}")'))]
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for column, value in zip(columns, row, strict=True):
                    if (table, column) != ("sources", "url"):
                        assert "Page-5518" not in str(value), (table, column)
    store.close()


def test_an_upgrade_takes_the_login_out_of_what_earlier_checks_recorded(store: Store) -> None:
    """Before 0016 a check recorded the source URL's login in the final URL, the site
    name, an error message and the robots.txt cache. The upgrade takes it out of those
    rows (the source's own URL keeps it: the fetch needs it) and leaves the others."""
    from dataclasses import replace as replaced
    from datetime import timedelta

    from alembic import command
    from sqlalchemy import insert, select

    from store.models import NewVersion, SourceSpec
    from store.schema import captures, robots, sources, versions
    from tests.support import NOW
    from tests.support.records import capture, schedule

    authority = f"ana:{LOGIN_PASSWORD}@intranet.example"
    url = f"https://{authority}/report"
    sid = store.add_source(SourceSpec(url=url, label="report"), NOW)
    other = store.add_source(SourceSpec(url="https://news.example/a", label="news"), NOW)
    store.add_version(
        NewVersion("text", None, site_name=authority, final_url=url),
        replaced(capture(sid), final_url=url),
        schedule(),
    )
    kept = NewVersion("other", None, site_name="@newsdesk", final_url="https://news.example/a")
    store.add_version(kept, capture(other), schedule())
    failed = replaced(
        capture(sid, 5),
        outcome="failed",
        final_url=url,
        error_class="HTTPStatusError",
        error_message=f"HTTP 401 from {url}",
    )
    store.record_capture(failed, schedule(5))
    with store.transaction() as conn:  # an archive made before 0016
        command.downgrade(store._alembic_config(conn), "0015")
        later = NOW + timedelta(days=1)
        for origin in (f"https://{authority}", "https://news.example"):
            row = {"origin": origin, "status": 404, "body": "", "fetched_at": NOW}
            conn.execute(insert(robots).values(**row, expires_at=later))
    store.migrate()

    with store.reading() as conn:
        rows = conn.execute(select(versions.c.final_url, versions.c.site_name)).all()
        assert sorted(map(tuple, rows)) == [
            ("https://intranet.example/report", "intranet.example"),
            ("https://news.example/a", "@newsdesk"),  # an '@' that is no login: left
        ]
        logged = conn.execute(select(captures.c.final_url, captures.c.error_message)).all()
        assert ("https://intranet.example/report", None) in logged
        assert (
            "https://intranet.example/report",
            "HTTP 401 from https://ana:***@intranet.example/report",
        ) in logged
        assert conn.execute(select(robots.c.origin)).scalars().all() == ["https://news.example"]
        assert conn.execute(select(sources.c.url).where(sources.c.id == sid)).scalar() == url
