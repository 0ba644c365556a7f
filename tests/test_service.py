"""The service: schedules under an injected clock, leases, signals, and real workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from archiver import pipeline
from archiver.app.claimsfile import load_claims
from archiver.app.schedule import next_cron
from archiver.claims.rules import claim_to_dict
from archiver.net.fetch import FetchOptions
from jobs.service import Service, ServiceOptions
from store import leases
from store.models import SourceSpec
from store.repo import Store
from store.schema import captures, sources, versions
from tests.support import NOW, article_html

PAGE = article_html(
    "A page", ["Meta said the model would stay as it is for now.", "Nothing else changed today."]
)
FAST = FetchOptions(allow_private=True, host_delay=0, per_host=32, concurrency=32, max_attempts=1)


def serve_pages(httpserver: HTTPServer, delay: float = 0.0) -> None:
    def handler(_request: Request) -> Response:
        if delay:
            time.sleep(delay)
        return Response(PAGE, content_type="text/html")

    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/slow", method="GET").respond_with_handler(handler)
    for i in range(400):
        httpserver.expect_request(f"/s{i}.html").respond_with_handler(handler)


@pytest.mark.slow
def test_a_simulated_day_of_mixed_schedules_with_downtime(
    sqlite_store: Store, httpserver: HTTPServer
) -> None:
    store = sqlite_store
    serve_pages(httpserver)
    kinds = [
        ("every", 600),
        ("every", 1200),
        ("every", 1800),
        ("every", 3600),
        ("cron", "*/15 * * * *"),
        ("cron", "0 * * * *"),
    ]
    for i in range(50):
        _, value = kinds[i % len(kinds)]
        spec = SourceSpec(
            url=httpserver.url_for(f"/s{i}.html"),
            label=f"s{i}",
            interval_seconds=value if isinstance(value, int) else None,
            cron=value if isinstance(value, str) else None,
        )
        store.add_source(spec, NOW)
    clock = {"now": NOW}
    service = Service(
        store,
        ServiceOptions(worker_id="sim", tick=60, lease=300, jitter=0, digest_cron=None),
        pipeline.CheckOptions(fetch=FAST, processes=0, claims=()),
        clock=lambda: clock["now"],
    )
    down = (NOW + timedelta(hours=8), NOW + timedelta(hours=10))
    minute = 0
    while minute <= 24 * 60:
        clock["now"] = NOW + timedelta(minutes=minute)
        if not (down[0] <= clock["now"] < down[1]):
            service.dispatch()
        minute += 1
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(captures.c.source_id, captures.c.started_at, captures.c.outcome)
        ).all()
    seen: dict[int, list] = defaultdict(list)
    for sid, at, outcome in rows:
        assert outcome != "failed"
        seen[sid].append(at)
    for s in store.list_sources():
        expected, at = [], NOW
        while at <= NOW + timedelta(hours=24):
            if down[0] <= at < down[1]:
                at = down[1]  # one catch-up check at the first tick after the downtime
            expected.append(at)
            at = (
                next_cron(s.cron, at) if s.cron else at + timedelta(seconds=s.interval_seconds or 0)
            )
        assert sorted(seen[s.id]) == expected, s.name
    assert not leases.backlog(store, NOW + timedelta(hours=24)).leased


def test_scheduler_jobs_and_the_digest_cron(sqlite_store: Store) -> None:
    service = Service(
        sqlite_store,
        ServiceOptions(worker_id="w", tick=5, digest_cron="0 7 * * *", timezone="Europe/Berlin"),
        pipeline.CheckOptions(fetch=FAST, processes=0, claims=()),
    )
    sched = service.scheduler()
    jobs = {job.id: job for job in sched.get_jobs()}
    assert set(jobs) == {"dispatch", "heartbeat", "digest"}
    assert jobs["dispatch"].max_instances == 1 and jobs["dispatch"].coalesce
    assert jobs["digest"].misfire_grace_time is None
    fire = jobs["digest"].trigger.get_next_fire_time(None, NOW)  # NOW is 09:00 UTC on 14 July
    assert (fire.hour, fire.day, str(fire.tzinfo)) == (7, 15, "Europe/Berlin")
    assert service.digest() == "skipped"  # no recipients configured


def _claimwatch(db: str, *args: str, env: dict[str, str] | None = None, log: Path | None = None):  # type: ignore[no-untyped-def]
    """Start claimwatch. A long-running one writes to ``log``: a pipe nobody reads fills up."""
    full = {**os.environ, "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": "1", **(env or {})}
    full.pop("CLAIMWATCH_DB", None)
    out = open(log, "w") if log else subprocess.PIPE  # noqa: SIM115
    command = [sys.executable, "-m", "archiver.cli", "--db", db, *args]
    return subprocess.Popen(command, env=full, stdout=out, stderr=out, text=True)


def _config(tmp_path: Path, **service: object) -> dict[str, str]:
    lines = ["[service]"] + [
        f"{k} = {json.dumps(v)}"
        for k, v in {"host_delay": 0, "per_host": 32, "jitter": 0, **service}.items()
    ]
    path = tmp_path / "claimwatch.toml"
    path.write_text("\n".join(lines) + '\n[digest]\ncron = "0 7 * * *"\n', encoding="utf-8")
    return {"CLAIMWATCH_CONFIG": str(path)}


def _wait(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.e2e
@pytest.mark.slow
def test_second_serve_on_one_sqlite_file_exits_2(sqlite_store: Store, tmp_path: Path) -> None:
    env = _config(tmp_path, tick=1)
    first = _claimwatch(sqlite_store.url, "serve", "--worker-id", "one", env=env)
    try:
        assert _wait(lambda: leases.list_workers(sqlite_store), 30), (
            first.stderr.read() if first.poll() is not None else ""
        )
        second = _claimwatch(sqlite_store.url, "serve", env=env)
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 2
        assert "another claimwatch serve (pid" in err and "use PostgreSQL" in err
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0
    [worker] = leases.list_workers(sqlite_store)
    assert worker["status"] == "stopped"


@pytest.mark.e2e
@pytest.mark.slow
def test_sigterm_in_a_busy_cycle_exits_cleanly(
    sqlite_store: Store, httpserver: HTTPServer, tmp_path: Path
) -> None:
    store = sqlite_store
    serve_pages(httpserver, delay=0.7)
    for i in range(60):
        store.add_source(
            SourceSpec(url=httpserver.url_for(f"/s{i}.html"), label=f"s{i}", interval_seconds=3600),
            NOW,
        )
    proc = _claimwatch(
        store.url,
        "serve",
        "--worker-id",
        "busy",
        "--concurrency",
        "8",
        env=_config(tmp_path, tick=1),
    )
    assert _wait(lambda: leases.backlog(store, datetime.now(UTC)).leased > 0, 30)
    time.sleep(1.0)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert time.monotonic() - started < 10
    with store.engine.connect() as conn:
        assert (
            conn.execute(select(sources.c.id).where(sources.c.lease_owner.is_not(None))).all() == []
        )
        made = (
            conn.execute(select(captures.c.version_id).where(captures.c.outcome == "new_version"))
            .scalars()
            .all()
        )
        stored = conn.execute(select(versions.c.id)).scalars().all()
    assert sorted(made) == sorted(stored)  # every version has its capture, and the reverse
    for s in store.list_sources():
        for v in store.versions(s.id):
            assert store.read_text(v)  # every acknowledged version reads back


@pytest.mark.e2e
@pytest.mark.slow
def test_serve_once_exit_codes(sqlite_store: Store, httpserver: HTTPServer, tmp_path: Path) -> None:
    env = _config(tmp_path)
    empty = _claimwatch(sqlite_store.url, "serve", "--once", env=env, log=tmp_path / "once1.log")
    assert empty.wait(timeout=60) == 0
    serve_pages(httpserver)
    httpserver.expect_request("/broken").respond_with_data("no", status=500)
    sqlite_store.add_source(SourceSpec(url=httpserver.url_for("/s1.html"), label="ok"), NOW)
    sqlite_store.add_source(SourceSpec(url=httpserver.url_for("/broken"), label="broken"), NOW)
    failing = _claimwatch(sqlite_store.url, "serve", "--once", env=env, log=tmp_path / "once2.log")
    assert failing.wait(timeout=120) == 1
    assert sqlite_store.get_source("ok").last_checked_at is not None


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_on_postgresql_share_the_work(
    pg_server: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    from tests.support import reset_pg

    reset_pg(pg_server)
    store = Store(pg_server)
    store.migrate()
    serve_pages(httpserver)

    start = datetime.now(UTC)
    for i in range(300):
        store.add_source(
            SourceSpec(url=httpserver.url_for(f"/s{i}.html"), label=f"s{i}", interval_seconds=10),
            start,
        )
    env = _config(tmp_path, tick=1, lease=10, concurrency=64)
    a = _claimwatch(pg_server, "serve", "--worker-id", "a", env=env, log=tmp_path / "a.log")
    b = _claimwatch(pg_server, "serve", "--worker-id", "b", env=env, log=tmp_path / "b.log")
    try:
        time.sleep(35)
        b.send_signal(signal.SIGKILL)  # dies holding leases
        b.wait(timeout=10)
        killed_at = datetime.now(UTC)
        time.sleep(25)
    finally:
        a.send_signal(signal.SIGTERM)
        assert a.wait(timeout=20) == 0
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(captures.c.source_id, captures.c.started_at, captures.c.outcome)
        ).all()
    by_source: dict[int, list] = defaultdict(list)
    for sid, at, outcome in rows:
        assert outcome != "failed"
        by_source[sid].append(at)
    assert len(by_source) == 300
    tick, lease, window = 1.0, 10.0, 10.0
    for times in by_source.values():
        times.sort()
        gaps = [(b2 - a2).total_seconds() for a2, b2 in pairwise(times)]
        assert min(gaps) >= window - 0.5  # never twice in one due window
        assert (
            max(gaps) <= window + tick + lease + 5
        )  # none missed by more than a tick plus the lease
    # Every source, the killed worker's leased ones included, was checked again after
    # its lease ran out, by the surviving worker.
    late = killed_at + timedelta(seconds=lease + 3)
    assert all(max(times) > late for times in by_source.values())
    store.close()


@pytest.mark.e2e
@pytest.mark.slow
def test_sighup_reloads_the_seeds(sqlite_store: Store, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
    claims = "version: 2\nclaims:\n  - id: harbour-open\n    statements:\n      en: The harbour is open.\n"
    (tmp_path / "first.yaml").write_text(claims, encoding="utf-8")
    loaded = load_claims(tmp_path / "first.yaml")
    sqlite_store.load_claims([claim_to_dict(c) for c in loaded], NOW)
    env = {**_config(tmp_path, tick=1, seeds=str(seeds), workers=1)}
    proc = _claimwatch(
        sqlite_store.url, "serve", "--worker-id", "hup", env=env, log=tmp_path / "hup.log"
    )
    try:
        assert _wait(lambda: leases.list_workers(sqlite_store), 30)
        (seeds / "sources.yaml").write_text(
            "sources:\n  - url: http://127.0.0.1:9/added-on-reload\n    label: added\n    every: 1d\n",
            encoding="utf-8",
        )
        _config(tmp_path, tick=1, seeds=str(seeds), workers=2)  # and the config changes
        claims += "  - id: ferry-runs\n    statements:\n      en: The ferry runs again.\n"
        (seeds / "claims.yaml").write_text(claims, encoding="utf-8")  # and a claim is added
        proc.send_signal(signal.SIGHUP)
        assert _wait(lambda: any(s.label == "added" for s in sqlite_store.list_sources()), 30), (
            tmp_path / "hup.log"
        ).read_text()
        # The scan runs in its own thread: stopping before it ends would only warn.
        assert _wait(lambda: "ferry-runs: 0 texts" in (tmp_path / "hup.log").read_text(), 30)
        assert proc.poll() is None  # still serving
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    log = (tmp_path / "hup.log").read_text()
    assert "SIGHUP: reloading" in log
    assert "SIGHUP: 2 extraction workers from the next dispatch" in log
    assert "SIGHUP: claims new: ferry-runs: scanning the archive for them" in log
    assert "scan for claims ferry-runs: 0 texts read, 0 new flags" in log


FERRY = """version: 2
entities:
  Ferry: [ferry]
