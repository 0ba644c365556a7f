"""The email digest: composition (golden), delivery to a real SMTP server (aiosmtpd
on 127.0.0.1), and its state: nothing sent twice, nothing skipped."""

from __future__ import annotations

import email
import shutil
import subprocess
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer

from archiver import pipeline
from archiver.app.claimsfile import load_claims
from archiver.app.digest import (
    ChangeItem,
    CoverageItem,
    DigestData,
    DigestOptions,
    FailingItem,
    FlagItem,
    compose,
    header_safe,
)
from archiver.net.fetch import FetchOptions
from archiver.net.mailer import SmtpSettings
from archiver.text.diff import diff
from jobs import digest as digest_job
from store import digests as state
from store.models import SourceSpec
from store.repo import Store
from tests.support import NOW, article_html, free_port

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "digest"
CLAIMS = load_claims(ROOT / "seeds" / "claims.yaml")
OPTIONS = pipeline.CheckOptions(
    fetch=FetchOptions(allow_private=True, host_delay=0, max_attempts=1), processes=0, claims=CLAIMS
)


class Inbox:
    """An aiosmtpd handler that keeps what it is sent, or refuses it on demand."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse = False

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.refuse:
            return "554 5.7.1 message refused by policy"
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings = SmtpSettings(
        host="127.0.0.1",
        port=controller.port,
        tls="none",
        sender="digest@claimwatch.test",
        recipients=("ana@example.test", "omar@example.test"),
        attempts=2,
        backoff=0.01,
    )
    yield inbox, settings
    controller.stop()


def parts(msg: Message) -> tuple[str, str]:
    assert isinstance(msg, EmailMessage)
    plain, rich = msg.get_body(preferencelist=("plain",)), msg.get_body(preferencelist=("html",))
    assert isinstance(plain, EmailMessage) and isinstance(rich, EmailMessage)
    text, html = plain.get_content(), rich.get_content()
    return text, html


PARAS = [
    "Meta said its new lab would decide which models to release.",
    "The company spent heavily on data centres this year.",
]
NEW = "Meta said it will keep its next frontier model closed and sell access to it."


@pytest.fixture
def story(store: Store, httpserver: HTTPServer):  # type: ignore[no-untyped-def]
    """A page with a first version; ``edit(paragraphs, minutes)`` changes and checks it."""
    from werkzeug import Response

    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    page = {"html": article_html("Meta's model plans", PARAS)}
    httpserver.expect_request("/m.html").respond_with_handler(
        lambda _r: Response(page["html"], content_type="text/html")
    )
    from archiver.claims.rules import claim_to_dict

    store.load_claims([claim_to_dict(c) for c in CLAIMS], NOW)
    store.add_source(SourceSpec(url=httpserver.url_for("/m.html"), label="m"), NOW)
    pipeline.check(store, [store.get_source("m")], OPTIONS, clock=lambda: NOW)

    def edit(paragraphs: list[str], minutes: int, title: str = "Meta's model plans") -> None:
        page["html"] = article_html(title, paragraphs)
        at = NOW + timedelta(minutes=minutes)
        [r] = pipeline.check(store, [store.get_source("m")], OPTIONS, clock=lambda: at)
        assert r.outcome == "new_version"

    return edit


def test_digest_arrives_once_then_only_what_is_new(store: Store, story, smtp) -> None:  # type: ignore[no-untyped-def]
    inbox, settings = smtp
    story([*PARAS, NEW], 10)
    result = digest_job.run(store, settings, NOW + timedelta(hours=1), send_mail=True)
    assert result.status == "sent", result.error
    [msg] = inbox.messages
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Message-ID"] == result.message_id
    assert msg["To"] == "ana@example.test, omar@example.test"
    assert "meta-ends-open-releases supports" in msg["Subject"]
    text, html = parts(msg)
    for part in (text, html):
        assert NEW in part  # the changed sentence and the flag's evidence
        assert "meta-ends-open-releases" in part
    assert "<script" not in html and "<img" not in html and "<style" not in html

    again = digest_job.run(store, settings, NOW + timedelta(hours=2), send_mail=True)
    assert again.status == "empty" and len(inbox.messages) == 1

    later = "Analysts said Meta's capital spending will rise to as much as $72 billion."
    story([*PARAS, NEW, later], 200)
    third = digest_job.run(store, settings, NOW + timedelta(hours=4), send_mail=True)
    assert third.status == "sent" and len(inbox.messages) == 2
    text, _html = parts(inbox.messages[1])
    assert later in text and NEW not in text


def test_the_digest_lists_the_watched_phrases_that_moved(store: Store, story, smtp) -> None:  # type: ignore[no-untyped-def]
    """[watch] phrases: the digest names each page that started or stopped saying one,
    with the words around it; a digest without phrases set is as before."""
    inbox, settings = smtp
    story([*PARAS[:-1], NEW], 10)  # NEW comes, the last paragraph goes
    options = DigestOptions(phrases=("frontier model", PARAS[-1][:30], "no such words"))
    result = digest_job.run(
        store, settings, NOW + timedelta(hours=1), send_mail=True, options=options
    )
    assert result.status == "sent", result.error
    text, html = parts(inbox.messages[-1])
    text = text.replace("\r\n", "\n")
    section = text.split("WATCHED PHRASES\n===============\n", 1)[1].split("\n\n", 1)[0]
    lines = section.splitlines()
    assert lines[0].startswith('"frontier model" now said by m (version 1 -> 2, ')
    assert (
        lines[1]
        == "  Meta said it will keep its next [frontier model] closed and sell access to it."
    )
    assert lines[2].startswith(f'"{PARAS[-1][:30]}" no longer said by m (version 1 -> 2, ')
    assert lines[3] == f"  was: [{PARAS[-1][:30]}]{PARAS[-1][30:]}"
    assert "no such words" not in text and "Watched phrases" in html
    assert ">frontier model</span>" in html
    plain = digest_job.gather(store, NOW + timedelta(hours=1), NOW)
    assert plain.phrases == []


def test_a_refused_digest_leaves_everything_for_the_next(store: Store, story, smtp) -> None:  # type: ignore[no-untyped-def]
    inbox, settings = smtp
    story([*PARAS, NEW], 10)
    inbox.refuse = True
    failed = digest_job.run(store, settings, NOW + timedelta(hours=1), send_mail=True)
    assert failed.status == "failed" and "554" in (failed.error or "")
    assert state.uncovered_ids(store)[0]  # the change is still uncovered
    inbox.refuse = False
    ok = digest_job.run(store, settings, NOW + timedelta(hours=2), send_mail=True)
    assert ok.status == "sent"
    assert NEW in parts(inbox.messages[0])[0]
    assert [d.status for d in state.history(store)] == ["sent", "failed"]


def test_a_crash_after_sending_resends_the_same_message(
    store: Store, story: Any, smtp: tuple[Inbox, SmtpSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, settings = smtp
    story([*PARAS, NEW], 10)
    real_finish = state.finish

    def crash(*_a: object, **_k: object) -> None:
        raise RuntimeError("killed between sending and recording")

    monkeypatch.setattr(state, "finish", crash)
    with pytest.raises(RuntimeError):
        digest_job.run(store, settings, NOW + timedelta(hours=1), send_mail=True)
    monkeypatch.setattr(state, "finish", real_finish)
    first_id = inbox.messages[0]["Message-ID"]
    again = digest_job.run(store, settings, NOW + timedelta(hours=2), send_mail=True)
    assert again.status == "resent"
    assert [m["Message-ID"] for m in inbox.messages] == [first_id, first_id]
    assert bytes(inbox.messages[0]) == bytes(inbox.messages[1])
    assert (
        digest_job.run(store, settings, NOW + timedelta(hours=3), send_mail=True).status == "empty"
    )


def test_a_hostile_title_adds_no_header(store: Store, story, smtp) -> None:  # type: ignore[no-untyped-def]
    inbox, settings = smtp
    story([*PARAS, NEW], 10, title="Meta\r\nBcc: x@y\r\nX-Evil: 1")
    digest_job.run(store, settings, NOW + timedelta(hours=1), send_mail=True)
    [msg] = inbox.messages
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert header_safe("a\r\nBcc: x@y\u202e\x00") == "a Bcc: x@y"


def test_dry_run_marks_nothing_and_writes_files(store: Store, story, smtp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inbox, settings = smtp
    story([*PARAS, NEW], 10)
    result = digest_job.run(
        store, settings, NOW + timedelta(hours=1), send_mail=False, out_dir=tmp_path
    )
    assert result.status == "dry-run" and inbox.messages == []
    eml, html = result.files
    assert eml.suffix == ".eml" and NEW in html.read_text(encoding="utf-8")
    assert email.message_from_bytes(eml.read_bytes())["Subject"]
    assert state.uncovered_ids(store)[0]  # still uncovered
    window = digest_job.run(
        store, settings, NOW + timedelta(hours=1), send_mail=False, since=NOW + timedelta(minutes=5)
    )
    assert window.composed is not None and window.composed.counts["changes"] == 1


@pytest.mark.e2e
@pytest.mark.slow
def test_cli_digest_send_uses_the_environment(store: Store, story, smtp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inbox, settings = smtp
    story([*PARAS, NEW], 10)
    import os
    import sys

    env = {
        **os.environ,
        "CLAIMWATCH_SMTP_HOST": "127.0.0.1",
        "CLAIMWATCH_SMTP_PORT": str(settings.port),
        "CLAIMWATCH_SMTP_TLS": "none",
        "CLAIMWATCH_SMTP_FROM": "d@claimwatch.test",
        "CLAIMWATCH_SMTP_TO": "a@example.test,b@example.test",
        "CLAIMWATCH_SMTP_PASSWORD": "hunter2",
    }
    r = subprocess.run(
        [sys.executable, "-m", "archiver.cli", "--db", store.url, "digest", "--send"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("sent: ") and "hunter2" not in r.stdout + r.stderr
    [msg] = inbox.messages
    assert msg["To"] == "a@example.test, b@example.test"
    r = subprocess.run(
        [sys.executable, "-m", "archiver.cli", "--db", store.url, "digest", "--send"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0 and "nothing sent" in r.stdout and len(inbox.messages) == 1
    r = subprocess.run(
        [sys.executable, "-m", "archiver.cli", "--db", store.url, "digest"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2 and "give --dry-run or --send" in r.stderr


# -- golden renderings ------------------------------------------------------------------


def fixed_data() -> DigestData:
    old_en = "Meta said it would release its next model openly.\nThe lab has about 100 researchers."
    new_en = "Meta said it would not release its next model openly.\nThe lab has about 100 researchers.\nInvestors want returns on $72 billion of spending."
    old_ar = "قالت ميتا إنها ستطلق نموذجها القادم مجانًا.\nيعمل في المختبر نحو 100 باحث."
    new_ar = "قالت ميتا إنها لن تطلق نموذجها القادم مجانًا.\nيعمل في المختبر نحو 100 باحث."
    at = NOW + timedelta(hours=3)
    return DigestData(
        now=NOW + timedelta(days=1),
        since=None,
        story="Meta's <i>free</i> Llama & what ends it",  # the claims file's summary: data
        changes=[
            ChangeItem(
                1,
                "loopback-ledger",
                "http://127.0.0.1/en.html",
                "Meta <b>closes</b> & more",
                1,
                2,
                at,
                diff(old_en, new_en, old_title="Meta opens", new_title="Meta <b>closes</b> & more"),
                new_en,
            ),
            ChangeItem(
                2,
                "arabic-desk",
                "http://127.0.0.1/ar.html",
                "ميتا تغلق نموذجها",
                3,
                4,
                at,
                diff(old_ar, new_ar),
                new_ar,
            ),
        ],
        flags=[
            FlagItem(
                1,
                "meta-ends-open-releases",
                CLAIMS[0].text,
                "supports",
                0.81,
                "Meta said it would not release its next model openly.",
                "loopback-ledger",
                "http://127.0.0.1/en.html",
                "Meta <b>closes</b> & more",
                2,
                at,
            ),
            FlagItem(
                2,
                "meta-ends-open-releases",
                CLAIMS[0].text,
                "supports",
                0.74,
                "قالت ميتا إنها لن تطلق نموذجها القادم مجانًا.",
                "arabic-desk",
                "http://127.0.0.1/ar.html",
                "ميتا تغلق نموذجها",
                4,
                at,
                unsure=True,  # as for a claim without examples (matcher.UNSURE)
            ),
            FlagItem(
                3,
                "open-source-in-name-only",
                CLAIMS[2].text,
                "mentions",
                0.4,
                "The licence changed.",
                "loopback-ledger",
                "http://127.0.0.1/en.html",
                None,
                2,
                at,
            ),
        ],
        coverage=[
            CoverageItem(
                9, "http://127.0.0.1/new.html", "Meta's lab hires again", "search-llama", at
            )
        ],
        failing=[
            FailingItem(
                "investor-news", "http://127.0.0.1/ir", 5, "HTTP 503 from http://127.0.0.1/ir"
            )
        ],
    )


def test_golden_digest(golden) -> None:  # type: ignore[no-untyped-def]
    composed = compose(fixed_data())
    assert (
        composed.subject
        == "[claimwatch] meta-ends-open-releases supports (0.81): Meta <b>closes</b> & more | 2 changes, 2 flags, 1 new article"
    )
    assert (
        "&lt;b&gt;closes&lt;/b&gt; &amp; more" in composed.html
        and "<b>closes</b>" not in composed.html
    )
    assert 'dir="rtl"' in composed.html  # the Arabic evidence and the Arabic change
    assert "The story: Meta's <i>free</i> Llama & what ends it" in composed.text
    assert "Meta&#39;s &lt;i&gt;free&lt;/i&gt; Llama &amp; what ends it" in composed.html
    assert "mentions" not in composed.text  # only evidence for or against
    golden(DATA / "digest.txt", composed.text)
    golden(DATA / "digest.html", composed.html)


def test_with_the_web_views_address_flags_and_changes_link_there() -> None:
    """[web] url: each flag links to its review page, each change to its versions side
    by side (a change item without its source's id gets no link); none without it."""
    data = fixed_data()
    first = replace(data.changes[0], source_id=7)
    data = replace(data, changes=[first, *data.changes[1:]])
    plain = compose(data)
    linked = compose(data, DigestOptions(web_url="https://cw.example.org/desk/"))
    shown = [f for f in data.flags if f.stance in ("supports", "contradicts")]
    assert shown
    for f in shown:
        assert f"    review: https://cw.example.org/desk/flags/{f.id}" in linked.text
        assert f'<a href="https://cw.example.org/desk/flags/{f.id}"' in linked.html
    a, b = first.from_version, first.to_version
    assert f"side by side: https://cw.example.org/desk/sources/7?a={a}&b={b}" in linked.text
    assert f'href="https://cw.example.org/desk/sources/7?a={a}&amp;b={b}"' in linked.html
    assert linked.text.count("side by side: ") == 1
    assert "In the web view: https://cw.example.org/desk/\n" in linked.text
    assert '<a href="https://cw.example.org/desk/" style' in linked.html
    assert "review: " not in plain.text and "cw.example.org" not in plain.html
    assert "side by side" not in plain.text + plain.html
    assert "web view" not in plain.text + plain.html


def test_caps_say_what_was_left_out() -> None:
    data = fixed_data()
    many = replace(data, changes=data.changes * 6, since=NOW)
    composed = compose(many)
    assert composed.left_out["changes"] == 2
    assert (
        "2 more changed source(s)" in composed.text
        and "claimwatch changes --since 2025-07-14T09:00" in composed.text
    )


def test_empty_digest() -> None:
    composed = compose(DigestData(now=NOW, since=None))
    assert composed.empty and composed.subject == "[claimwatch] nothing changed"
    assert "Nothing changed." in composed.text


@pytest.mark.e2e
@pytest.mark.slow
def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    import os

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI (apt-get install chromium)")
        pytest.skip(
            "Chromium is not installed (apt-get install chromium); the HTML render check did not run"
        )
    page = tmp_path / "digest.html"
    page.write_text(compose(fixed_data()).html, encoding="utf-8")
    shot = tmp_path / "digest.png"
    r = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=800,1400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), r.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a real page, not a blank one


def test_a_flag_the_reviewer_added_says_so_instead_of_a_score() -> None:
    """A flag from `flags add` has no matcher score (it is stored as 1.00): the digest
    says a reviewer added it, in the subject, the text and the HTML."""
    data = fixed_data()
    added = replace(data.flags[0], id=9, score=1.0, verdict="confirmed", added=True)
    composed = compose(replace(data, flags=[added, *data.flags[1:]]))
    assert composed.subject.startswith(
        "[claimwatch] meta-ends-open-releases supports (added by a reviewer): "
    )
    assert '  [supports, added by a reviewer] "Meta said it would not' in composed.text
    assert "supports &middot; added by a reviewer</div>" in composed.html
    assert "1.00" not in composed.text and "1.00" not in composed.html
