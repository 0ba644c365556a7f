"""A million sources on one PostgreSQL: the claim, status, listings and start-up, with
the project's own claim and spreading code and no fetching.

Usage: python benchmarks/million.py [--sources 1000000] [--changes 250000]
       [--claims 40000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Creates a database of its own (dropped at the end), fills it with SQL, ANALYZEs,
then measures:
* the claim: 4 claimer threads taking batches of 64 until --claims are leased,
  clean; with 10% of rows held by crashed workers' unexpired leases; and while
  another connection holds one long REPEATABLE READ snapshot open;
* ``status``, ``sources list --json | head -1`` and ``changes --json | head -1``
  as a user runs them (wall time and peak RSS of the process);
* start-up spreading of 50,000 overdue sources (``leases.spread_overdue``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import psycopg
from sqlalchemy import text

from store import leases
from store.repo import Store

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def fill(store: Store, n_sources: int, n_changes: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sources (url, kind, tags, origin, options, consecutive_failures,"
                " created_at, next_check_at, interval_seconds)"
                " SELECT 'https://site' || (g % 5000) || '.example/p/' || g, 'page', '[]', 'user',"
                " '{}', 0, :now, :now - (g % 3600) * interval '1 second', 3600"
                " FROM generate_series(1, :n) g"
            ),
            {"now": NOW, "n": n_sources},
        )
        conn.execute(
            text(
                "INSERT INTO blobs (digest, size, stored_size, codec, depth, data)"
                " VALUES (repeat('a', 64), 1, 1, 'zstd', 0, '\\x00')"
            )
        )
        for number in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO versions (source_id, number, captured_at, text_digest,"
                    " text_length, authors) SELECT g, :num, :now, repeat('a', 64), 1, '[]'"
                    " FROM generate_series(1, :n) g"
                ),
                {"num": number, "now": NOW, "n": n_changes},
            )
        conn.execute(
            text(
                "INSERT INTO changes (source_id, from_version_id, to_version_id, kind, created_at,"
                " significance, summary, reasons, stats, units)"
                " SELECT v1.source_id, v1.id, v2.id, 'edit', :now - (v1.source_id % 86400)"
                " * interval '1 second', 0.5, 'sentences 1 modified', '[]', '{}',"
                ' (\'[\' || repeat(\'{"kind": "modified", "old": "x"},\', 40) || \'{}]\')::json'
                " FROM versions v1 JOIN versions v2 ON v2.source_id = v1.source_id"
                " AND v2.number = 2 WHERE v1.number = 1"
            ),
            {"now": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO captures (source_id, started_at, duration_ms, outcome, attempts)"
                " SELECT g, :now, 10, CASE WHEN g % 50 = 0 THEN 'failed' ELSE 'same_text' END, 1"
                " FROM generate_series(1, :n) g"
            ),
            {"now": NOW, "n": n_sources},
        )
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def claim_run(store: Store, total: int, now: datetime, claimers: int = 4) -> dict[str, float]:
    latencies: list[float] = []
    claimed = [0]
    lock = threading.Lock()

    def worker(name: str) -> None:
        while True:
            with lock:
                if claimed[0] >= total:
                    return
            t0 = time.perf_counter()
            got = leases.claim(store, name, now, 300, 64)
            latencies.append(time.perf_counter() - t0)
            with lock:
                claimed[0] += len(got.sources)
            if not got.sources:
                return

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(claimers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return {
        "per_s": claimed[0] / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": statistics.quantiles(latencies, n=20)[18] * 1000,
    }


def reset_leases(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE sources SET lease_owner = NULL, lease_until = NULL,"
                " next_check_at = :now - (id % 3600) * interval '1 second'"
                " WHERE lease_owner IS NOT NULL"
            ),
            {"now": NOW},
        )
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE sources"))


def cli(url: str, *args: str, head: bool = False) -> tuple[float, float]:
    """Wall seconds to the first line (``head``) or the end, and peak RSS in MB."""
    cmd = [sys.executable, "-m", "archiver.cli", "--db", url, *args]
    t0 = time.perf_counter()
    out = subprocess.PIPE if head else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
    ps = psutil.Process(proc.pid)
    peak = 0.0
    if head:
        assert proc.stdout is not None
        proc.stdout.readline()
        wall = time.perf_counter() - t0
        peak = ps.memory_info().rss / 2**20
        proc.kill()
        proc.wait()
        return wall, peak
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss / 2**20)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    return time.perf_counter() - t0, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=250_000)
    parser.add_argument("--claims", type=int, default=40_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"claimwatch_million_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = args.pg.rsplit("/", 1)[0] + "/" + name
    try:
        store = Store(url)
        store.migrate()
        t0 = time.perf_counter()
        fill(store, args.sources, args.changes)
        print(f"filled {args.sources:,} sources, {args.changes:,} changes in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
        rows = []
        rows.append(("claim, clean", claim_run(store, args.claims, NOW)))
        reset_leases(store)
        with store.engine.begin() as conn:  # crashed workers hold 10% of rows
            conn.execute(
                text(
                    "UPDATE sources SET lease_owner = 'dead', lease_until = :until,"
                    " next_check_at = :until WHERE id % 10 = 0"
                ),
                {"until": NOW + timedelta(seconds=300)},
            )
        rows.append(("claim, 10% stale leases", claim_run(store, args.claims, NOW)))
        reset_leases(store)
        with psycopg.connect(url) as snap:  # a long snapshot, as a pg_dump holds
            snap.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            snap.execute("SELECT count(*) FROM sources WHERE id < 10").fetchone()
            first = claim_run(store, args.claims, NOW)
            rows.append(("claim, long snapshot (1st pass)", first))
            reset_leases(store)
            rows.append(("claim, long snapshot (2nd pass)", claim_run(store, args.claims, NOW)))
            snap.rollback()
        reset_leases(store)
        print("| claim | sources/s | p50 ms | p95 ms |\n|---|---:|---:|---:|")
        for label, r in rows:
            print(f"| {label} | {r['per_s']:,.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
        print("\n| command | wall s | peak RSS MB |\n|---|---:|---:|")
        for cmd, head in (
            (("status",), False),
            (("status", "--json"), False),
            (("sources", "list", "--json"), True),
            (("sources", "list"), False),
            (("changes", "--json"), True),
            (("changes",), False),
        ):
            wall, rss = cli(url, *cmd, head=head)
            print(f"| `{' '.join(cmd)}`{' first line' if head else ''} | {wall:.2f} | {rss:.0f} |")
        with store.engine.begin() as conn:
            conn.execute(
                text("UPDATE sources SET next_check_at = :old WHERE id <= 50000"),
                {"old": NOW - timedelta(days=1)},
            )
            conn.execute(
                text("UPDATE sources SET next_check_at = :later WHERE id > 50000"),
                {"later": NOW + timedelta(days=1)},
            )
        t0 = time.perf_counter()
        moved = leases.spread_overdue(store, NOW, 60)
        print(f"\nspread {moved:,} overdue sources in {time.perf_counter() - t0:.2f} s")
        store.close()
    finally:
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