claims:
  - id: harbour-open
    statements:
      en: The harbour is open.
"""
FERRY_RUNS = """  - id: ferry-runs
    statements:
      en: The ferry runs again.
    actors: [Ferry]
    terms: [islands, crossing]
    supports: [runs again, resumed]
"""


@pytest.mark.e2e
@pytest.mark.parametrize("scan_on_reload", [True, False], ids=["scan", "no-scan"])
def test_claims_a_reload_brings_meet_the_archive(
    store: Store, httpserver: HTTPServer, tmp_path: Path, scan_on_reload: bool
) -> None:
    """A check matches only new text, so a claim added on SIGHUP never met the pages
    already archived: the log said to run 'flags scan'. serve now runs that scan itself,
    for the new claim only, beside the checks (unless matching.scan_on_reload is off)."""
    from archiver.app.story import import_seeds, load_seeds

    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    text = ["After a week of storms the ferry runs again between the two islands, its "
            "operator said on Monday.", "Crossings take forty minutes."]  # fmt: skip
    httpserver.expect_request("/ferry.html").respond_with_data(
        article_html("Ferry back after the storms", text), content_type="text/html"
    )
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
    (seeds / "claims.yaml").write_text(FERRY, encoding="utf-8")
    import_seeds(store, load_seeds(seeds), NOW)
    store.add_source(SourceSpec(url=httpserver.url_for("/ferry.html"), label="ferry"), NOW)
    service = Service(
        store,
        ServiceOptions(worker_id="s", jitter=0, digest_cron=None, seeds=seeds,
                       scan_on_reload=scan_on_reload),
        pipeline.CheckOptions(fetch=FAST, processes=0),
        clock=lambda: NOW,
    )  # fmt: skip
    try:
        [checked] = service.dispatch()
        assert checked.outcome == "new_version" and checked.flags == 0
        (seeds / "claims.yaml").write_text(FERRY + FERRY_RUNS, encoding="utf-8")
        service._reload()  # what SIGHUP does
        if scan_on_reload:
            assert _wait(lambda: store.flags(), 30)
            [flag] = store.flags()
            assert (flag.claim_id, flag.stance, flag.source_name) == (
                "ferry-runs",
                "supports",
                "ferry",
            )
            assert flag.reasons[0].startswith("archive scan")
            assert _wait(lambda: not service._scanning.locked(), 30)
            service._to_scan.add("ferry-runs")
            service.scan_claims()  # a second scan finds the flag already there
            assert len(store.flags()) == 1
        else:  # nothing waits to be scanned, and no thread was started to scan it
            assert not service._to_scan and not service._scanning.locked()
            assert store.flags() == []
    finally:
        service.close()


def test_a_scan_that_had_not_started_at_shutdown_is_named(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM right after a SIGHUP that added claims: the scan thread has not taken
    them yet. Shutdown takes them instead and says what to run, and the thread then
    finds nothing to do."""
    service = Service(
        sqlite_store,
        ServiceOptions(worker_id="t", jitter=0, digest_cron=None),
        pipeline.CheckOptions(fetch=FAST, processes=0, claims=()),
        clock=lambda: NOW,
    )
    try:
        service._to_scan.update({"ferry-runs", "harbour-open"})
        service.stopping.set()
        with caplog.at_level("WARNING", logger="claimwatch.serve"):
            service._end_scans()
            service.scan_claims()  # the thread, late: nothing is left to scan
        [line] = [r.getMessage() for r in caplog.records]
        assert line == (
            "scan for claims ferry-runs, harbour-open: not run before shutdown; "
            "'claimwatch flags scan' matches the archive against them"
        )
        assert not service._to_scan and not service._scanning.locked()
    finally:
        service.close()


