"""Instant alerts through Apprise to a real HTTP receiver on loopback (a json:// URL):
each change and flag over the thresholds arrives exactly once, across `alerts` runs and
`serve --once` restarts; a failing receiver is shown by status and retried."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from jobs.alerts import ALERT_LOCK, AlertOptions, send_pending
from store.leases import advisory_lock
from store.models import SourceSpec
from store.repo import Store
from tests.support import FIRST, NOW, Page, article_html, claimwatch, story_dir
from tests.support.pipeline import PARAS, run, serve
from tests.support.pipeline import Page as ServedPage

CLOSED = "Meta said it will keep its next frontier model closed and sell access to it."
ADS = "WhatsApp will show ads in its Updates tab, more than a decade after Meta bought it for $19 billion."


class Receiver:
    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.status = 200

    def __call__(self, request: Request) -> Response:
        if self.status != 200:
            return Response("down", status=self.status)
        self.posts.append(json.loads(request.get_data()))
        return Response("ok")


def serving(httpserver: HTTPServer, title: str, paragraphs: list[str]) -> tuple[Receiver, Page]:
    """The alert receiver at /hook and one watched page at /a.html, on ``httpserver``."""
    receiver = Receiver()
    httpserver.expect_request("/hook", method="POST").respond_with_handler(receiver)
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    page = Page(article_html(title, paragraphs))
    httpserver.expect_request("/a.html").respond_with_handler(page)
    return receiver, page


def runner(story: Path, env: dict[str, str | None]) -> Callable[..., str]:
    """``run(*args)``: the real command on ``story`` with ``env``; it must succeed."""

    def run(*args: str) -> str:
        r = claimwatch(story, *args, env=env)
        assert r.returncode == 0, r.stderr
        return r.stdout

    return run


def check_twice(run: Callable[..., str], httpserver: HTTPServer, page: Page) -> None:
    """Watch /a.html as "a", check it, add CLOSED to it and check it again: one change
    and one flag for the alerts."""
    run("init")
    run("sources", "add", httpserver.url_for("/a.html"), "--label", "a")
    run("check", "a")
    page.html = article_html("Meta's lab sets release rules", [*FIRST, CLOSED])
    run("check", "a")


@pytest.mark.e2e
@pytest.mark.slow
def test_alerts_arrive_exactly_once_and_failures_are_retried(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    story = story_dir(tmp_path, claims=True)
    receiver, page = serving(httpserver, "Meta's lab sets release rules", FIRST)
    hook = f"json://127.0.0.1:{httpserver.port}/hook"
    env: dict[str, str | None] = {
        "CLAIMWATCH_ALERT_URLS": hook,
        "CLAIMWATCH_CONFIG": str(tmp_path / "claimwatch.toml"),
    }
    (tmp_path / "claimwatch.toml").write_text(
        "[alerts]\nmin_significance = 0.1\nmin_score = 0.5\n", encoding="utf-8"
    )

    run = runner(story, env)
    check_twice(run, httpserver, page)
    assert "2 sent, 0 failed" in run("alerts")
    titles = [p["title"] for p in receiver.posts]
    assert any("changed" in t for t in titles)  # the change
    assert any("meta-ends-open-releases supports" in t for t in titles)  # the flag
    assert len(titles) == 2
    assert any(CLOSED in p["message"] for p in receiver.posts)

    # Once: another pass, and serve restarted, send nothing new.
    assert "0 sent" in run("alerts")
    r = claimwatch(story, "serve", "--once", env=env)
    assert r.returncode == 0, r.stderr
    assert len(receiver.posts) == 2

    # The receiver fails: the new flag is kept, shown by status, and retried once it is up.
    receiver.status = 500
    page.html = article_html("Meta's lab sets release rules", [*FIRST, CLOSED, ADS])
    run("check", "a")
    r = claimwatch(story, "alerts", env=env)
    assert r.returncode == 1 and "failed" in r.stdout
    assert "failing, retried at the next pass: Apprise could not deliver" in run("status")
    alerts = json.loads(run("status", "--json"))["alerts"]
    assert (
        alerts["failing"] == 2 and "Apprise could not deliver" in alerts["last_error"]
    )  # change, flag
    receiver.status = 200
    r = claimwatch(story, "serve", "--once", env=env)
    assert r.returncode == 0, r.stderr
    new = [p["title"] for p in receiver.posts[2:]]
    assert any("whatsapp-long-game" in t for t in new) and len(new) == 2
    assert "failing, retried" not in run("status")
    assert "0 sent" in run("alerts")
    assert len(receiver.posts) == 4


THRESHOLD = "Licensees with more than 700 Million monthly users need a separate licence."


@pytest.mark.e2e
@pytest.mark.slow
def test_a_watched_phrase_alerts_when_a_page_starts_or_stops_saying_it(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """[watch] phrases: a page that starts saying "700 million" is announced, however
    small the change, and so is the edit that takes it away; once each, with the words
    around it. A change that moves no phrase announces nothing."""
    story = story_dir(tmp_path)
    receiver, page = serving(httpserver, "Meta's lab sets release rules", FIRST)
    (tmp_path / "claimwatch.toml").write_text(
        '[alerts]\nmin_significance = 1.0\n[watch]\nphrases = ["700 million", "open weights"]\n',
        encoding="utf-8",
    )
    env: dict[str, str | None] = {
        "CLAIMWATCH_ALERT_URLS": f"json://127.0.0.1:{httpserver.port}/hook",
        "CLAIMWATCH_CONFIG": str(tmp_path / "claimwatch.toml"),
    }
    run = runner(story, env)
    run("init")
    run("sources", "add", httpserver.url_for("/a.html"), "--label", "a")
    run("check", "a")
    page.html = article_html("Meta's lab sets release rules", [*FIRST, THRESHOLD])
    run("check", "a")
    assert "1 sent, 0 failed" in run("alerts")
    [said] = receiver.posts
    assert said["title"] == 'claimwatch: a now says "700 million"'
    assert said["message"].splitlines()[0] == (
        "Licensees with more than [700 Million] monthly users need a separate licence. (version 2)"
    )
    assert "0 sent" in run("alerts")  # once
    reworded = FIRST[0].replace("case by case", "one at a time")
    page.html = article_html("Meta's lab sets release rules", [reworded, FIRST[1], THRESHOLD])
    run("check", "a")  # an edit elsewhere: no phrase moves
    assert "0 sent" in run("alerts")
    page.html = article_html("Meta's lab sets release rules", [reworded])
    run("check", "a")
    assert "1 sent" in run("alerts")
    gone = receiver.posts[-1]
    assert gone["title"] == (
        'claimwatch: a no longer says "700 million"; no longer says "open weights"'
    )
    assert gone["message"].splitlines()[:2] == [
        "Licensees with more than [700 Million] monthly users need a separate licence. "
        "(version 3, gone in 4)",
        "…did not say whether its next Llama model would ship with [open weights]. "
        "(version 3, gone in 4)",
    ]
    assert len(receiver.posts) == 2
    page.html = article_html("Meta's lab sets release rules", [reworded, THRESHOLD])
    run("check", "a")
    assert "1 sent" in run("alerts")  # said again
    # The user points the source at its headline alone: that first selection is no edit
    # of the page, and says nothing of what the page stopped saying.
    run("sources", "edit", "a", "--select", "h1")
    assert "new version" in run("check", "a")  # the same bytes: the selection is news
    assert "0 sent" in run("alerts")
    assert len(receiver.posts) == 3
    (tmp_path / "claimwatch.toml").write_text('[watch]\nphrases = ["x"]\n', encoding="utf-8")
    r = claimwatch(story, "alerts", env=env)
    assert r.returncode == 2
    assert r.stderr == (
        "claimwatch: error: [watch] phrases: 'x' is too short; give at least 2 characters\n"
    )


@pytest.mark.e2e
@pytest.mark.slow
def test_an_alert_address_apprise_cannot_read_stops_alerts_and_serve_at_the_start(
    tmp_path: Path,
) -> None:
    """It used to be a failed send on every pass of a running service, logged with the
    whole address. Now alerts and serve refuse to start, in one line that names the
    setting and the address's scheme, never its token."""
    story = story_dir(tmp_path, claims=True)
    assert claimwatch(story, "init").returncode == 0
    for urls, which, shown in (
        ("nosuch://s3cr3t-token@host", "address 1 of 1", "a nosuch:// address"),
        ("json://127.0.0.1:9/hook,s3cr3t-token", "address 2 of 2", "an address without a scheme"),
    ):
        for command in (["alerts"], ["serve", "--once"]):
            r = claimwatch(story, *command, env={"CLAIMWATCH_ALERT_URLS": urls})
            assert r.returncode == 2, (command, r.stderr)
            [line] = r.stderr.strip().splitlines()
            assert line.startswith(f"claimwatch: error: [alerts] urls, {which}: {shown}"), line
            assert "s3cr3t" not in r.stderr + r.stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_an_alert_for_a_claim_without_examples_says_its_stance_is_a_guess(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """A story written only as statements: its flags' stance is a guess (docs/claims.md,
    "Stance needs examples"), and the alert's title says so."""
    story = story_dir(tmp_path)
    (tmp_path / "seeds" / "claims.yaml").write_text(
        "version: 2\nclaims:\n"
        "  - id: rail-strike\n    statement: Train drivers will strike across the country from Monday.\n"
        "  - id: fares-rise\n    statement: Rail fares will rise by five percent in May.\n",
        encoding="utf-8",
    )
    first = [
        "The train drivers' union has called a national strike from Monday.",
        "Drivers will stop work for three days unless the operator raises its pay offer.",
        "Talks between the union and the operator broke down late on Thursday evening.",
    ]
    receiver, page = serving(httpserver, "Strike notice", first)
    env: dict[str, str | None] = {
        "CLAIMWATCH_ALERT_URLS": f"json://127.0.0.1:{httpserver.port}/hook",
        "CLAIMWATCH_SEMANTIC": None,  # the learned matcher, which marks the guess
    }
    for args in (["init"], ["sources", "add", httpserver.url_for("/a.html"), "--label", "a"]):
        assert claimwatch(story, *args, env=env).returncode == 0
    assert claimwatch(story, "check", "a", env=env).returncode == 0
    page.html = article_html(
        "Strike notice",
        [*first, "Train drivers will not strike on Monday after all, the union said."],
    )
    r = claimwatch(story, "check", "a", env=env)
    assert r.returncode == 0, r.stderr
    r = claimwatch(story, "alerts", env=env)
    assert r.returncode == 0, r.stderr
    flagged = [p["title"] for p in receiver.posts if "rail-strike" in p["title"]]
    assert flagged and all(t.endswith(", stance unsure)") for t in flagged), receiver.posts

    # The reviewer is told too, and settles it.
    r = claimwatch(story, "flags", "review", "--claim", "rail-strike", input="c\ncontradicts\n")
    assert r.returncode == 0, r.stderr
    assert "stance unsure: the claim has no examples yet" in r.stdout
    assert "1 reviewed" in r.stdout

    # Evidence the reviewer adds is alerted as theirs, without a score of the matcher's.
    r = claimwatch(story, "flags", "add", "a", "--claim", "fares-rise", "--stance",
                   "contradicts", "--sentence", "raises its pay offer", env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    listed = claimwatch(story, "flags", "--claim", "fares-rise").stdout
    assert "contradicts (added by a reviewer)" in listed, listed
    assert claimwatch(story, "alerts", env=env).returncode == 0
    assert "claimwatch: fares-rise contradicts (added by a reviewer)" in [
        p["title"] for p in receiver.posts
    ], receiver.posts


@pytest.mark.e2e
@pytest.mark.slow
def test_with_the_web_views_address_alerts_and_the_digest_link_to_pages_that_exist(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """With [web] url set, each alert and the digest link a flag to its review page and
    a change to its two versions side by side; the links are followed here, on the real
    web view over the same store. Without it they carry no such link."""
    import httpx

    from tests.support.web import Served

    story = story_dir(tmp_path, claims=True)
    receiver, page = serving(httpserver, "Meta's lab sets release rules", FIRST)
    store = Store(f"sqlite:///{story / 'x.db'}")
    store.migrate()
    served = Served(store)
    config = story / "claimwatch.toml"
    env: dict[str, str | None] = {
        "CLAIMWATCH_ALERT_URLS": f"json://127.0.0.1:{httpserver.port}/hook",
        "CLAIMWATCH_CONFIG": str(config),
    }
    thresholds = "[alerts]\nmin_significance = 0.1\nmin_score = 0.5\n"
    config.write_text(f'{thresholds}[web]\nurl = "{served.url}/"\n', encoding="utf-8")

    run = runner(story, env)
    try:
        check_twice(run, httpserver, page)
        assert "2 sent" in run("alerts")
        links = {
            line.split(": ", 1)[0]: line.split(": ", 1)[1]
            for p in receiver.posts
            for line in p["message"].splitlines()
            if line.startswith(("review: ", "side by side: "))
        }
        assert set(links) == {"review", "side by side"}
        # Both alerts name the page itself too.
        assert all(httpserver.url_for("/a.html") in p["message"] for p in receiver.posts)
        review, compare = links["review"], links["side by side"]
        assert review.startswith(served.url + "/flags/") and "//flags" not in review
        assert compare.startswith(served.url + "/sources/") and compare.endswith("?a=1&b=2")
        flag_page, versions_page = httpx.get(review), httpx.get(compare)
        assert flag_page.status_code == 200 and CLOSED in flag_page.text
        assert versions_page.status_code == 200 and CLOSED in versions_page.text

        run("digest", "--dry-run", "--out", str(story / "out"))
        [text] = [p for p in (story / "out").iterdir() if p.suffix == ".eml"]
        [html] = [p for p in (story / "out").iterdir() if p.suffix == ".html"]
        assert review in html.read_text(encoding="utf-8")
        assert compare.replace("&", "&amp;") in html.read_text(encoding="utf-8")
        assert "review: " in text.read_text(encoding="utf-8")

        # Without [web] url: nothing links to a web view the reader may not reach.
        config.write_text(thresholds, encoding="utf-8")
        page.html = article_html("Meta's lab sets release rules", [*FIRST, CLOSED, ADS])
        run("check", "a")
        run("alerts")
        assert len(receiver.posts) == 4
        assert not any(
            served.url in p["message"] or "review: " in p["message"] for p in receiver.posts[2:]
        )
    finally:
        served.stop()
        store.close()


def test_one_pass_of_alerts_runs_at_a_time_across_workers(
    store: Store, httpserver: HTTPServer
) -> None:
    """Two `serve` workers on one PostgreSQL store each run a pass of alerts after their
    dispatch. Both passes read the same pending items, so both sent each alert, and the
    second to record it failed on the alerts table's key. A pass now holds an advisory
    lock: while another holds it, a pass sends nothing and says so; once it is free, the
    next pass sends each item once. (SQLite has one `serve` per file: no lock there.)"""
    page = ServedPage(article_html("Meta and its models", PARAS))
    url = serve(httpserver, "/h.html", page)
    store.add_source(SourceSpec(url=url, label="h"), NOW)
    run(store, "h", 0)
    page.html = article_html("Meta and its models", [*PARAS, "Meta will close its next model."])
    assert run(store, "h", 1).outcome == "new_version"
    sent: list[str] = []
    options = AlertOptions(urls=("json://127.0.0.1:9/hook",), min_significance=0.0)

    def notify(_urls: list[str], title: str, _body: str) -> None:
        sent.append(title)

    shared = store.engine.dialect.name == "postgresql"
    with advisory_lock(store, ALERT_LOCK) as held:
        assert held
        busy = send_pending(store, options, NOW + timedelta(minutes=2), notify)
    assert (busy.elsewhere, busy.sent, len(sent)) == ((True, 0, 0) if shared else (False, 1, 1))
    done = send_pending(store, options, NOW + timedelta(minutes=3), notify)
    assert (done.elsewhere, len(sent)) == (False, 1)
    assert done.sent == (1 if shared else 0)  # each item once, whichever pass sent it
