"""When to check a source next: pure functions of its schedule, failures and clock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from store.errors import UsageError

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)\s*([smhdw])")

DEFAULT_INTERVAL = 3600
MAX_BACKOFF = 7 * 86400
MAX_INTERVAL = 366 * 86400  # the longest schedule a source may have
MAX_DURATION = 100 * 366 * 86400  # the longest duration anywhere (``--since 5y``...)


def parse_duration(text: str, maximum: int = MAX_DURATION) -> int:
    """Seconds in a duration such as ``30s``, ``15m``, ``2h``, ``1d`` or ``1h30m``,
    at most ``maximum`` (anything longer is refused: date arithmetic stays bounded)."""
    s = text.strip().lower().replace(" ", "")
    if s.isascii() and s.isdigit():
        parts = [(s, "s")]
    else:
        parts = _PART.findall(s) if s.isascii() else []
        if not s or not parts or "".join(n + u for n, u in parts) != s:
            raise UsageError(
                f"duration {text!r} is not understood; "
                "use a number with s, m, h, d or w, e.g. 15m or 1h30m"
            )
    if any(len(n) > 12 for n, _u in parts):
        raise UsageError(f"duration {text!r} is too long; the most is {format_duration(maximum)}")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"duration {text!r} must be longer than zero")
    if seconds > maximum:
        raise UsageError(f"duration {text!r} is too long; the most is {format_duration(maximum)}")
    return seconds


def parse_interval(text: str) -> int:
    """A source's check interval: a duration of at most a year."""
    return parse_duration(text, MAX_INTERVAL)


def format_duration(seconds: int | None) -> str:
    if not seconds:
        return "-"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out)


def next_after_failure(
    now: datetime, interval: int | None, failures: int, retry_after: float | None = None
) -> datetime:
    """Exponential backoff from the interval, capped at a week (or the source's own longer
    interval), and never before Retry-After, itself capped at a week: a server cannot
    push a source out of reach."""
    base = min(interval or DEFAULT_INTERVAL, 3600)
    longest = max(MAX_BACKOFF, min(interval or 0, MAX_INTERVAL))
    delay = min(base * 2 ** min(max(0, failures - 1), 32), longest)
    if retry_after is not None and retry_after == retry_after:  # not NaN
        delay = max(delay, min(retry_after, MAX_BACKOFF))
    return now + timedelta(seconds=delay)


# -- cron ---------------------------------------------------------------------------


def parse_cron(expr: str, timezone: str = "UTC") -> CronTrigger:
    """A crontab expression ("0 7 * * *"), as APScheduler's CronTrigger."""
    from apscheduler.triggers.cron import CronTrigger  # imported when a cron is used

    try:
        return CronTrigger.from_crontab(expr, timezone=timezone)
    except (ValueError, TypeError) as exc:
        raise UsageError(
            f"cron expression {expr!r} is not valid ({exc}); use five fields: "
            "minute hour day month weekday"
        ) from None


def next_cron(expr: str, now: datetime, timezone: str = "UTC") -> datetime:
    fire = parse_cron(expr, timezone).get_next_fire_time(None, now + timedelta(seconds=1))
    if fire is None:
        raise UsageError(f"cron expression {expr!r} never fires again")
    return fire.astimezone(UTC)


# -- coverage: a decaying schedule ----------------------------------------------------


@dataclass(frozen=True)
class DecayPolicy:
    """How often to recheck coverage as it ages: (until this age, every this often)."""

    stages: tuple[tuple[int, int], ...] = (
        (2 * 3600, 15 * 60),  # first 2 hours: every 15 minutes
        (86400, 3600),  # first day: hourly
        (7 * 86400, 86400),  # first week: daily
    )
    weekly: int = 7 * 86400  # after that, weekly ...
    retire_after: int = 30 * 86400  # ... until this age, then retired


def decay_interval(age: float, policy: DecayPolicy | None = None) -> int | None:
    """Seconds until the next check of coverage this old; None once it should retire."""
    policy = policy or DecayPolicy()
    if age >= policy.retire_after:
        return None
    for until, every in policy.stages:
        if age < until:
            return every
    return policy.weekly


def decay_after_change(
    decay_from: datetime, now: datetime, policy: DecayPolicy | None = None
) -> datetime:
    """A change moves the schedule one stage back: the new decay origin."""
    policy = policy or DecayPolicy()
    age = (now - decay_from).total_seconds()
    starts = [0] + [until for until, _every in policy.stages] + [policy.retire_after]
    stage = max(i for i, start in enumerate(starts) if age >= start)
    back = starts[max(0, stage - 1)]
    return now - timedelta(seconds=back)


# -- one place that decides ----------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """When to check next, and whether the source retires."""

    next_check_at: datetime | None
    retire: bool = False


def plan_next(
    *,
    now: datetime,
    interval: int | None,
    cron: str | None,
    coverage_from: datetime | None = None,
    hint: int | None = None,
    policy: DecayPolicy | None = None,
) -> Plan:
    """After a successful check: a cron source fires on its expression; coverage
    (``coverage_from`` set, no explicit interval) decays with age; others wait their
    interval, or longer if the server or feed asks for it (``hint``, capped at a day)."""
    if cron:
        return Plan(next_cron(cron, now))
    if coverage_from is not None and interval is None:
        every = decay_interval((now - coverage_from).total_seconds(), policy)
        return Plan(None, retire=True) if every is None else Plan(now + timedelta(seconds=every))
    wait = interval or DEFAULT_INTERVAL
    if hint:
        wait = max(wait, min(hint, 86400))
    return Plan(now + timedelta(seconds=wait))
