"""The one place that wires the stages together: fetch, extract, normalize, store.

``check`` runs a batch of sources concurrently on one event loop. Fetches are
async; extraction is CPU-bound and runs in a process pool so it does not stall
the fetches. Each check ends in exactly one capture row:

* 304, or the same raw bytes as last time: a capture and nothing else;
* the same normalized text: a capture and nothing else;
* new text: a new version (blobs, version, capture and schedule in one transaction);
* any ``FetchError`` or ``ExtractionError``: a failed capture, and the source backs off.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from archiver import schedule
from archiver.claims import Claim, MatchOptions, claim_from_dict, claim_to_dict, match
from archiver.claimsfile import load_claims
from archiver.diff import Change, DiffOptions, change_to_dict, diff
from archiver.errors import EmptyExtraction, ExtractionError, FetchError, UsageError
from archiver.extract import Extracted, ExtractOptions, extract
from archiver.fetch import Fetcher, FetchOptions, FetchRequest, FetchResult
from archiver.normalize import NormalizeOptions, normalize, text_digest
from archiver.seeds import SeedArticle, load_seed_articles, load_sources, seed_spec
from archiver.segment import sentences
from store.blobs import digest as raw_digest_of
from store.models import (
    CaptureRecord,
    ChangeRecord,
    FlagRecord,
    NewVersion,
    Source,
    SourceSpec,
    SourceUpdate,
    Version,
)
from store.repo import Store

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class CheckOptions:
    fetch: FetchOptions = field(default_factory=FetchOptions)
    extract: ExtractOptions = field(default_factory=ExtractOptions)
    diff: DiffOptions = field(default_factory=DiffOptions)
    processes: int = 0  # extraction workers; 0 = one per core, 1 = in-process
    claims: tuple[Claim, ...] | None = None  # None: the store's active claims
    semantic: bool = False  # add the embedding layer to claims matching (the extra)


@dataclass(frozen=True)
class CheckResult:
    source: Source
    outcome: str
    version: int | None = None
    status: int | None = None
    error_class: str | None = None
    error: str | None = None
    duration_ms: int = 0
    significance: float | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


@dataclass(frozen=True)
class PageJob:
    """Everything the CPU-bound part of a check needs (sent to a pool worker)."""

    body: bytes
    content_type: str | None
    charset: str | None
    url: str
    ignore: tuple[str, ...]
    extract: ExtractOptions
    diff: DiffOptions
    previous_text: str | None = None  # the current version's text, to diff against
    previous_title: str | None = None
    claims: tuple[Claim, ...] = ()
    coverage: bool = False  # a first version of related coverage is matched whole
    semantic: bool = False


@dataclass(frozen=True)
class PageResult:
    extracted: Extracted
    text: str
    change: Change | None  # None when there is no previous text or it is identical
    flags: tuple[FlagRecord, ...] = ()


def extract_text(
    body: bytes,
    content_type: str | None,
    charset: str | None,
    url: str,
    options: ExtractOptions,
    ignore: tuple[str, ...],
) -> tuple[Extracted, str]:
    """Extract and normalize: page bytes to the stable text that is archived."""
    extracted = extract(body, content_type, charset, url, options)
    text = normalize(extracted.text, NormalizeOptions(ignore=ignore))
    if not text:
        raise EmptyExtraction("nothing is left after normalization and ignore patterns")
    return extracted, text


def process_page(job: PageJob) -> PageResult:
    """Extract, normalize and diff against the previous text, in one trip to a worker."""
    extracted, text = extract_text(
        job.body, job.content_type, job.charset, job.url, job.extract, job.ignore
    )
    change = None
    if job.previous_text is not None and job.previous_text != text:
        change = diff(job.previous_text, text, job.diff, job.previous_title, extracted.title)
    found: tuple[FlagRecord, ...] = ()
    if job.claims:
        options = _match_options(job.semantic)
        if change is not None:
            found = flags_for_change(change, text, job.claims, options)
        elif job.previous_text is None and job.coverage:
            found = flags_for_coverage(text, job.claims, options)
    return PageResult(extracted, text, change, found)


_SEMANTIC: object | None = None


def _match_options(semantic: bool) -> MatchOptions:
    """Matching options in this process; the embedding model loads once per worker."""
    global _SEMANTIC
    if not semantic:
        return MatchOptions()
    if _SEMANTIC is None:
        from archiver.semantic import E5Similarity

        _SEMANTIC = E5Similarity()
    return MatchOptions(semantic=_SEMANTIC)  # type: ignore[arg-type]


def _strongest(flags: list[FlagRecord]) -> tuple[FlagRecord, ...]:
    best: dict[str, FlagRecord] = {}
    for f in flags:
        if f.claim_id not in best or f.score > best[f.claim_id].score:
            best[f.claim_id] = f
    return tuple(sorted(best.values(), key=lambda f: -f.score))


def flags_for_change(
    change: Change, new_text: str, claims: tuple[Claim, ...], options: MatchOptions
) -> tuple[FlagRecord, ...]:
    """Flags raised by a change: each added or modified sentence, read with one sentence
    of context either side (so "it" can find its Meta), must itself be the evidence."""
    spans = [s.text for s in sentences(new_text)]
    found = []
    for unit in change.units:
        if unit.kind not in ("added", "modified") or unit.layout_only or unit.new_at is None:
            continue
        i = unit.new_at
        passage = "".join(spans[max(0, i - 1) : i + 2])
        target = (unit.new or "").strip()
        for flag in match(passage, claims, options):
            if flag.evidence != target:
                continue  # the context, not the change, bears on this claim
            where = f"sentence {unit.kind} in paragraph {unit.new_pos[0] if unit.new_pos else '?'}"
            found.append(
                FlagRecord(
                    flag.claim, flag.stance, flag.score, flag.evidence, [where, *flag.reasons]
                )
            )
    return _strongest(found)


def flags_for_coverage(
    text: str, claims: tuple[Claim, ...], options: MatchOptions
) -> tuple[FlagRecord, ...]:
    """Flags raised by a new article: each paragraph matched against the claims."""
    found = []
    for n, paragraph in enumerate(text.split("\n"), start=1):
        for flag in match(paragraph, claims, options):
            found.append(
                FlagRecord(
                    flag.claim,
                    flag.stance,
                    flag.score,
                    flag.evidence,
                    [f"new coverage, paragraph {n}", *flag.reasons],
                    from_change=False,
                )
            )
    return _strongest(found)


def change_record(change: Change) -> ChangeRecord:
    data = change_to_dict(change)
    return ChangeRecord(
        kind="edit",
        significance=change.significance,
        summary=data["summary"],
        reasons=data["reasons"],
        stats=data["stats"],
        units=data["units"],
    )


@dataclass(frozen=True)
class Seeds:
    """A story's seeds, validated: seed articles (with their versions) and the watchlist."""

    articles: list[tuple[SeedArticle, NewVersion]]
    sources: list[SourceSpec]
    claims: tuple[Claim, ...] = ()


