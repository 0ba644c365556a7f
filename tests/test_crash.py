"""SIGKILL at random points of ``check`` and ``serve``: after each kill the store verifies,
keeps every acknowledged version, has no duplicate and no stuck lease.

CI runs a few kills per database; ``pytest tests/test_crash.py --crash-runs 50`` (or
``python benchmarks/crash.py``) is the long version recorded in docs/reliability.md.
"""

from __future__ import annotations

import pytest

from benchmarks.crash import run_crashes


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_sigkill_loses_nothing(kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "postgresql":
        request.getfixturevalue("pg_server")  # skips (or fails in CI) without a server
    runs = request.config.getoption("--crash-runs")
    report = run_crashes(kind, runs=runs, n_sources=20, seed=7)
    assert report.runs == runs
    assert report.kills >= runs // 3, report.line()  # most runs really were cut short
    assert report.acknowledged > 0, report.line()
    assert report.problems == []
    assert (report.lost, report.duplicated, report.stuck) == (0, 0, 0), report.line()
    assert report.orphans == 0, report.line()  # no extraction worker outlives its owner
    assert report.versions >= report.acknowledged
