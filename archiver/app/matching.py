"""Matching many passages against a story's claims: in batches, and in worker
processes when there are cores to spare (``claims match``, ``claims eval``).

``match_stream`` answers passages in the order they come. In this process, the
sentences of each ``BATCH`` of passages are embedded in one call before they are
matched. With ``Parallel``, batches go to worker processes, each building its
matcher once from a ``MatchSpec`` (the bank file holds every vector and the fitted
probes, so no worker computes them again) and embedding with one thread: two
processes of one thread each match more passages a second on two cores than one
process whose embedder uses both (docs/benchmarks.md). Either way the flags are
the same.

A passage source may fail part way (a malformed line): every passage read before
the failure is still answered, then the failure is raised.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from archiver.claims.matcher import BATCH, Matcher, MatchSpec, match, prefetch
from archiver.claims.rules import Claim, Flag

T = TypeVar("T")


@dataclass(frozen=True)
class Parallel:
    """Match in ``workers`` processes, each building its matcher from ``spec``."""

    spec: MatchSpec
    workers: int


def default_workers(cores: int | None = None) -> int:
    """Matching processes when none are asked for: one per core, or none (this
    process) on one core. This process only reads and writes, so it needs no core."""
    cores = cores or os.cpu_count() or 1
    return cores if cores > 1 else 0


def match_batch(spec: MatchSpec, claims: tuple[Claim, ...], texts: list[str]) -> list[list[Flag]]:
    """The flags of each passage (in a worker: the matcher loads once per process)."""
    from archiver.app.worker import matcher_for  # the page workers' cache of matchers

    matcher = matcher_for(spec)
    prefetch(texts, matcher.embedder)
    return [match(t, claims, matcher) for t in texts]


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size``. If ``items`` fails, the items read before the
    failure come first, as a last short list; the failure is raised after it."""
    batch: list[T] = []
    try:
        for item in items:
            batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
    except Exception:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def match_stream(
    items: Iterable[tuple[Any, str]],
    claims: Sequence[Claim],
    matcher: Matcher,
    parallel: Parallel | None = None,
    size: int = BATCH,
) -> Iterator[tuple[Any, list[Flag]]]:
    """(id, flags) for each (id, passage) of ``items``, in order."""
    if parallel is None or parallel.workers < 1:
        for batch in batches(items, size):
            prefetch([text for _id, text in batch], matcher.embedder)
            for item_id, text in batch:
                yield item_id, match(text, claims, matcher)
        return
    from archiver.app.pool import spawn  # (imports the page workers' module: 26 MB)

    story = tuple(claims)
    pool = spawn(parallel.workers)
    pending: deque[tuple[list[Any], Future[list[list[Flag]]]]] = deque()
    try:
        try:
            for batch in batches(items, size):
                texts = [text for _id, text in batch]
                pending.append(
                    ([i for i, _t in batch], pool.submit(match_batch, parallel.spec, story, texts))
                )
                while len(pending) > 2 * parallel.workers:  # keep every worker busy, no more
                    yield from _answers(pending.popleft())
        except Exception:
            while pending:  # what was read before the failure is answered first
                yield from _answers(pending.popleft())
            raise
        while pending:
            yield from _answers(pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _answers(
    done: tuple[list[Any], Future[list[list[Flag]]]],
) -> Iterator[tuple[Any, list[Flag]]]:
    ids, future = done
    yield from zip(ids, future.result(), strict=True)
