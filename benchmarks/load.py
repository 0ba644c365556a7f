"""Two workers on PostgreSQL, thousands of sources, minutes of simulated time.

Usage: python benchmarks/load.py [--sources 5000] [--minutes 10] [--tick 5]

Two ``Service`` workers, each with its own ``Store`` (so its own connection
pool), lease and check the sources of one PostgreSQL database. They run in two
threads and share a simulated clock: at each tick both dispatch at once, and
the clock moves on only when both are done. The sources' intervals are 1, 2, 5
and 10 minutes; a loopback server serves their pages, one in ten of which
changes every few requests.

It reports, and exits 1 unless all hold:

* every source was checked exactly at each of its due times (none missed, none
  twice within its window);
* memory is flat: resident memory after the first simulated minute and at the
  end, and the growth between them;
* the connection pools never ran out: the most connections either worker had
  checked out at once, against its pool's limit.

Results are recorded in docs/reliability.md; tests/test_load.py runs a small
version in CI.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import psutil
from sqlalchemy import event, select

from archiver import pipeline
from archiver.net.fetch import FetchOptions
from jobs.service import Service, ServiceOptions
from store.repo import Store
from store.schema import captures, sources

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.crash import bulk_sources, database, page_server

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
INTERVALS = (60, 120, 300, 600)


class _Pages(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: ClassVar[dict[str, int]] = defaultdict(int)

    def do_GET(self) -> None:
        if self.path == "/robots.txt":
            body, status = b"", 404
        else:
            self.hits[self.path] += 1
            n = int(self.path.strip("/p") or 0)
            revision = self.hits[self.path] // 3 if n % 10 == 0 else 0
            body = (
                f"<html><head><title>P{n}</title></head><body><article><h1>Page {n}</h1>"
                f"<p>Meta said on Monday that its spending plans for page {n} were unchanged "
                f"in revision {revision}.</p><p>Nothing else is known about it yet.</p>"
                "</article></body></html>"
            ).encode()
            status = 200
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class LoadReport:
    sources: int
    minutes: float
    checks: int = 0
    missed: int = 0  # due times with no check
    doubled: int = 0  # checks within a source's window of the previous one
    failed: int = 0
    rss_mb: list[float] = field(default_factory=list)  # after each simulated minute
    peak_connections: dict[str, int] = field(default_factory=dict)
    pool_limit: int = 0
    wall_s: float = 0.0

    @property
    def growth_mb(self) -> float:
        return self.rss_mb[-1] - self.rss_mb[0] if len(self.rss_mb) > 1 else 0.0

    def ok(self, max_growth_mb: float = 40.0) -> bool:
        return (
            self.missed == 0
            and self.doubled == 0
            and self.failed == 0
            and self.growth_mb <= max_growth_mb
            and max(self.peak_connections.values()) < self.pool_limit
        )

    def line(self) -> str:
        return (
            f"{self.sources} sources, {self.minutes:g} simulated min, {self.checks} checks in "
            f"{self.wall_s:.0f} s wall; missed {self.missed}, twice {self.doubled}, failed "
            f"{self.failed}; RSS (with workers) {self.rss_mb[0]:.0f} -> {self.rss_mb[-1]:.0f} MB "
            f"(growth {self.growth_mb:+.1f} MB); peak connections "
            f"{self.peak_connections} of {self.pool_limit} per pool"
        )


def _track_connections(store: Store, name: str, peaks: dict[str, int]) -> None:
    state = {"out": 0}
    peaks[name] = 0

    @event.listens_for(store.engine, "checkout")
    def _out(*_args: Any) -> None:
        state["out"] += 1
        peaks[name] = max(peaks[name], state["out"])

    @event.listens_for(store.engine, "checkin")
    def _in(*_args: Any) -> None:
        state["out"] -= 1


def _rss(process: psutil.Process) -> int:
    """This process and its extraction workers (and their fork server)."""
    family = [process, *process.children(recursive=True)]
    total = 0
    for p in family:
        with suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def run_load(url: str, n_sources: int, minutes: float, tick: int = 5) -> LoadReport:
    report = LoadReport(n_sources, minutes)
    store = Store(url)
    store.migrate()
    with page_server(_Pages) as base:
        urls = [f"{base}/p{i}" for i in range(n_sources)]
        every = [INTERVALS[i % len(INTERVALS)] for i in range(n_sources)]
        bulk_sources(store, urls, "page", every, START)
        clock = {"now": START}
        fetch = FetchOptions(
            allow_private=True, host_delay=0, per_host=64, concurrency=64, max_attempts=1
        )
        workers = []
        for name in ("w1", "w2"):
            own = Store(url)
            _track_connections(own, name, report.peak_connections)
            workers.append(
                Service(
                    own,
                    ServiceOptions(worker_id=name, tick=tick, lease=120, jitter=0, batch=200),
                    pipeline.CheckOptions(fetch=fetch, claims=()),
                    clock=lambda: clock["now"],
                )
            )
        report.pool_limit = workers[0].store.engine.pool.size() + 10  # type: ignore[attr-defined]  # pool_size + max_overflow
        process = psutil.Process(os.getpid())
        started = time.monotonic()
        steps = int(minutes * 60 / tick)
        for step in range(steps + 1):
            clock["now"] = START + timedelta(seconds=step * tick)
            threads = [threading.Thread(target=w.dispatch) for w in workers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if step and (step * tick) % 60 == 0:
                report.rss_mb.append(_rss(process) / 2**20)
        report.wall_s = time.monotonic() - started
        for w in workers:
            w.close()
            w.store.close()
    _judge(store, report, START + timedelta(seconds=steps * tick))
    store.close()
    return report


def _judge(store: Store, report: LoadReport, end: datetime) -> None:
    with store.engine.connect() as conn:
        interval = dict(conn.execute(select(sources.c.id, sources.c.interval_seconds)).all())
        rows = conn.execute(
            select(captures.c.source_id, captures.c.started_at, captures.c.outcome)
        ).all()
    seen: dict[int, list[datetime]] = defaultdict(list)
    for sid, at, outcome in rows:
        seen[sid].append(at)
        report.failed += outcome == "failed"
    report.checks = len(rows)
    for sid, every in interval.items():
        due, expected = START, []
        while due <= end:
            expected.append(due)
            due += timedelta(seconds=every)
        got = sorted(seen.get(sid, []))
        report.missed += len(set(expected) - set(got))
        report.doubled += len(got) - len(set(got)) + len(set(got) - set(expected))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=5000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--tick", type=int, default=5)
    args = parser.parse_args()
    with database("postgresql", Path(".")) as url:
        report = run_load(url, args.sources, args.minutes, args.tick)
    print(report.line())
    print("RSS by simulated minute (MB):", " ".join(f"{x:.0f}" for x in report.rss_mb))
    sys.exit(0 if report.ok() else 1)


if __name__ == "__main__":
    main()
