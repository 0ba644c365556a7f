"""When to check a source next: pure functions of its schedule, failures and clock."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from archiver.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)\s*([smhdw])")

DEFAULT_INTERVAL = 3600
MAX_BACKOFF = 7 * 86400


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``30s``, ``15m``, ``2h``, ``1d`` or ``1h30m``."""
    s = text.strip().lower().replace(" ", "")
    if s.isdigit():
        return int(s)
    parts = _PART.findall(s)
    if not s or not parts or "".join(n + u for n, u in parts) != s:
        raise UsageError(
            f"duration {text!r} is not understood; "
            "use a number with s, m, h, d or w, e.g. 15m or 1h30m"
        )
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"duration {text!r} must be longer than zero")
    return seconds


def format_duration(seconds: int | None) -> str:
    if not seconds:
        return "-"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out)


def next_after_success(now: datetime, interval: int | None) -> datetime:
    return now + timedelta(seconds=interval or DEFAULT_INTERVAL)


def next_after_failure(
    now: datetime, interval: int | None, failures: int, retry_after: float | None = None
) -> datetime:
    """Exponential backoff from the interval, capped at a week, and never before Retry-After."""
    base = min(interval or DEFAULT_INTERVAL, 3600)
    delay = min(base * 2 ** max(0, failures - 1), max(MAX_BACKOFF, interval or 0))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + timedelta(seconds=delay)
