"""Reading the archive for a phrase (``claimwatch search``, the web view's search):
which sources' current text says it, or over their versions, when they said it.
The matching is ``archiver.text.search``; this reads the texts, a source at a time,
so memory stays flat however large the archive."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from archiver.text.search import Hit, Span, find, says, spans
from store.models import Source, Version
from store.repo import Store


@dataclass(frozen=True)
class SaidNow:
    source: Source
    version: Version  # the current one
    hits: list[Hit]


@dataclass(frozen=True)
class SaidOverTime:
    source: Source
    spans: list[Span]


def said_now(store: Store, sources: Iterable[Source], phrase: str) -> Iterator[SaidNow]:
    """The sources whose current text says ``phrase``, in the order given."""
    for s in sources:
        current = store.current_version(s)
        if current is None:
            continue
        hits = find(store.read_text(current), phrase)
        if hits:
            yield SaidNow(s, current, hits)


def said_over_time(store: Store, sources: Iterable[Source], phrase: str) -> Iterator[SaidOverTime]:
    """The sources any version of which said ``phrase``, with the runs that did."""
    for s in sources:
        presence = [
            (v.number, v.captured_at, says(store.read_text(v), phrase))
            for v in store.versions(s.id)
        ]
        found = spans(presence)
        if found:
            yield SaidOverTime(s, found)


def archive_search(
    store: Store, sources: Iterable[Source], phrase: str, history: bool = False
) -> Iterator[SaidNow | SaidOverTime]:
    """``said_over_time`` with ``history``, else ``said_now``."""
    if history:
        yield from said_over_time(store, sources, phrase)
    else:
        yield from said_now(store, sources, phrase)
