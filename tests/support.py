"""Helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from werkzeug import Request, Response

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
CHROMIUM = "/usr/bin/chromium"

FIRST = [
    "Meta said its superintelligence lab would decide case by case which models to release.",
    "The company did not say whether its next Llama model would ship with open weights.",
]


def copy_claims(seeds_dir: Path) -> Path:
    """Put the shipped claims file, and the labelled corpus it points to, in ``seeds_dir``."""
    seeds_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEEDS / "claims.yaml", seeds_dir / "claims.yaml")
    shutil.copytree(SEEDS / "corpus", seeds_dir / "corpus", dirs_exist_ok=True)
    return seeds_dir / "claims.yaml"


def claimwatch(
    tmp_path: Path, *args: str, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command in ``tmp_path`` on the store ``tmp_path/x.db``, with the seeds
    directory ``tmp_path/seeds``; ``env`` adds variables (None: unset one)."""
    full_env = {
        **os.environ,
        "CLAIMWATCH_SEEDS": str(tmp_path / "seeds"),
        "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": "1",  # the test servers are on 127.0.0.1
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
