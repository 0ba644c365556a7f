"""Secrets never leave: the database password and the SMTP password appear in no output,
no log line, no error message and nothing the archive stores or exports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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
