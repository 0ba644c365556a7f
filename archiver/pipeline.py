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
import logging
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import chain, islice
from pathlib import Path
from typing import Protocol

from archiver.app import entries, schedule
from archiver.app.attempt import Attempt
from archiver.app.batching import Writes, each, read_ahead
from archiver.app.pool import ExtractionPool
from archiver.app.story import prepare_matching, stored_claims
from archiver.app.worker import (
    MATCH_BUDGET,
    PageJob,
    PageResult,
    SelectionJob,
    change_record,
    extract_text,
    process_page,
    selection_digest,
)
from archiver.claims.matcher import MatchSpec
from archiver.claims.rules import Claim
from archiver.claims.topic import Node, parse
from archiver.net.browser import BrowserFetcher, BrowserHost, BrowserOptions
from archiver.net.feeds import Entry, Feed, parse_feed
from archiver.net.fetch import (
    Fetcher,
    FetchOptions,
    FetchRequest,
    FetchResult,
    cache_hint,
)
from archiver.net.login import lend_login
from archiver.text.diff import DiffOptions, diff
from archiver.text.extract import ExtractOptions
from archiver.text.fingerprint import BodyHint, same_article
from archiver.text.normalize import NormalizeOptions, text_digest
from archiver.text.selection import Selector
from store.blobs import digest as raw_digest_of
from store.errors import (
    ExtractionError,
    FeedError,
    FetchError,
    RobotsDisallowed,
    StoreError,
    Superseded,
    TooSlow,
)
from store.kinds import kind_of
from store.models import (
    ChangeRecord,
    EntryDecision,
    FlagRecord,
    NewVersion,
    Outcome,
    Source,
    Version,
    mask_url,
)
from store.repo import Store

Clock = Callable[[], datetime]
log = logging.getLogger("claimwatch.check")


@dataclass(frozen=True)
class CheckOptions:
    fetch: FetchOptions = field(default_factory=FetchOptions)
    extract: ExtractOptions = field(default_factory=ExtractOptions)
    diff: DiffOptions = field(default_factory=DiffOptions)
    processes: int | None = None  # extraction workers; None: default_workers(); 0: in-process
    claims: tuple[Claim, ...] | None = None  # None: the store's active claims
    default_interval: int = schedule.DEFAULT_INTERVAL  # for sources without their own
    max_new_per_poll: int = 50  # coverage sources one feed poll may create; the rest wait
    max_cpu_seconds: float = 60.0  # extracting and comparing one page; then TooSlow
    match_budget: int = MATCH_BUDGET  # sentences of one page matched against the claims
    semantic: bool = False  # score claims with the embedding model (the CLI turns it on)
    claims_model: str | None = None  # a trained claims model; None: the shipped one
    browser: BrowserOptions = field(default_factory=BrowserOptions)  # for --browser sources


@dataclass(frozen=True)
class CheckResult:
    source: Source
    outcome: Outcome
    version: int | None = None
    status: int | None = None
    error_class: str | None = None
    error: str | None = None
    duration_ms: int = 0
    significance: float | None = None
    discovered: tuple[Source, ...] = ()  # coverage a feed check found (checked in the same run)
    flags: int = 0  # claims flags this check raised
    fetch_ms: int | None = None  # the fetch alone (retries included)
    extracted: bool = False  # a full extraction ran (not the article fingerprint alone)

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


class Renderer(Protocol):
    """What renders a --browser source: a BrowserFetcher, or a BrowserHost kept by serve."""

    async def fetch(
        self, request: FetchRequest, block_third_party: bool = False
    ) -> FetchResult: ...


def check(
    store: Store,
    sources: Iterable[Source],
    options: CheckOptions | None = None,
    clock: Clock | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
    pool: ExtractionPool | None = None,
    browser: BrowserHost | None = None,
    keep: bool = True,
) -> list[CheckResult]:
    """Check the sources (synchronous entry point for the CLI and jobs). Without a
    ``pool``, a run of several sources starts its own and closes it at the end; without
    a ``browser`` host, a run that renders a page starts Chromium for itself.

    ``sources`` may be a lazy iterable (``Store.iter_sources``): it is read as checks
    start, so a run over any number of sources holds only the ones in flight. With
    ``keep=False`` the results are only passed to ``on_result``, not returned."""
    it = iter(sources)
    head = list(islice(it, 2))
    if not head:
        return []
    return asyncio.run(
        check_async(store, chain(head, it), options, clock, on_result, pool, browser, keep)
    )


