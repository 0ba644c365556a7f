"""Helpers the tests and benchmarks share; fixtures live in tests/conftest.py.

No test module imports another: what two of them need lives here, in
``tests.support`` (the clock, pages, the CLI runners), ``tests.support.pipeline``
(one check against a loopback page), ``tests.support.records`` (store rows and
revision histories) and ``tests.support.faultserver`` (a hostile HTTP server).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from werkzeug import Request, Response

from store.repo import Store

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
CHROMIUM = "/usr/bin/chromium"
NOW = datetime(2025, 7, 14, 9, 0, tzinfo=UTC)  # the tests' fixed clock

FIRST = [
    "Meta said its superintelligence lab would decide case by case which models to release.",
    "The company did not say whether its next Llama model would ship with open weights.",
]


# A rail dispute told as statements only (never trained on), and its first example.
RAIL_CLAIMS = """version: 2
claims:
  - id: strike-this-week
    statements:
      en: The GDL union is striking nationwide this week, halting passenger and freight trains.
      de: Die GDL bestreikt diese Woche bundesweit den Personen- und Güterverkehr der Bahn.
  - id: shorter-week-on-full-pay
    statements:
      en: The GDL demands a 35-hour week for shift workers with no cut in pay.
  - id: railway-refuses
    statements:
      en: Deutsche Bahn refuses a shorter working week, saying it cannot afford it.
"""
WALKOUT = (
    "Train drivers across Germany walked off the job on Wednesday morning, leaving most "
    "long-distance trains in their depots."
)
EVERYDAY = [
    "Heavy rain is expected across northern Italy this weekend, forecasters said.",
    "Bayern Munich beat Dortmund 3-1 on Saturday to go top of the Bundesliga.",
    "Die Inflation in Deutschland ist im Dezember leicht gestiegen.",
    "Deutsche Bahn reported a loss of 2.4 billion euros for the first half of the year.",
]


def copy_claims(seeds_dir: Path) -> Path:
    """Put the shipped claims file, and the labelled corpus it points to, in ``seeds_dir``."""
    seeds_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEEDS / "claims.yaml", seeds_dir / "claims.yaml")
    shutil.copytree(SEEDS / "corpus", seeds_dir / "corpus", dirs_exist_ok=True)
    return seeds_dir / "claims.yaml"


def claimwatch(
    tmp_path: Path,
    *args: str,
    env: dict[str, str | None] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real command in ``tmp_path`` on the store ``tmp_path/x.db``, with the seeds
    directory ``tmp_path/seeds``; ``env`` adds variables (None: unset one), ``input`` is
    what the command reads on stdin."""
    full_env = {
        **os.environ,
        "CLAIMWATCH_SEEDS": str(tmp_path / "seeds"),
        "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": "1",  # the test servers are on 127.0.0.1
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # claims match's bank files
    }
    full_env.pop("CLAIMWATCH_DB", None)
    for name, value in (env or {}).items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    return subprocess.run(
        [sys.executable, "-m", "archiver.cli", "--db", f"sqlite:///{tmp_path / 'x.db'}", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=full_env,
        timeout=300,
        input=input,
    )


def story_dir(tmp_path: Path, claims: bool = False) -> Path:
    """``tmp_path`` made a story: the shipped seed article, an empty watchlist, and with
    ``claims`` the shipped claims file and its corpus."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name in ("article-ar.txt", "article-ar.meta.yaml"):
        shutil.copy(SEEDS / name, seeds / name)
    (seeds / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
    if claims:
        copy_claims(seeds)
    return tmp_path


class Page:
    def __init__(self, html: str):
        self.html = html
        self.requests: list[dict[str, str]] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(dict(request.headers))
        tag = f'"{len(self.html)}-{abs(hash(self.html))}"'
        if request.headers.get("If-None-Match") == tag:
            return Response(status=304)
        return Response(self.html, content_type="text/html; charset=utf-8", headers={"ETag": tag})


def needs_browser() -> None:
    """Skip without Debian's Chromium or Playwright, with the reason; in CI, fail."""
    reason = None
    if not Path(CHROMIUM).exists():
        reason = "Chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            reason = "Playwright is not installed (pip install 'claimwatch[browser]')"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests must run in CI: {reason}")
        pytest.skip(reason)


def article_html(title: str, paragraphs: list[str], *, lang: str = "en", extra: str = "") -> str:
    """A news page with realistic chrome around the article body."""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title} | The Loopback Ledger</title>
<meta name="author" content="Rana Haddad">
<meta property="article:published_time" content="2025-07-15T08:00:00Z">
<meta property="og:site_name" content="The Loopback Ledger">
<script>window.dataLayer = [];</script></head>
<body><header><nav><a href="/">Home</a> <a href="/tech">Technology</a> <a href="/markets">Markets</a></nav></header>
<div class="ad-slot">Advertisement</div>
<main><article><h1>{title}</h1>{body}</article></main>
<aside><h2>Most read</h2><ul><li><a href="/x">Ten gadgets for summer</a></li></ul></aside>
{extra}
<footer><p>© 2025 The Loopback Ledger. All rights reserved.</p></footer></body></html>"""


def cli(store: Store, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real command on ``store``."""
    return subprocess.run(
        [sys.executable, "-m", "archiver.cli", "--db", store.url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def pool_workers() -> set[int]:
    """This process's spawned pool workers (not multiprocessing's resource tracker)."""
    import psutil

    found = set()
    for p in psutil.Process().children():
        try:  # a worker that has just exited (a zombie until reaped) is not a worker
            line = " ".join(p.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if "spawn_main" in line and "resource_tracker" not in line:
            found.add(p.pid)
    return found


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reset_pg(url: str) -> None:
    """Empty the PostgreSQL database at ``url`` (its public schema, dropped and made again)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
