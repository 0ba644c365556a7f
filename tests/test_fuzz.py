"""The fuzz targets of benchmarks/fuzz.py, briefly, in every CI run; and the inputs that
earlier fuzzing found, replayed so they stay fixed."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.fuzz import TARGETS, Target, prop_extract, prop_feeds, run_target


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_fuzz_target_holds(target: Target) -> None:
    assert run_target(target, examples=60) is None


# Found by benchmarks/fuzz.py (see docs/reliability.md); each crashed before its fix.
REGRESSIONS: list[tuple[Any, bytes]] = [
    (prop_extract, b"\xff\xfe\x00\x00+"),  # a UTF-16 BOM, then a truncated code unit
    (prop_feeds, b""),  # an empty feed body: feedparser gives no version at all
    (prop_feeds, b"   \n"),
]


@pytest.mark.parametrize(("check", "value"), REGRESSIONS)
def test_earlier_fuzz_failures_stay_fixed(check: Any, value: bytes) -> None:
    check(value)


def test_run_target_reports_a_failing_input() -> None:
    """The harness itself: a property that fails on long input returns a shrunk one."""
    from hypothesis import strategies as st

    def short(text: str) -> None:
        assert len(text) < 3

    bad = run_target(Target("demo", st.text(), short), examples=200)
    assert isinstance(bad, str) and len(bad) == 3