@pytest.mark.e2e
def test_metrics_are_served_in_prometheus_format(
    sqlite_store: Store, httpserver: HTTPServer
) -> None:
    import socket

    import httpx

    from jobs.metrics import Metrics

    serve_pages(httpserver)
    sqlite_store.add_source(SourceSpec(url=httpserver.url_for("/s1.html"), label="m1"), NOW)
    metrics = Metrics()
    service = Service(
        sqlite_store,
        ServiceOptions(worker_id="m", jitter=0, digest_cron=None),
        pipeline.CheckOptions(fetch=FAST, processes=0, claims=()),
        clock=lambda: NOW,
        metrics=metrics,
    )
    service.dispatch()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    metrics.serve(port)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'claimwatch_checks_total{outcome="new_version"} 1.0' in text
    assert "claimwatch_versions_created_total 1.0" in text
    assert "claimwatch_fetch_seconds_count 1.0" in text
    assert "claimwatch_flags_created_total 0.0" in text
    assert "claimwatch_backlog 0.0" in text


@pytest.mark.e2e
@pytest.mark.slow
def test_a_bad_reload_keeps_serving_and_json_logs_stay_json(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """D6, D7: a malformed seeds file or config on SIGHUP logs one line and keeps the old
    settings; with --log-format json every stderr line is a JSON object."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
    env = {**_config(tmp_path, tick=1, seeds=str(seeds))}
    log = tmp_path / "hup.log"
    proc = _claimwatch(
        sqlite_store.url, "serve", "--worker-id", "hup", "--log-format", "json", env=env, log=log
    )
    try:
        assert _wait(lambda: leases.list_workers(sqlite_store), 30)
        (seeds / "sources.yaml").write_text("sources: [\n  - url: {unclosed\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        assert _wait(lambda: "reload failed" in log.read_text(), 30), log.read_text()
        config = Path(env["CLAIMWATCH_CONFIG"])
        config.write_text(config.read_text() + "\n[service]\nnonsense = 1\n", encoding="utf-8")
        (seeds / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        assert _wait(lambda: log.read_text().count("reload failed") == 2, 30), log.read_text()
        time.sleep(1.5)
        assert proc.poll() is None  # still serving
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is JSON
    failed = [r for r in records if "reload failed" in r["message"]]
    assert len(failed) == 2 and all(r["level"] == "error" for r in failed)
    assert "sources.yaml" in failed[0]["message"]
    assert any(r["message"].startswith("worker hup stopped") for r in records)