async def check_async(
    store: Store,
    sources: Iterable[Source],
    options: CheckOptions | None = None,
    clock: Clock | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
    pool: ExtractionPool | None = None,
    host: BrowserHost | None = None,
    keep: bool = True,
) -> list[CheckResult]:
    options = options or CheckOptions()
    if options.claims is None:
        options = replace(options, claims=stored_claims(store))
    clock = clock or (lambda: datetime.now(UTC))
    it = iter(sources)
    head = list(islice(it, 2))
    with ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(ExtractionPool(options.processes if len(head) > 1 else 0))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="claimwatch-")))
        matching = (
            prepare_matching(store, options.claims, options.claims_model, workdir, clock())
            if options.semantic and options.claims
            else MatchSpec(semantic=False)
        )
        async with (
            Fetcher(options.fetch, now=clock) as fetcher,
            BrowserFetcher(options.browser) as own,  # starts Chromium only when needed
        ):
            browser: Renderer = host if host is not None else own
            writes = Writes(store)
            checker = _Checker(
                store,
                fetcher,
                pool.executor(),
                options,
                clock,
                writes,
                matching,
                browser,
                helper=pool.helper if pool.helps else None,
                backlog=2 * pool.processes,
            )

            async def one(source: Source) -> CheckResult:
                result = await checker.run(source)
                if on_result is not None:
                    on_result(result)  # after its rows are committed
                return result

            # At most this many checks hold a page in memory at once, whatever N is.
            limit = 2 * options.fetch.concurrency
            try:
                stream = read_ahead(chain(head, it), store, fetcher, clock, checker.known)
                results, found = await each(stream, one, limit, keep)
                more, _ = await each(found, one, limit, keep)
                results += more
            finally:
                writes.flush()
                fetched = fetcher.robots_fetched
                store.save_robots(
                    {o: (e.status, e.body, e.expires_at) for o, e in fetched.items()}, clock()
                )
            return results