def load_seeds(seeds_dir: Path) -> Seeds:
    """Read and validate a seeds directory (raises ``ConfigError``); writes nothing."""
    if not seeds_dir.is_dir():
        raise UsageError(f"seeds directory {seeds_dir} does not exist")
    articles = [(a, a.version()) for a in load_seed_articles(seeds_dir)]
    claims_path = seeds_dir / "claims.yaml"
    found = load_claims(claims_path) if claims_path.exists() else ()
    return Seeds(articles, load_sources(seeds_dir / "sources.yaml"), found)


def import_seeds(store: Store, seeds: Seeds, now: datetime) -> list[tuple[str, int, bool]]:
    """Store each seed article as a version of its ``seed`` source (a new one only when
    its text changed) and add or update the watchlist. Returns (label, version, created)."""
    report = []
    for article, new in seeds.articles:
        source_id = store.add_source(seed_spec(article), now, update_existing=True)
        latest = store.latest_version(source_id)
        if latest is not None and latest.text_digest == text_digest(new.text):
            report.append((article.label, latest.number, False))
            continue
        capture = CaptureRecord(
            source_id=source_id,
            started_at=now,
            duration_ms=0,
            outcome="new_version",
            bytes=len(new.raw or b""),
            raw_digest=raw_digest_of(new.raw or b""),
        )
        update = SourceUpdate(next_check_at=None, last_checked_at=now, consecutive_failures=0)
        report.append((article.label, store.add_version(new, capture, update).number, True))
    for spec in seeds.sources:
        store.add_source(spec, now, update_existing=True)
    if seeds.claims:
        store.load_claims([claim_to_dict(c) for c in seeds.claims], now)
    return report


