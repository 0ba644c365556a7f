"""A scan of the archive against the claims (``flags scan``).

A check matches only what changed: an edit's sentences, a new article's paragraphs. So
a claim added to the claims file, or made to find more (a statement in another
language, examples, verdicts), never meets the text archived before it. A scan
matches the text each watched page shows now (its current version), paragraph by
paragraph as a new article is, and stores what it finds as new flags, which then
reach the review, the digest and the alerts like any other.

With ``history`` it reads every version instead: each paragraph once per source, in the
first version that has it, so text a page has since dropped meets the claims too, and
its flag says it is gone from the current text.

Feeds (their text is a list of entries) and seed articles (the story itself) are not
scanned; retired sources are. A scan never repeats a flag: a version that already has
a flag for a claim, a sentence the source was already flagged with for the claim, and
a sentence the reviewer rejected for it are all left out (``store.claims.add_found``).

A sentence a check or an earlier scan embedded is not embedded again: its vector is
read from the store, and what a scan embeds is kept there (a dry run only reads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import groupby
from typing import TYPE_CHECKING

from archiver.app.worker import whole_text_flags
from archiver.claims.rules import Claim, Flag
from store.kinds import SCANNED
from store.models import FlagRecord, Source, Version
from store.repo import Store

if TYPE_CHECKING:
    from archiver.app.matching import Parallel
    from archiver.claims.matcher import Matcher

WHY = "archive scan"  # the reason a scan's flag gives first, with the paragraph


@dataclass(frozen=True)
class ScanOptions:
    only_claims: frozenset[str] = frozenset()  # keep these claims' flags (empty: every claim)
    source_id: int | None = None  # scan this source only
    dry_run: bool = False  # find, but store nothing
    history: bool = False  # every version, each paragraph once per source (else: current)


@dataclass(frozen=True)
class Found:
    """What a scan found in one version: its flags (on a dry run, those it would store),
    and the ids of those it stored."""

    source: Source
    version: Version
    flags: tuple[FlagRecord, ...]
    stored: tuple[int, ...] = ()


@dataclass
class ScanReport:
    versions: int = 0  # texts scanned
    found: list[Found] = field(default_factory=list)  # versions with a flag to store

    @property
    def stored(self) -> list[int]:
        return [i for f in self.found for i in f.stored]


Key = tuple[Source, Version, int]  # a paragraph: its source, version and number


def scan(
    store: Store,
    claims: Sequence[Claim],
    how: Matcher | Parallel,
    options: ScanOptions,
    now: datetime,
    on_found: Callable[[Found], None] | None = None,
    on_source: Callable[[Source], None] | None = None,
) -> ScanReport:
    """Match the current text of every scanned source (every version's, with
    ``options.history``) against ``claims`` and store the flags it finds (unless
    ``options.dry_run``). Every claim is matched, since the model weighs each claim
    against the story's others; ``options.only_claims`` keeps only those claims' flags.
    ``on_found`` hears of each version with flags as it is done, ``on_source`` of each
    source as its text is read (for a progress bar)."""
    from archiver.app.matching import match_stream

    report = ScanReport()
    now_says: tuple[int, str, str] | None = None  # a source's current text, and where
    texts = _paragraphs(store, options, report, on_source)
    vectors = _ReadOnly(store) if options.dry_run else store
    paragraphs = match_stream(texts, claims, how, vectors=vectors)
    for (source, version), matched in groupby(paragraphs, key=lambda kf: kf[0][:2]):
        flags = whole_text_flags(_numbered(matched), WHY)
        if options.only_claims:
            flags = tuple(f for f in flags if f.claim_id in options.only_claims)
        if not flags:
            continue
        if version.id != source.current_version_id:
            if now_says is None or now_says[0] != source.id:  # once for its old versions
                now_says = (source.id, *_current_text(store, source))
            flags = _gone(flags, *now_says[1:])
        if options.dry_run:
            found = Found(source, version, tuple(store.unseen(version, flags)))
        else:
            stored = tuple(store.add_found(version, flags, now))
            found = Found(source, version, flags, stored)
        if found.flags and (options.dry_run or found.stored):
            report.found.append(found)
            if on_found is not None:
                on_found(found)
    return report


class _ReadOnly:
    """The store's sentence vectors for a dry run: read, never written."""

    def __init__(self, store: Store):
        self.store = store

    def vectors_for(self, model: str, digests: Iterable[str]) -> dict[str, bytes]:
        return self.store.vectors_for(model, digests)

    def save_vectors(self, model: str, vectors: dict[str, bytes]) -> None:
        pass  # a dry run stores nothing


def _numbered(matched: Iterable[tuple[Key, list[Flag]]]) -> Iterator[tuple[int, list[Flag]]]:
    for (_source, _version, n), flags in matched:
        yield n, flags


def scanned(source: Source) -> bool:
    """Whether a scan reads this source: a page or an article, not a feed (its text is a
    list of entries) nor a seed article (the story itself)."""
    return source.kind in SCANNED


def _current_text(store: Store, source: Source) -> tuple[str, str]:
    """The source's current text, and which version that is."""
    current = store.current_version(source)
    if current is None:
        return "", "the current version"
    return store.read_text(current), f"version {current.number}"


def _gone(flags: tuple[FlagRecord, ...], text: str, now_at: str) -> tuple[FlagRecord, ...]:
    """An older version's flags, each saying whether its sentence is gone from the
    source's current ``text`` (``now_at``): a page that dropped it is news too."""
    return tuple(
        f
        if f.evidence in text
        else replace(
            f, reasons=[f.reasons[0], f"gone from the current text ({now_at})", *f.reasons[1:]]
        )
        for f in flags
    )


def _paragraphs(
    store: Store,
    options: ScanOptions,
    report: ScanReport,
    on_source: Callable[[Source], None] | None,
) -> Iterator[tuple[Key, str]]:
    """(key, paragraph) for every non-empty paragraph of every scanned source's current
    text (with ``options.history``, of every version, each paragraph at its first), source
    by source, read as the matcher asks for them. Retired sources are scanned too: old
    coverage is what a new claim most needs to meet."""
    chosen = options.source_id
    sources = [store.get_source(chosen)] if chosen is not None else store.iter_sources()
    for source in sources:
        if not scanned(source) or source.current_version_id is None:
            continue
        if on_source is not None:
            on_source(source)
        if options.history:
            versions = store.versions(source.id)
        else:
            current = store.current_version(source)
            versions = [current] if current is not None else []
        seen: set[str] = set()
        for version in versions:
            report.versions += 1
            for n, paragraph in enumerate(store.read_text(version).split("\n"), start=1):
                if paragraph.strip() and paragraph not in seen:
                    seen.add(paragraph)
                    yield (source, version, n), paragraph
