"""Page text is never markup: every command, on a store whose pages, titles, URLs and
headers hold rich markup, terminal escapes and bidi overrides, exits as usual, prints
those strings literally and emits no escape sequence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from store.models import CaptureRecord, NewVersion, SourceSpec, SourceUpdate
from store.repo import Store
from tests.support import NOW, article_html, claimwatch, copy_claims
from tests.support.faultserver import scripted_server

LINK = "[link=https://evil.example/phish]read more[/link]"
URL_LINK = "[link=https://evil.example/phish]more[/link]"  # a URL holds no space
HOSTILE = f"Meta [/] {LINK} \x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x1b\\x\x1b]8;;\x1b\\ \u202egnp.exe"
CLAIM = f"Meta said it will keep its next frontier model closed and sell access to it {LINK}."


def _answer(body: bytes, ctype: str = "text/html; charset=utf-8; x=[/]") -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\n"
        f"Content-Type: {ctype}\r\n"
        'ETag: "[link=https://evil.example]e[/link]"\r\n'
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _page(paragraphs: list[str]) -> bytes:
    html = article_html(HOSTILE, paragraphs)
    return html.encode("utf-8")


@pytest.mark.e2e
@pytest.mark.slow
def test_every_command_prints_outside_strings_as_text(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
    copy_claims(seeds)
    env: dict[str, str | None] = {"COLUMNS": "1000"}  # rich tables do not wrap a cell across lines

    def run(*args: str) -> tuple[int, str]:
        r = claimwatch(tmp_path, *args, env=env)
        assert "MarkupError" not in r.stderr and "internal error" not in r.stderr, (args, r.stderr)
        return r.returncode, r.stdout

    first = [f"Meta reported {HOSTILE} in its filing to regulators.", "Nothing else changed."]
    with scripted_server() as (base, answers):
        answers["/robots.txt"] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        url = f"{base}/page?q=[/]&l={URL_LINK}"
        answers["/page"] = _answer(_page(first))
        answers["/bad"] = _answer(b"x", ctype=f"application/{LINK}")
        assert run("init")[0] == 0
        assert run("sources", "add", url, "--label", "page")[0] == 0
        assert run("sources", "add", f"{base}/bad?[/]", "--label", "bad")[0] == 0
        assert run("check", "--all")[0] == 1  # /bad fails
        answers["/page"] = _answer(_page([*first, CLAIM, f"A new line: {HOSTILE}."]))
        code, checked = run("check", "--all")
    assert code == 1
    assert "[/]" in checked and LINK in checked  # the source URL and the error, as text

    # A version written through the store API keeps raw escapes and bidi overrides in
    # its title and text (extraction strips them; an importer or a bug might not).
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    raw_id = store.add_source(SourceSpec(url=f"{base}/raw", label="raw"), NOW)
    capture = CaptureRecord(raw_id, NOW, 1, "new_version", 200, headers={"x": HOSTILE})
    update = SourceUpdate(next_check_at=NOW, last_checked_at=NOW, consecutive_failures=3)
    store.add_version(
        NewVersion(text=f"{HOSTILE}\n{CLAIM}", raw=None, title=HOSTILE), capture, update
    )
    store.close()

    outputs = {"check": checked}
    commands: dict[str, tuple[str, ...]] = {
        "sources list": ("sources", "list"),
        "status": ("status",),
        "history": ("history", "page"),
        "history raw": ("history", "raw"),
        "show raw": ("show", "raw"),
        "show": ("show", "page"),
        "diff": ("diff", "page"),
        "diff side-by-side": ("diff", "page", "--format", "side-by-side"),
        "diff unified": ("diff", "page", "--format", "unified"),
        "changes": ("changes",),
        "flags": ("flags",),
        "claims list": ("claims", "list"),
        "claims show": ("claims", "show", "meta-ends-open-releases"),
        "verify": ("verify",),
    }
    for name, args in commands.items():
        code, out = run(*args)
        assert code == 0, name
        outputs[name] = out
    for name, out in outputs.items():
        assert "\x1b" not in out, name
        assert "\u202e" not in out, name
    for name in ("sources list", "history", "show", "diff", "diff side-by-side"):
        assert "[/]" in outputs[name], name
    assert URL_LINK in outputs["sources list"]
    for name in ("history", "show", "diff", "diff side-by-side", "diff unified", "flags"):
        assert LINK in outputs[name], name
    assert "claims show" in outputs and CLAIM in outputs["claims show"]

    # --json keeps every string whole: the escapes are there, JSON-escaped.
    [row] = [json.loads(x) for x in run("history", "raw", "--json")[1].splitlines()]
    assert row["title"] == HOSTILE


@pytest.mark.e2e
@pytest.mark.slow
def test_show_raw_to_a_pipe_keeps_the_bytes(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
    body = _page(["Meta reported its results in a filing to regulators."])
    with scripted_server() as (base, answers):
        answers["/robots.txt"] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        answers["/p"] = _answer(body)
        claimwatch(tmp_path, "init")
        claimwatch(tmp_path, "sources", "add", f"{base}/p", "--label", "p")
        assert claimwatch(tmp_path, "check", "p").returncode == 0
    db = f"sqlite:///{tmp_path / 'x.db'}"
    r = subprocess.run(
        [sys.executable, "-m", "archiver.cli", "--db", db, "show", "p", "--raw"],
        capture_output=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0 and r.stdout == body
