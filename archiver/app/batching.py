"""How a run of checks is paced and committed, apart from what a check does.

* ``read_ahead``: the sources a chunk at a time, with the rows their checks will
  ask for read in one query per chunk;
* ``each``: a function over the sources with at most so many running at once;
* ``Writes``: the checks' writes, committed a batch at a time.

``archiver.pipeline`` wires these around one source's check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any, Protocol, TypeVar

from archiver.net.fetch import Fetcher, RobotsEntry, robots_origin
from store.models import Source, Version
from store.repo import Store
from store.writes import Batch


class Discovers(Protocol):
    """A check's result, as far as ``each`` reads it: the sources the check found."""

    @property
    def discovered(self) -> tuple[Source, ...]: ...


R = TypeVar("R", bound=Discovers)
T = TypeVar("T")

READ_AHEAD = 500  # sources read ahead, whose robots.txt entries and versions are read together


def read_ahead(
    sources: Iterable[Source],
    store: Store,
    fetcher: Fetcher,
    clock: Callable[[], datetime],
    known: dict[int, Version],
) -> Iterator[Source]:
    """The sources, a chunk at a time. Before a chunk is checked, one query each reads
    its robots.txt entries from earlier runs (handed to the fetcher) and the current
    versions its checks compare against (into ``known``; a version row never changes,
    so reading it early is exact). Pages whose article fingerprint usually answers
    without the version are left to ask for it when they do need it."""
    asked: set[str] = set()
    it = iter(sources)
    while part := list(islice(it, READ_AHEAD)):
        origins = {robots_origin(s.url) for s in part if s.robots} - asked
        asked |= origins
        if origins:
            known_robots = store.robots_for(sorted(origins), clock())
            fetcher.know_robots({o: RobotsEntry(*e) for o, e in known_robots.items()})
        wanted = [
            s.current_version_id
            for s in part
            if s.current_version_id is not None and (s.select or not s.body_hint)
        ]
        if wanted:
            known.update(store.versions_by_id(wanted))
        yield from part


async def each(
    items: Iterable[Source],
    fn: Callable[[Source], Awaitable[R]],
    limit: int,
    keep: bool = True,
) -> tuple[list[R], list[Source]]:
    """``fn`` over ``items`` (read as workers free up) with at most ``limit`` running:
    the results in input order (none unless ``keep``), and the sources they discovered."""
    results: dict[int, R] = {}
    found: dict[int, tuple[Source, ...]] = {}
    queue = enumerate(items)

    async def worker() -> None:
        for i, item in queue:
            result = await fn(item)
            if keep:
                results[i] = result
            if result.discovered:
                found[i] = result.discovered

    await asyncio.gather(*(worker() for _ in range(limit)))
    return [results[i] for i in sorted(results)], [s for i in sorted(found) for s in found[i]]


class Writes:
    """The checks' writes, committed in batches: one transaction (one fsync on SQLite)
    for up to ``size`` checks or ``delay`` seconds. A check's result is reported only
    once its transaction committed. If a batch fails, its writes are retried one by
    one, so one bad write cannot sink the others."""

    def __init__(self, store: Store, size: int = 64, delay: float = 0.05):
        self.store, self.size, self.delay = store, size, delay
        self.pending: list[tuple[Callable[[Batch], Any], asyncio.Future[Any]]] = []
        self.timer: asyncio.TimerHandle | None = None

    async def __call__(self, op: Callable[[Batch], T]) -> T:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self.pending.append((op, done))
        if len(self.pending) >= self.size:
            self.flush()
        elif self.timer is None:
            self.timer = loop.call_later(self.delay, self.flush)
        return await done

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        ops, self.pending = self.pending, []
        if not ops:
            return
        try:
            with self.store.batch() as batch:
                values = [op(batch) for op, _ in ops]
        except Exception:
            for op, done in ops:
                try:
                    with self.store.batch() as batch:
                        value = op(batch)
                except Exception as exc:
                    done.set_exception(exc)
                else:
                    done.set_result(value)
            return
        for (_op, done), value in zip(ops, values, strict=True):
            done.set_result(value)
