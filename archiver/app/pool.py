"""The extraction processes a run sends its CPU-bound work to (``archiver.app.worker``).

``ExtractionPool`` starts them on first use and keeps them until ``close``, and
may add a helper for a backlog of first extractions; ``default_workers`` is its
size when none is configured. ``archiver.pipeline`` decides what goes to them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor

from archiver.app.worker import watch_parent


def default_workers(cores: int | None = None) -> int:
    """Extraction workers when none are configured: one per core but one, at least one.
    The run's own process keeps a core busy in a re-check cycle (the fetch loop, the
    article fingerprint, the store); on 2 cores a second worker contended with it, and
    cost 45 MB (docs/benchmarks.md)."""
    return max(1, (cores or os.cpu_count() or 1) - 1)


class ExtractionPool:
    """The extraction processes, started on first use and kept until ``close``: the
    service checks every few seconds and must not start processes each time.

    Workers are spawned, not forked: a forked worker inherits every open file,
    ``serve``'s SQLite lock included, and would hold it after this process is
    killed. Each worker watches for this process to go (``watch_parent``): nothing
    else tells a pool that its owner died of SIGKILL. A pool whose worker died is
    replaced, and so is one of the wrong size after ``resize``.

    When the size is the default, a run may also start a ``helper``: one more worker,
    for first extractions only, while they queue up (a first archive, a large import).
    Then every page needs a full extraction and the run's own process is mostly idle,
    so the extra worker has a core; in re-check cycles it would contend with the fetch
    loop and cost its memory for nothing. ``end_burst`` stops it when the work that
    started it is done (docs/benchmarks.md). A configured size has no helper.
    """

    def __init__(self, processes: int | None = None):
        self.processes = default_workers() if processes is None else processes
        self._configured = processes is not None
        self._pool: ProcessPoolExecutor | None = None
        self._size = 0  # the workers of ``_pool``
        self._helper: ProcessPoolExecutor | None = None

    def resize(self, processes: int | None) -> bool:
        """Use this many workers from the next run on (``serve`` reloading
        ``service.workers``); a run under way keeps the pool it started with. Whether
        the size changed."""
        wanted = default_workers() if processes is None else processes
        changed, self.processes = wanted != self.processes, wanted
        self._configured = processes is not None
        return changed

    @property
    def helps(self) -> bool:
        """Whether runs may start a ``helper``: the size is the default, on 2+ cores."""
        return not self._configured and self.processes > 0 and (os.cpu_count() or 1) > 1

    def executor(self) -> Executor | None:
        """The pool, or None to extract in this process (``processes=0``)."""
        if self.processes < 1:
            return None
        broken = self._pool is not None and getattr(self._pool, "_broken", False)
        if self._pool is None or broken or self._size != self.processes:
            if self._pool is not None:  # its last run has ended: runs take turns
                self._pool.shutdown(wait=False, cancel_futures=broken)
            self._size = self.processes
            self._pool = spawn(self.processes)
        return self._pool

    def helper(self) -> Executor | None:
        """The one-worker helper for a backlog of first extractions (started now if it
        is not running), or None when this pool has none (see the class docstring)."""
        if not self.helps:
            return None
        if self._helper is None or getattr(self._helper, "_broken", False):
            self._helper = spawn(1)
        return self._helper

    def end_burst(self, now: bool = False) -> None:
        """Stop the helper, if one runs: the backlog that started it is done (``now``:
        its running job too)."""
        if self._helper is not None:
            if now:
                stop(self._helper, now=True)
            else:
                self._helper.shutdown(wait=False, cancel_futures=True)
            self._helper = None

    def close(self, now: bool = False) -> None:
        """Stop the workers once their jobs are done, or, ``now``, at once (``stop``)."""
        self.end_burst(now)
        if self._pool is not None:
            stop(self._pool, now)
            self._pool = None

    def __enter__(self) -> ExtractionPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        # Ctrl-C, or (in ``check``'s event loop, which Ctrl-C cancels) a cancelled run
        interrupted = (KeyboardInterrupt, asyncio.CancelledError)
        self.close(now=exc_type is not None and issubclass(exc_type, interrupted))


def stop(pool: ProcessPoolExecutor, now: bool = False) -> None:
    """Shut ``pool`` down: queued jobs are dropped, running ones finish; ``now`` (Ctrl-C:
    workers ignore SIGINT, ``watch_parent``) ends them at once, with SIGTERM, rather
    than wait for a page that may take a minute of CPU."""
    if now:
        processes = getattr(pool, "_processes", None) or {}  # (no public way before 3.14)
        for process in list(processes.values()):
            process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def spawn(workers: int) -> ProcessPoolExecutor:
    """``workers`` spawned processes that stop when this one goes (``watch_parent``)."""
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=watch_parent,
        initargs=(os.getpid(),),
    )
