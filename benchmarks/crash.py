"""Kill claimwatch with SIGKILL at random points and prove nothing was lost.

Usage: python benchmarks/crash.py [--db sqlite|postgresql|both] [--runs 50]
                                  [--sources 30] [--seed 1]

A loopback server serves SOURCES pages; half of them change on every request,
so nearly every check writes a version. Each run starts ``claimwatch check
--all --json`` or ``claimwatch serve`` (alternately) on one store and sends
SIGKILL after a random 0.3-3 s: during start-up, a fetch, an extraction or a
commit. After every kill:

* ``verify`` finds no problem (blobs, delta chains, references, numbering);
* every version the killed process had acknowledged (printed after its commit)
  is in the store;
* no source has two versions with the same text (no check stored twice);
* no source is stuck leased: once the lease time has passed, every leased
  source can be claimed again.

A last clean ``check --all`` must then succeed. The figures go to
docs/reliability.md; tests/test_crash.py runs a few kills of each kind in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, ClassVar

import psutil
from sqlalchemy import insert, select

from store import leases
from store.models import SourceSpec
from store.repo import Store
from store.schema import sources, versions

PG_ADMIN_URL = os.environ.get("CLAIMWATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LEASE = 30  # seconds, as configured for the killed processes


class _Pages(BaseHTTPRequestHandler):
    hits: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def do_GET(self) -> None:
        if self.path == "/robots.txt":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with self.lock:
            n = self.hits[self.path] = self.hits.get(self.path, 0) + 1
        page = int(self.path.strip("/p") or 0)
        revision = n if page % 2 == 0 else 0  # even pages change on every request
        body = (
            f"<html><head><title>Page {page}</title></head><body><nav>Home</nav><article>"
            f"<h1>Page {page}</h1><p>Meta raised its spending forecast for data centres "
            f"again, in revision {revision} of this report on page {page}.</p>"
            f"<p>Analysts expected the figure to keep growing through the year.</p>"
            f"</article><footer>served {time.time():.6f}</footer></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def page_server(handler: type[BaseHTTPRequestHandler] = _Pages) -> Iterator[str]:
    """A threaded loopback server for ``handler`` (also used by benchmarks/load.py)."""
    ThreadingHTTPServer.request_queue_size = 1024  # a burst of connections is the point
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'crash.db'}"
        return
    import psycopg

    name = f"claimwatch_crash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bulk_sources(
    store: Store, urls: list[str], kind: str, intervals: list[int], now: datetime
) -> None:
    """Add thousands of sources in one INSERT (the load and cycle benchmarks start so)."""
    rows = [
        {
            "url": url,
            "kind": kind,
            "tags": [],
            "origin": "user",
            "options": {"ignore": [], "robots": True},
            "interval_seconds": every,
            "next_check_at": now,
            "created_at": now,
            "consecutive_failures": 0,
        }
        for url, every in zip(urls, intervals, strict=True)
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(sources), rows)


@dataclass
class CrashReport:
    db: str
    runs: int = 0
    kills: int = 0  # runs still going when SIGKILL came
    acknowledged: int = 0  # versions the killed processes reported as stored
    versions: int = 0  # versions in the store at the end, all verified
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    leased: int = 0  # sources a killed process left leased (each must be claimable again)
    orphans: int = 0  # processes (extraction workers) still alive 5 s after a kill
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.db}: {self.runs} runs, {self.kills} killed mid-run, "
            f"{self.acknowledged} acknowledged versions, {self.versions} versions verified, "
            f"{self.lost} lost, {self.duplicated} duplicated, {self.leased} left leased, "
            f"{self.stuck} stuck, {self.orphans} orphaned processes, "
            f"{len(self.problems)} verify problems"
        )


def _acknowledged(command: str, stdout: str, stderr: str) -> set[tuple[int, int]]:
    """(source id, version) pairs the process said it had stored."""
    found = set()
    lines = stdout.splitlines() if command == "check" else stderr.splitlines()
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a half-written last line, or plain text
        if row.get("outcome") == "new_version" and row.get("version"):
            found.add((int(row["source"]), int(row["version"])))
    return found


def _inspect(store: Store, acked: set[tuple[int, int]], report: CrashReport) -> None:
    report.problems += [p.line() for p in store.verify()]
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(versions.c.source_id, versions.c.number, versions.c.text_digest)
        ).all()
        leased = conn.execute(
            select(sources.c.id, sources.c.lease_until).where(sources.c.lease_owner.is_not(None))
        ).all()
    have = {(sid, n) for sid, n, _ in rows}
    report.lost += len(acked - have)
    texts = [(sid, digest) for sid, _, digest in rows]
    report.duplicated += len(texts) - len(set(texts))
    report.leased += len(leased)
    if leased:
        later = datetime.now(UTC) + timedelta(seconds=LEASE + 1)
        claimed = leases.claim(store, "crash-probe", later, 1, 10**6)
        free = {s.id for s in claimed.sources}
        report.stuck += sum(1 for sid, _ in leased if sid not in free)
        leases.release(store, "crash-probe", later)


def _wait_for_output(proc: subprocess.Popen[bytes], *files: IO[bytes], limit: float) -> None:
    """Until the process has written something to one of ``files``, or has exited."""
    deadline = time.monotonic() + limit
    while proc.poll() is None and time.monotonic() < deadline:
        if any(os.fstat(f.fileno()).st_size > 0 for f in files):
            return
        time.sleep(0.01)


def run_crashes(
    kind: str, runs: int, n_sources: int = 30, seed: int = 1, workdir: Path | None = None
) -> CrashReport:
    rng = random.Random(seed)
    report = CrashReport(kind)
    with (
        tempfile.TemporaryDirectory() as tmp,
        page_server() as base,
        database(kind, Path(workdir or tmp)) as url,
    ):
        config = Path(tmp) / "claimwatch.toml"
        config.write_text(
            f"[service]\ntick = 0.2\nlease = {LEASE}\njitter = 0\nconcurrency = 8\n"
            "per_host = 8\nhost_delay = 0\n[digest]\ncron = '0 0 1 1 *'\n",
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "CLAIMWATCH_DB": url,
            "CLAIMWATCH_CONFIG": str(config),
            "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": "1",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("CLAIMWATCH_SEEDS", None)
        store = Store(url)
        store.migrate()
        now = datetime.now(UTC)
        for i in range(n_sources):
            store.add_source(SourceSpec(url=f"{base}/p{i}", interval_seconds=1), now)
        for run in range(runs):
            command = "check" if run % 2 == 0 else "serve"
            args = (
                ["check", "--all", "--json"]
                if command == "check"
                else ["serve", "--log-format", "json"]
            )
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "archiver.cli", *args],
                    stdout=out,
                    stderr=err,
                    env=env,
                    cwd=tmp,
                )
                killed = False
                family: list[psutil.Process] = []
                try:
                    # The kill lands a random time after the run has started its work
                    # (its first output), never during the imports, however busy the
                    # machine.
                    _wait_for_output(proc, out, err, limit=120)
                    proc.wait(timeout=rng.uniform(0.05, 2.0))
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(psutil.Error):
                        family = psutil.Process(proc.pid).children(recursive=True)
                    proc.send_signal(signal.SIGKILL)
                    killed = True
                    report.kills += 1
                proc.wait()
                _gone, alive = psutil.wait_procs(family, timeout=5)
                report.orphans += len(alive)
                for p in alive:
                    with contextlib.suppress(psutil.Error):
                        p.kill()
                out.seek(0)
                err.seek(0)
                stdout = out.read().decode("utf-8", "replace")
                stderr = err.read().decode("utf-8", "replace")
            if not killed and proc.returncode != 0:
                report.problems.append(
                    f"run {run}: {command} exited {proc.returncode} on its own: {stderr[-300:]}"
                )
            acked = _acknowledged(command, stdout, stderr)
            report.runs += 1
            report.acknowledged += len(acked)
            _inspect(store, acked, report)
        final = subprocess.run(
            [sys.executable, "-m", "archiver.cli", "check", "--all"],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if final.returncode != 0:
            report.problems.append(f"final check exited {final.returncode}: {final.stderr[-500:]}")
        report.problems += [p.line() for p in store.verify()]
        with store.engine.connect() as conn:
            report.versions = len(conn.execute(select(versions.c.id)).all())
        store.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--sources", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    failed = False
    for kind in kinds:
        started = time.monotonic()
        report = run_crashes(kind, args.runs, args.sources, args.seed)
        print(f"{report.line()} ({time.monotonic() - started:.0f} s)")
        for problem in report.problems[:20]:
            print("  ", problem)
        failed |= bool(
            report.lost or report.duplicated or report.stuck or report.orphans or report.problems
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