def check(
    store: Store,
    sources: Iterable[Source],
    options: CheckOptions | None = None,
    clock: Clock | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Check the sources (synchronous entry point for the CLI and jobs)."""
    return asyncio.run(check_async(store, list(sources), options, clock, on_result))


async def check_async(
    store: Store,
    sources: list[Source],
    options: CheckOptions | None = None,
    clock: Clock | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    options = options or CheckOptions()
    if options.claims is None:
        loaded = tuple(claim_from_dict(c.data) for c in store.claims())
        options = replace(options, claims=loaded)
    clock = clock or (lambda: datetime.now(UTC))
    workers = options.processes or (os.cpu_count() or 1)
    with ExitStack() as stack:
        pool: Executor | None = None
        if workers > 1 and len(sources) > 1:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers))
        async with Fetcher(options.fetch, now=clock) as fetcher:
            checker = _Checker(store, fetcher, pool, options, clock)

            async def one(source: Source) -> CheckResult:
                result = await checker.run(source)
                if on_result is not None:
                    on_result(result)
                return result

            return list(await asyncio.gather(*(one(s) for s in sources)))


@dataclass
class _Attempt:
    """What one check has learned so far; builds its capture row and schedule update."""

    source: Source
    started: datetime
    t0: float = field(default_factory=time.monotonic)
    fetched: FetchResult | None = None
    raw_digest: str | None = None
    encoding: str | None = None

    def capture(self, outcome: str, error: Exception | None = None) -> CaptureRecord:
        f = self.fetched
        return CaptureRecord(
            source_id=self.source.id,
            started_at=self.started,
            duration_ms=int((time.monotonic() - self.t0) * 1000),
            outcome=outcome,
            http_status=f.status if f else getattr(error, "status", None),
            final_url=f.final_url if f else None,
            content_type=f.content_type if f else None,
            bytes=len(f.body) if f else None,
            raw_digest=self.raw_digest,
            encoding=self.encoding,
            headers=f.headers if f else None,
            attempts=f.attempts if f else getattr(error, "attempts", 1),
            error_class=type(error).__name__ if error else None,
            error_message=str(error)[:2000] if error else None,
        )

    def success(self) -> SourceUpdate:
        assert self.fetched is not None
        return SourceUpdate(
            next_check_at=schedule.next_after_success(self.started, self.source.interval_seconds),
            last_checked_at=self.started,
            consecutive_failures=0,
            etag=self.fetched.etag,
            last_modified=self.fetched.last_modified,
            last_raw_digest=self.raw_digest,
        )

    def failure(self, error: Exception) -> SourceUpdate:
        failures = self.source.consecutive_failures + 1
        return SourceUpdate(
            next_check_at=schedule.next_after_failure(
                self.started,
                self.source.interval_seconds,
                failures,
                getattr(error, "retry_after", None),
            ),
            last_checked_at=self.started,
            consecutive_failures=failures,
        )


class _Checker:
    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        pool: Executor | None,
        options: CheckOptions,
        clock: Clock,
    ):
        self.store, self.fetcher, self.pool = store, fetcher, pool
        self.options, self.clock = options, clock

    async def run(self, source: Source) -> CheckResult:
        attempt = _Attempt(source, self.clock())
        request = FetchRequest(
            url=source.url,
            etag=source.etag,
            last_modified=source.last_modified,
            robots=source.robots,
        )
        try:
            attempt.fetched = fetched = await self.fetcher.fetch(request)
        except FetchError as exc:
            return self._failed(attempt, exc)
        if fetched.not_modified:
            return self._unchanged(attempt, "not_modified")
        attempt.raw_digest = raw_digest_of(fetched.body)
        current = self.store.current_version(source)
        if current is not None and attempt.raw_digest in (
            source.last_raw_digest,
            current.raw_digest,
        ):
            return self._unchanged(attempt, "same_bytes")
        previous_text = self.store.read_text(current) if current is not None else None
        job = PageJob(
            body=fetched.body,
            content_type=fetched.content_type,
            charset=fetched.charset,
            url=fetched.final_url,
            ignore=source.ignore,
            extract=self.options.extract,
            diff=self.options.diff,
            previous_text=previous_text,
            previous_title=current.title if current is not None else None,
            claims=self.options.claims or (),
            coverage=source.kind == "article",
            semantic=self.options.semantic,
        )
        try:
            page = await self._process(job)
        except ExtractionError as exc:
            return self._failed(attempt, exc)
        attempt.encoding = page.extracted.encoding
        digest = text_digest(page.text)
        if current is not None and current.text_digest == digest:
            return self._unchanged(attempt, "same_text")
        earlier = self.store.version_with_text(source.id, digest) if current else None
        if current is not None and earlier is not None:
            return self._reverted(attempt, current, earlier)
        extracted = page.extracted
        new = NewVersion(
            text=page.text,
            raw=fetched.body,
            title=extracted.title,
            authors=extracted.authors,
            published=extracted.published,
            updated=extracted.updated,
            site_name=extracted.site_name,
            language=extracted.language,
            final_url=fetched.final_url,
            content_type=fetched.content_type,
        )
        previous = (
            (current, previous_text) if current is not None and previous_text is not None else None
        )
        record = change_record(page.change) if page.change is not None else None
        capture = attempt.capture("new_version")
        version = self.store.add_version(
            new, capture, attempt.success(), previous, record, page.flags
        )
        return CheckResult(
            source,
            "new_version",
            version.number,
            fetched.status,
            duration_ms=capture.duration_ms,
            significance=page.change.significance if page.change else None,
        )

    async def _process(self, job: PageJob) -> PageResult:
        if self.pool is None:
            return process_page(job)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, process_page, job)

    def _reverted(self, attempt: _Attempt, current: Version, earlier: Version) -> CheckResult:
        capture = attempt.capture("reverted")
        self.store.record_revert(capture, attempt.success(), current, earlier)
        status = attempt.fetched.status if attempt.fetched else None
        return CheckResult(
            attempt.source, "reverted", earlier.number, status, duration_ms=capture.duration_ms
        )

    def _unchanged(self, attempt: _Attempt, outcome: str) -> CheckResult:
        capture = attempt.capture(outcome)
        self.store.record_capture(capture, attempt.success())
        status = attempt.fetched.status if attempt.fetched else None
        return CheckResult(attempt.source, outcome, None, status, duration_ms=capture.duration_ms)

    def _failed(self, attempt: _Attempt, exc: FetchError | ExtractionError) -> CheckResult:
        capture = attempt.capture("failed", exc)
        self.store.record_capture(capture, attempt.failure(exc))
        return CheckResult(
            attempt.source,
            "failed",
            None,
            capture.http_status,
            type(exc).__name__,
            str(exc),
            capture.duration_ms,
        )
