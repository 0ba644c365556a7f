"""Two workers on PostgreSQL under a simulated clock: every due check runs exactly once,
memory stays flat, and the connection pools never run out. A small version of
benchmarks/load.py (the 5,000-source run is recorded in docs/reliability.md)."""

from __future__ import annotations

import pytest

from benchmarks.load import INTERVALS, run_load


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_check_everything_once(pg_server: str) -> None:
    from tests.support import reset_pg

    reset_pg(pg_server)
    report = run_load(pg_server, n_sources=400, minutes=3, tick=5)
    due_times = sum(len(range(0, 3 * 60 + 1, INTERVALS[i % 4])) for i in range(400))
    assert report.checks == due_times == 800
    assert (report.missed, report.doubled, report.failed) == (0, 0, 0), report.line()
    assert max(report.peak_connections.values()) < report.pool_limit, report.line()
    assert report.growth_mb < 40, report.line()
    assert set(report.peak_connections) == {"w1", "w2"}