class _Checker:
    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        pool: Executor | None,
        options: CheckOptions,
        clock: Clock,
        writes: Writes,
        matching: MatchSpec,
        browser: Renderer,
        helper: Callable[[], Executor | None] | None = None,
        backlog: int = 2,
    ):
        self.store, self.fetcher, self.pool = store, fetcher, pool
        # First extractions beyond ``backlog`` queued for the pool may go to the helper.
        self.helper, self.backlog = helper, backlog
        self.queued: Counter[Executor] = Counter()  # jobs sent to each and not yet back
        self.options, self.clock, self.writes = options, clock, writes
        self.matching = matching
        self.browser = browser  # --browser sources render here (the run's, or serve's host)
        self.known: dict[int, Version] = {}  # current versions read ahead (_read_ahead)

    async def run(self, source: Source) -> CheckResult:
        """Check one source. Whatever goes wrong inside (a hostile header, a bug that a
        page's bytes trigger, a value the database refuses) ends as this source's
        failed capture: one source never ends the run. A ``StoreError`` (busy, damaged,
        full) is the store's, not the source's, and raises; so does a store that cannot
        take even the failed capture."""
        attempt = Attempt(source, self.clock(), self.options.default_interval)
        if source.current_version_id is not None:
            attempt.current = self.known.pop(source.current_version_id, None)
        try:
            return await self._check(attempt)
        except StoreError:
            raise
        except Exception as exc:
            log.debug("check of %s failed unexpectedly", source.name, exc_info=True)
            attempt.raw_headers = False  # the headers may be what the store refused
            return await self._failed(attempt, exc)

    async def _check(self, attempt: Attempt) -> CheckResult:
        source = attempt.source
        # A feed whose last poll left new entries waiting is read again even if unchanged.
        kind = kind_of(source.kind)
        waiting = kind.entries and bool((source.body_hint or {}).get("waiting"))
        request = FetchRequest(
            url=source.url,
            etag=None if waiting else source.etag,
            last_modified=None if waiting else source.last_modified,
            robots=source.robots,
            accept=kind.accepts,
            allow_private=source.allow_private,
            allow_redirects_anywhere=source.allow_redirects_anywhere,
        )
        try:
            if source.browser and kind.renders:
                attempt.fetched = fetched = await self._render(request, source)
            else:
                attempt.fetched = fetched = await self.fetcher.fetch(request)
        except FetchError as exc:
            return await self._failed(attempt, exc)
        if fetched.not_modified:
            return await self._unchanged(attempt, "not_modified")
        attempt.raw_digest = raw_digest_of(fetched.body)
        # The common cases first, from the source row alone (no query). A source whose
        # selector was just changed reads even the same bytes: its new selection is news.
        has_version = source.current_version_id is not None and not waiting
        same_bytes = has_version and not source.selector_changed
        if same_bytes and attempt.raw_digest == source.last_raw_digest:
            return await self._unchanged(attempt, "same_bytes")
        selector = Selector(source.select, source.exclude) if source.select else None
        hint = BodyHint.from_dict(source.body_hint) if selector is None else None
        if (
            hint is not None
            and has_version
            and kind.fingerprint
            and len(fetched.body) <= self.options.extract.max_html_bytes
            and same_article(
                fetched.body, hint, NormalizeOptions(ignore=source.ignore)
            )  # a parse, a hash
        ):
            return await self._unchanged(attempt, "same_text")  # the article element is as it was
        # A source with no current version has no versions (store.writes.add_version): a
        # first check reads nothing, and the compare-and-set catches a version written since.
        current = attempt.current
        if current is None and source.current_version_id is not None:
            current = self.store.current_version(source)
        if same_bytes and current is not None and attempt.raw_digest == current.raw_digest:
            return await self._unchanged(attempt, "same_bytes")
        if (
            selector is not None
            and current is not None
            and not source.selector_changed
            and await self._same_selection(fetched, selector, source.ignore, current)
        ):
            return await self._unchanged(attempt, "same_text")  # a parse and a walk, no pool
        if kind.entries:
            return await self._feed(attempt, current)
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
            coverage=kind.coverage,
            matching=self.matching,
            cpu_limit=self.options.max_cpu_seconds,
            selector=selector,
            match_budget=self.options.match_budget,
        )
        try:
            page = await self._process(job)
        except ExtractionError as exc:
            return await self._failed(attempt, exc)
        attempt.encoding = page.extracted.encoding
        attempt.body_hint, attempt.extracted = page.body_hint, True
        if page.vectors:  # the sentences the worker embedded: never embedded again
            from archiver.claims.semantic import MODEL_NAME

            self.store.save_vectors(MODEL_NAME, page.vectors)
        if page.warning:
            attempt.notes.append(page.warning)
        digest = text_digest(page.text)
        if current is not None and current.text_digest == digest:
            return await self._unchanged(attempt, "same_text")
        earlier = self.store.version_with_text(source.id, digest) if current else None
        if current is not None and earlier is not None:
            diffed = change_record(page.change) if page.change is not None else None
            return await self._reverted(attempt, current, earlier, diffed, page.flags)
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
        flags = page.flags
        if source.selector_changed and record is not None:
            # The user changed what is watched: a new selection, not news on the page.
            record = replace(
                record, kind="selector", significance=0.0, reasons=["selector changed"]
            )
            flags = ()
        capture = attempt.capture("new_version")
        update = attempt.success(changed=current is not None)
        try:
            version = await self.writes(
                lambda b: b.add_version(new, capture, update, previous, record, flags, compare=True)
            )
        except Superseded as exc:
            return await self._superseded(attempt, exc)
        return CheckResult(
            source,
            "new_version",
            version.number,
            fetched.status,
            duration_ms=capture.duration_ms,
            significance=record.significance if record else None,
            flags=len(flags),
            fetch_ms=fetched.duration_ms,
            extracted=True,
        )

    async def _feed(self, attempt: Attempt, current: Version | None) -> CheckResult:
        """A feed's entry list is its text; unseen entries are judged and the accepted
        ones become article sources, returned to be checked in the same run."""
        fetched, source = attempt.fetched, attempt.source
        assert fetched is not None
        try:
            feed = parse_feed(fetched.body, fetched.final_url)
        except FeedError as exc:
            return await self._failed(attempt, exc)
        hints = (feed.ttl_seconds, cache_hint(fetched.headers, attempt.started))
        hint = max((h for h in hints if h), default=None)
        attempt.notes.extend(feed.notes)
        found = tuple(await self._entries(attempt, feed))
        text = feed.as_text()
        if current is not None and current.text_digest == text_digest(text):
            result = await self._unchanged(attempt, "same_text", hint)
            return replace(result, discovered=found)
        previous = (current, self.store.read_text(current)) if current is not None else None
        change = diff(previous[1], text, self.options.diff) if previous else None
        capture = attempt.capture("new_version")
        new = NewVersion(
            text=text,
            raw=fetched.body,
            title=feed.title or None,
            final_url=fetched.final_url,
            content_type=fetched.content_type,
        )
        update = attempt.success(hint=hint)
        record = change_record(change) if change else None
        try:
            version = await self.writes(
                lambda b: b.add_version(new, capture, update, previous, record, compare=True)
            )
        except Superseded as exc:
            return await self._superseded(attempt, exc)
        return CheckResult(
            source,
            "new_version",
            version.number,
            fetched.status,
            duration_ms=capture.duration_ms,
            discovered=found,
        )

    async def _entries(self, attempt: Attempt, feed: Feed) -> list[Source]:
        """Judge the entries this feed has not seen (``archiver.app.entries``); at most
        ``max_new_per_poll`` become sources per poll, and the unseen entries after that
        wait for the next poll."""
        feed_source, now = attempt.source, attempt.started
        known = self.store.known_entries(feed_source.id, [e.url for e in feed.entries])
        topic = parse(feed_source.topic) if feed_source.topic else None
        decisions: list[EntryDecision] = []
        added = waiting = 0
        for entry in feed.entries:
            if entry.url in known:
                continue
            if added >= self.options.max_new_per_poll:
                waiting += 1
                continue
            verdict = entries.judge(entry, topic, feed_source, self.options.claims or ())
            if verdict is None:  # half a match and a short summary: the article decides
                assert topic is not None
                verdict = await self._judge_article(entry, feed_source, topic)
            added += verdict[0] == "added"
            if verdict[0] != "failed":  # a failed one is judged again at the next poll
                decisions.append(entries.decision(entry, feed_source, *verdict))
        attempt.body_hint = {"waiting": str(waiting)} if waiting else {}
        if waiting:
            attempt.notes.append(
                f"{waiting} new entries wait for the next poll "
                f"(at most {self.options.max_new_per_poll} new sources a poll)"
            )
        return self.store.record_entries(feed_source.id, decisions, now) if decisions else []

    async def _judge_article(
        self, entry: Entry, feed_source: Source, topic: Node
    ) -> tuple[str, str]:
        try:
            url = lend_login(entry.url, feed_source.url)
            fetched = await self.fetcher.fetch(FetchRequest(url=url))
            _extracted, body = extract_text(
                fetched.body,
                fetched.content_type,
                fetched.charset,
                fetched.final_url,
                self.options.extract,
                (),
            )
        except Exception as exc:  # this entry's problem, never the feed's
            return "failed", f"could not read the article to decide: {exc}"
        return entries.judge_text(topic, body)

    async def _process(self, job: PageJob) -> PageResult:
        if self.pool is None:
            return process_page(job)
        executor = self._executor_for(job)
        loop = asyncio.get_running_loop()
        # The worker stops itself after cpu_limit seconds of CPU; on a loaded machine that
        # can take longer in wall time, so the wait is bounded more loosely.
        wall = job.cpu_limit * 3 + 10 if job.cpu_limit > 0 else None
        self.queued[executor] += 1
        try:
            return await asyncio.wait_for(loop.run_in_executor(executor, process_page, job), wall)
        except TimeoutError:
            raise TooSlow(f"extracting and comparing the page took over {wall:g}s") from None
        except BrokenProcessPool:
            raise ExtractionError(
                "the extraction worker died (out of memory?); the pool is restarted"
            ) from None
        finally:
            self.queued[executor] -= 1

    def _executor_for(self, job: PageJob) -> Executor:
        """The pool, or for a first extraction while the pool has a backlog, the helper
        if it has less queued (see ``ExtractionPool``)."""
        assert self.pool is not None
        if job.previous_text is None and self.helper and self.queued[self.pool] > self.backlog:
            helper = self.helper()
            if helper is not None and self.queued[helper] < self.queued[self.pool]:
                return helper
        return self.pool

    async def _reverted(
        self,
        attempt: Attempt,
        current: Version,
        earlier: Version,
        diffed: ChangeRecord | None = None,
        found: tuple[FlagRecord, ...] = (),
    ) -> CheckResult:
        capture = attempt.capture("reverted")
        update = attempt.success(changed=True)
        try:
            await self.writes(
                lambda b: b.record_revert(capture, update, current, earlier, diffed, found)
            )
        except Superseded as exc:
            return await self._superseded(attempt, exc)
        status = attempt.fetched.status if attempt.fetched else None
        return CheckResult(
            attempt.source,
            "reverted",
            earlier.number,
            status,
            duration_ms=capture.duration_ms,
            flags=len(found),
            extracted=attempt.extracted,
        )

    async def _render(self, request: FetchRequest, source: Source) -> FetchResult:
        """A --browser source: robots.txt is honoured as for any fetch, then the page is
        rendered in Chromium (no conditional GET: a rendered page has no validators)."""
        if request.robots and not await self.fetcher.robots_allow(request):
            raise RobotsDisallowed(f"robots.txt disallows {mask_url(request.url)}")
        plain = replace(request, etag=None, last_modified=None)
        return await self.browser.fetch(plain, block_third_party=source.block_third_party)

    async def _same_selection(
        self, fetched: FetchResult, selector: Selector, ignore: tuple[str, ...], current: Version
    ) -> bool:
        """Whether the page's selection is the current text (the re-check shortcut for a
        source with a selector). The parse, the walk and the normalization run in a pool
        worker, beside the extractions: in this process they made it the bottleneck of
        a re-check cycle. Any doubt is a no: the full check then records it properly."""
        if len(fetched.body) > self.options.extract.max_html_bytes:
            return False
        job = SelectionJob(fetched.body, fetched.charset, selector, ignore)
        if self.pool is None:
            return selection_digest(job) == current.text_digest
        loop = asyncio.get_running_loop()
        try:
            digest = await loop.run_in_executor(self.pool, selection_digest, job)
        except BrokenProcessPool:
            return False  # the full check meets the dead pool and says so
        return digest == current.text_digest

    async def _unchanged(
        self, attempt: Attempt, outcome: Outcome, hint: int | None = None
    ) -> CheckResult:
        capture = attempt.capture(outcome)
        update = attempt.success(hint=hint)
        await self.writes(lambda b: b.record_capture(capture, update))
        status = attempt.fetched.status if attempt.fetched else None
        return CheckResult(
            attempt.source,
            outcome,
            None,
            status,
            duration_ms=capture.duration_ms,
            extracted=attempt.extracted,
        )

    async def _superseded(self, attempt: Attempt, exc: Superseded) -> CheckResult:
        """Another check of this source (``check --all`` beside ``serve``, say) wrote
        first. This one writes a capture and nothing else: not a version, not the
        validators or fingerprint of a page state that is no longer the current one."""
        capture = replace(attempt.capture("superseded"), error_message=str(exc))
        update = replace(
            attempt.success(), etag=None, last_modified=None, last_raw_digest=None, body_hint=None
        )
        await self.writes(lambda b: b.record_capture(capture, update))
        return CheckResult(
            attempt.source,
            "superseded",
            None,
            capture.http_status,
            duration_ms=capture.duration_ms,
            extracted=attempt.extracted,
        )

    async def _failed(self, attempt: Attempt, exc: Exception) -> CheckResult:
        capture = attempt.capture("failed", exc)
        update = attempt.failure(exc)
        await self.writes(lambda b: b.record_capture(capture, update))
        return CheckResult(
            attempt.source,
            "failed",
            None,
            capture.http_status,
            type(exc).__name__,
            str(exc),
            capture.duration_ms,
        )
