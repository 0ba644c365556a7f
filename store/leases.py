"""Leases: how service workers share due checks without running one twice.

On PostgreSQL, ``claim`` locks due rows with ``FOR UPDATE SKIP LOCKED`` inside
an update that sets ``lease_owner``/``lease_until``: two workers never get the
same source. On SQLite one process owns the store (``ServeLock``), and the
claim runs in a ``BEGIN IMMEDIATE`` transaction.

The lease is a visibility timeout: claiming also moves ``next_check_at`` to the
lease's end, so a leased row is simply not due, and the claim's walk along the
``next_check_at`` index never passes leased rows (with 10% of a million rows
held by crashed workers, filtering them out instead cost 200-440 ms a claim).
A lease that expires (its worker died) is due again at that moment; finishing a
check sets the next check and clears the lease in the capture's own transaction
(store/writes.py).
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from sqlalchemy import func, literal, select, text, update
from sqlalchemy.engine import make_url

from store.errors import UsageError
from store.models import Source, mask_url, source_from_row
from store.repo import Store
from store.schema import UTCDateTime, sources, workers
from store.sources import due_condition


@dataclass(frozen=True)
class Claimed:
    sources: list[Source]
    expired: int  # how many of them had a lease that ran out (a worker died)


def claim(store: Store, owner: str, now: datetime, lease_seconds: int, limit: int) -> Claimed:
    """Lease up to ``limit`` due sources to ``owner`` until ``now + lease_seconds``."""
    until = now + timedelta(seconds=lease_seconds)
    with store.transaction() as conn:
        pick = select(sources.c.id, sources.c.lease_until).where(due_condition(now))
        pick = pick.order_by(sources.c.next_check_at, sources.c.id).limit(limit)
        if conn.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        rows = conn.execute(pick).all()
        if not rows:
            return Claimed([], 0)
        ids = [r.id for r in rows]
        conn.execute(
            update(sources)
            .where(sources.c.id.in_(ids))
            .values(lease_owner=owner, lease_until=until, next_check_at=until)
        )
        claimed = conn.execute(select(sources).where(sources.c.id.in_(ids))).mappings().all()
    order = {sid: n for n, sid in enumerate(ids)}
    found = sorted((source_from_row(r) for r in claimed), key=lambda s: order[s.id])
    return Claimed(found, sum(r.lease_until is not None for r in rows))


def release(store: Store, owner: str, now: datetime) -> int:
    """Give up every lease ``owner`` holds (a clean shutdown): those sources are due
    again at once, for another worker. Returns how many."""
    with store.transaction() as conn:
        result = conn.execute(
            update(sources)
            .where(sources.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None, next_check_at=now)
        )
        return int(result.rowcount or 0)


def spread_overdue(store: Store, now: datetime, jitter: int) -> int:
    """After downtime: move overdue sources to now plus a fixed per-source offset in
    [0, jitter) seconds, so a restart does not fire everything at once. Each overdue
    source still runs once, not once per missed interval."""
    if jitter <= 0:
        return 0
    with store.transaction() as conn:
        if conn.dialect.name == "postgresql":  # one set-based statement
            offset = func.make_interval(0, 0, 0, 0, 0, 0, sources.c.id % jitter)
            result = conn.execute(
                update(sources)
                .where(due_condition(now))
                .values(next_check_at=literal(now, UTCDateTime()) + offset)
            )
            return int(result.rowcount or 0)
        moved = 0  # SQLite: one statement per offset, at most ``jitter`` of them
        for k in range(jitter):
            result = conn.execute(
                update(sources)
                .where(due_condition(now), sources.c.id % jitter == k)
                .values(next_check_at=now + timedelta(seconds=k))
            )
            moved += int(result.rowcount or 0)
    return moved


@dataclass(frozen=True)
class Backlog:
    due: int
    oldest_due_at: datetime | None
    oldest_source: str | None
    leased: int


def backlog(store: Store, now: datetime) -> Backlog:
    with store.reading() as conn:
        due = conn.execute(
            select(func.count()).select_from(sources).where(due_condition(now))
        ).scalar_one()
        oldest = conn.execute(
            select(sources.c.next_check_at, sources.c.label, sources.c.url)
            .where(due_condition(now))
            .order_by(sources.c.next_check_at)
            .limit(1)
        ).first()
        leased = conn.execute(
            select(func.count()).select_from(sources).where(sources.c.lease_until > now)
        ).scalar_one()
    return Backlog(
        int(due),
        oldest.next_check_at if oldest else None,
        (oldest.label or mask_url(oldest.url)) if oldest else None,
        int(leased),
    )


def heartbeat(
    store: Store,
    worker_id: str,
    host: str,
    pid: int,
    now: datetime,
    checks: int,
    status: str = "running",
) -> None:
    with store.transaction() as conn:
        found = conn.execute(select(workers.c.id).where(workers.c.id == worker_id)).scalar()
        values = {"host": host, "pid": pid, "heartbeat_at": now, "checks": checks, "status": status}
        if found is None:
            conn.execute(workers.insert().values(id=worker_id, started_at=now, **values))
        else:
            conn.execute(update(workers).where(workers.c.id == worker_id).values(**values))


HEARTBEAT = 15  # seconds between a running worker's heartbeats (jobs.service)


def worker_state(worker: dict[str, Any], now: datetime) -> str:
    """running | stopped | lost: a 'running' worker whose heartbeat is over four beats
    old died without saying so (SIGKILL, a lost machine)."""
    if worker["status"] == "running" and worker["heartbeat_at"] < now - timedelta(
        seconds=4 * HEARTBEAT
    ):
        return "lost"
    return str(worker["status"])


def list_workers(store: Store) -> list[dict[str, Any]]:
    with store.reading() as conn:
        return [
            dict(r) for r in conn.execute(select(workers).order_by(workers.c.started_at)).mappings()
        ]


def advisory_lock(store: Store, key: int) -> Any:
    """A PostgreSQL session advisory lock for once-per-period jobs (None on SQLite,
    where one process owns the store). Use as a context manager; yields whether it
    was taken."""
    return _Advisory(store, key)


class _Advisory:
    def __init__(self, store: Store, key: int):
        self.store, self.key = store, key
        self.conn: Any = None

    def __enter__(self) -> bool:
        if self.store.engine.dialect.name != "postgresql":
            return True
        self.conn = self.store.engine.connect()
        got = self.conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
        return bool(got)

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.conn is not None:
            self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self.conn.close()


class ServeLock:
    """One ``serve`` per SQLite file: an exclusive lock on ``FILE.serve.lock``."""

    def __init__(self, store: Store):
        url = make_url(store.url)
        self.path: Path | None = None
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            self.path = Path(url.database + ".serve.lock")
        self.handle: IO[str] | None = None

    def __enter__(self) -> ServeLock:
        if self.path is None:
            return self
        self.handle = open(self.path, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            other = self.handle.read().strip() or "?"
            self.handle.close()
            raise UsageError(
                f"another claimwatch serve (pid {other}) already runs on "
                f"{self.path.with_suffix('')}; stop it first, or use PostgreSQL for several workers"
            ) from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
