"""``status`` tells what needs a look: warnings from the last check of a source, and
workers that stopped beating without saying so."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from archiver import pipeline
from store import leases
from store.models import SourceSpec
from store.repo import Store
from tests.support import NOW, article_html
from tests.support.faultserver import FAST, scripted_server


def _answer(html: str) -> bytes:
    body = html.encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
    return head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body


def status(store: Store) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "archiver.cli", "--db", store.url, "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    return data


@pytest.mark.e2e
@pytest.mark.slow
def test_undecodable_text_is_a_warning_until_a_clean_check(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.migrate()
    options = pipeline.CheckOptions(fetch=FAST, processes=0, claims=())
    garbled = (
        "Meta \ufffd\ufffd\ufffd\ufffd \ufffd\ufffd\ufffd\ufffd\ufffd\ufffd \ufffd\ufffd\ufffd."
    )
    with scripted_server() as (base, answers):
        answers["/p"] = _answer(article_html("Page", [garbled] * 4))
        store.add_source(SourceSpec(url=base + "/p", label="p", robots=False), NOW)
        [result] = pipeline.check(store, store.list_sources(), options, clock=lambda: NOW)
        assert result.outcome == "new_version"
        [capture] = store.captures(store.get_source("p").id)
        assert "could not be decoded" in (capture.error_message or "")
        [warned] = status(store)["warnings"]
        assert warned["source"] == "p" and "charset may be wrong" in warned["warning"]
        answers["/p"] = _answer(article_html("Page", ["Meta said the page now reads well."] * 3))
        later = NOW + timedelta(hours=2)
        pipeline.check(store, store.list_sources(), options, clock=lambda: later)
    assert store.get_source("p").warning is None
    assert status(store)["warnings"] == []


@pytest.mark.e2e
def test_a_worker_that_stopped_beating_is_lost(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.migrate()
    now = datetime.now(UTC)
    leases.heartbeat(store, "gone", "h", 1, now - timedelta(minutes=5), 10)
    leases.heartbeat(store, "alive", "h", 2, now, 3)
    leases.heartbeat(store, "done", "h", 3, now - timedelta(hours=1), 7, status="stopped")
    states = {w["id"]: w["status"] for w in status(store)["workers"]}
    assert states == {"gone": "lost", "alive": "running", "done": "stopped"}
