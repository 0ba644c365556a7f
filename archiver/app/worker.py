"""The CPU-bound part of a check, run in a pool worker: extract, normalize, diff
against the previous text, and match the changed sentences against the claims.

Everything here is a pure function of its ``PageJob``; the pipeline sends jobs
to a process pool so that extraction does not stall the fetches.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from archiver.claims.matcher import Matcher, MatchSpec, make_matcher, match
from archiver.claims.rules import Claim, Flag
from archiver.text.diff import Change, DiffOptions, change_to_dict, diff
from archiver.text.extract import (
    Extracted,
    ExtractOptions,
    decode,
    extract,
    markup,
    refuse_large_html,
)
from archiver.text.fingerprint import locate
from archiver.text.normalize import NormalizeOptions, normalize, text_digest
from archiver.text.pdf import PDF
from archiver.text.segment import sentences
from archiver.text.selection import Selector, extract_selected, select_text
from archiver.text.shells import shell_reason
from store.errors import (
    EmptyExtraction,
    ExtractionError,
    JavaScriptShell,
    SelectorMatchedNothing,
    TooSlow,
)
from store.models import ChangeRecord, FlagRecord

# Sentences of one page a check matches against the claims, at most: a page rewritten,
# emptied or first archived whole must still be archived within the CPU limit (about
# 15-40 ms a sentence: 400 take 6-16 s of the 60).
MATCH_BUDGET = 400


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
    matching: MatchSpec = field(default_factory=lambda: MatchSpec(semantic=False))
    cpu_limit: float = 0.0  # seconds of CPU for the whole job (0: none); then TooSlow
    selector: Selector | None = None  # the source's own selection instead of extraction
    match_budget: int = MATCH_BUDGET  # sentences matched against the claims, at most


@dataclass(frozen=True)
class PageResult:
    extracted: Extracted
    text: str
    change: Change | None  # None when there is no previous text or it is identical
    flags: tuple[FlagRecord, ...] = ()
    body_hint: dict[str, str] | None = None  # where the article element is (fingerprint)
    warning: str | None = None  # kept on the capture and the source (``status`` shows it)
    vectors: dict[str, bytes] | None = None  # sentence vectors computed here (the store keeps them)


def garbled(text: str) -> str | None:
    """A warning when over a tenth of the text's letters could not be decoded (U+FFFD):
    the page's charset was likely misread, and the version is stored as it came."""
    broken = text.count("\ufffd")
    letters = sum(1 for ch in text if not ch.isspace())
    if broken >= 8 and broken * 10 > letters:
        return (
            f"{broken} of {letters} characters could not be decoded: the page's charset "
            "may be wrong or missing"
        )
    return None


def watch_parent(parent: int) -> None:
    """Pool worker initializer: exit as soon as the process that started the pool is
    gone. A pool's owner killed with SIGKILL cannot stop its workers, which would
    otherwise wait on their queue for ever (found by benchmarks/crash.py).

    Not PR_SET_PDEATHSIG: it fires when the *thread* that started the worker ends,
    and the service starts pools from short-lived scheduler threads.

    Ctrl-C reaches every process of the terminal's group, so a worker ignores SIGINT
    and its owner decides: ``serve`` finishes the running checks (the workers died
    under them, each printing a KeyboardInterrupt traceback), a command stops its
    pool and exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:  # an orphan is re-parented: notice within a second
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def extract_text(
    body: bytes,
    content_type: str | None,
    charset: str | None,
    url: str,
    options: ExtractOptions,
    ignore: tuple[str, ...],
    selector: Selector | None = None,
) -> tuple[Extracted, str]:
    """Extract (or select) and normalize: page bytes to the stable text that is archived."""
    if selector is not None and content_type == PDF:
        raise SelectorMatchedNothing(
            "a selector picks elements of an HTML page, and this one is a PDF; "
            "take it off with 'sources edit SOURCE --no-select'"
        )
    if selector is not None and markup(content_type):
        refuse_large_html(body, options)
        extracted = extract_selected(body, charset, selector)
    else:
        try:
            extracted = extract(body, content_type, charset, url, options)
        except EmptyExtraction:
            if markup(content_type) and (reason := shell_reason(body, None)):
                raise JavaScriptShell(_shell_message(reason)) from None
            raise
        if markup(content_type) and (reason := shell_reason(body, extracted.text)):
            raise JavaScriptShell(_shell_message(reason))
    text = normalize(extracted.text, NormalizeOptions(ignore=ignore))
    if not text:
        raise EmptyExtraction("nothing is left after normalization and ignore patterns")
    return extracted, text


def _shell_message(reason: str) -> str:
    return f"the page is built by JavaScript ({reason}); add the source with --browser to render it"


@contextmanager
def cpu_limit(seconds: float) -> Iterator[None]:
    """Raise ``TooSlow`` in this block once it has used ``seconds`` of CPU (ITIMER_PROF).
    Signals reach only the main thread, where a pool worker runs its jobs; elsewhere
    (a single-source check run from a service thread) the block runs unbounded."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    message = f"extracting and comparing the page took over {seconds:g}s of CPU"
    fired = False

    def expired(_signum: int, _frame: object) -> None:
        nonlocal fired
        fired = True
        raise TooSlow(message)

    def unraisable(args: sys.UnraisableHookArgs) -> None:
        # A TooSlow that landed where nothing can raise (a weakref callback, a __del__)
        # is the limit at work, not an error to print: the timer fires again.
        if not isinstance(args.exc_value, TooSlow):
            hook(args)

    # After the first expiry the timer fires again every 50 ms of CPU: a library's own
    # ``except Exception`` (trafilatura has several) may swallow one TooSlow, not all.
    previous, hook = signal.signal(signal.SIGPROF, expired), sys.unraisablehook
    sys.unraisablehook = unraisable
    signal.setitimer(signal.ITIMER_PROF, seconds, 0.05)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
        sys.unraisablehook = hook
    if fired:  # every TooSlow was swallowed and the block finished late: still too slow
        raise TooSlow(message)


def process_page(job: PageJob) -> PageResult:
    """Extract, normalize and diff against the previous text, in one trip to a worker,
    in at most ``job.cpu_limit`` seconds of CPU. The matcher's one-time set-up (the
    model, the bank, the probes) is the worker's, not the page's: it is not counted."""
    matcher = matcher_for(job.matching) if job.claims else None
    with cpu_limit(job.cpu_limit):
        return _process_page(job, matcher)


def _process_page(job: PageJob, matcher: Matcher | None) -> PageResult:
    extracted, text = extract_text(
        job.body, job.content_type, job.charset, job.url, job.extract, job.ignore, job.selector
    )
    change = None
    if job.previous_text is not None and job.previous_text != text:
        change = diff(job.previous_text, text, job.diff, job.previous_title, extracted.title)
    found: tuple[FlagRecord, ...] = ()
    vectors = None
    left = 0  # sentences the matching budget left unmatched
    if matcher is not None:
        if change is not None and job.previous_text is not None:
            found, left = flags_for_change(
                change, job.previous_text, text, job.claims, matcher, job.match_budget
            )
        elif job.previous_text is None and job.coverage:
            found, left = flags_for_coverage(text, job.claims, matcher, job.match_budget)
        drain = getattr(matcher.embedder, "drain", None)
        vectors = drain() if drain else None
    plain = not markup(job.content_type) or job.selector is not None
    located = None if plain else locate(job.body, text, NormalizeOptions(ignore=job.ignore))
    hint = located.to_dict() if located else None
    notes = [garbled(text), _unmatched(left, job.match_budget)]
    warning = "; ".join(n for n in notes if n) or None
    return PageResult(extracted, text, change, found, hint, warning, vectors)


def _unmatched(left: int, budget: int) -> str | None:
    if not left:
        return None
    return (
        f"claims: {left} sentence(s) past the first {budget} were not matched (the version "
        "is archived whole; 'claimwatch flags scan --source' matches its current text)"
    )


@dataclass(frozen=True)
class SelectionJob:
    """The re-check shortcut of a source with a selector: its page, for the digest of
    what the selector picks (sent to a pool worker, like a PageJob)."""

    body: bytes
    charset: str | None
    selector: Selector
    ignore: tuple[str, ...]


def selection_digest(job: SelectionJob) -> str | None:
    """The text digest of the page's normalized selection; None when in any doubt (a
    page the selector now misses), so that the full check records it properly."""
    try:
        html, _encoding = decode(job.body, job.charset)
        text = normalize(select_text(html, job.selector), NormalizeOptions(ignore=job.ignore))
    except ExtractionError:
        return None
    return text_digest(text)


_MATCHERS: dict[MatchSpec, Matcher] = {}


def matcher_for(spec: MatchSpec) -> Matcher:
    """The matcher for ``spec`` in this process: the model and the bank load once."""
    if spec not in _MATCHERS:
        _MATCHERS.clear()  # a new bank or model replaces the old one
        _MATCHERS[spec] = make_matcher(spec)
    return _MATCHERS[spec]


def _strongest(flags: list[FlagRecord]) -> tuple[FlagRecord, ...]:
    best: dict[str, FlagRecord] = {}
    for f in flags:
        if f.claim_id not in best or f.score > best[f.claim_id].score:
            best[f.claim_id] = f
    return tuple(sorted(best.values(), key=lambda f: -f.score))


def flags_for_change(
    change: Change,
    old_text: str,
    new_text: str,
    claims: tuple[Claim, ...],
    matcher: Matcher,
    budget: int = MATCH_BUDGET,
) -> tuple[tuple[FlagRecord, ...], int]:
    """Flags raised by a change: each added or modified sentence, read with one sentence
    of context either side (so "it" can find its Meta), must itself be the evidence.

    What an edit takes away bears on the claims too: a removed sentence (or a modified
    one whose new wording no longer bears on a claim its old wording did) is matched in
    the old text, and its flag, stored with the new version, says the page no longer
    says it (``FlagRecord.removed``). Its stance is the removed sentence's. A removal is
    left out where the change adds a sentence flagged for the same claim and stance: the
    page was reworded, and says as much as before.

    At most ``budget`` sentences are matched, in the page's order: a page rewritten or
    emptied whole must still be archived within the CPU limit. Returns the flags and how
    many changed sentences were left unmatched."""
    new_spans = [s.text for s in sentences(new_text)]
    old_spans: list[str] | None = None
    added: list[FlagRecord] = []
    removed: list[FlagRecord] = []
    left = 0
    for unit in change.units:
        if unit.layout_only or unit.kind not in ("added", "modified", "removed"):
            continue
        if budget <= 0:
            left += 1
            continue
        budget -= 1
        kept: set[str] = set()
        if unit.kind != "removed" and unit.new_at is not None:
            where = f"sentence {unit.kind} in paragraph {_paragraph(unit.new_pos)}"
            for flag in _unit_flags(new_spans, unit.new_at, unit.new, claims, matcher):
                kept.add(flag.claim)
                added.append(_record(flag, where))
        if unit.kind == "added" or unit.old_at is None or (unit.old or "").strip() in new_text:
            continue  # nothing gone (a sentence that only moved, or was repeated, stays)
        if old_spans is None:
            old_spans = [s.text for s in sentences(old_text)]
        where = f"sentence removed from paragraph {_paragraph(unit.old_pos)}: no longer on the page"
        for flag in _unit_flags(old_spans, unit.old_at, unit.old, claims, matcher):
            if flag.claim not in kept:  # reworded, and still bearing on it: not news
                removed.append(_record(flag, where, removed=True))
    # A rewrite that says as much in new sentences (the same claim and stance flagged
    # among the added ones) took nothing away from what the page says about the claim.
    said = {(f.claim_id, f.stance) for f in added}
    removed = [f for f in removed if (f.claim_id, f.stance) not in said]
    return _strongest(added) + _strongest(removed), left


def _unit_flags(
    spans: list[str], at: int, sentence: str | None, claims: tuple[Claim, ...], matcher: Matcher
) -> list[Flag]:
    """The flags a changed sentence raises itself, read with a sentence either side."""
    passage = "".join(spans[max(0, at - 1) : at + 2])
    target = (sentence or "").strip()
    return [f for f in match(passage, claims, matcher, focus=target) if f.evidence == target]


def _paragraph(pos: tuple[int, int] | None) -> str:
    return str(pos[0]) if pos else "?"


def _record(flag: Flag, where: str, removed: bool = False) -> FlagRecord:
    reasons = [where, *flag.reasons]
    return FlagRecord(flag.claim, flag.stance, flag.score, flag.evidence, reasons, True, removed)


def flags_for_coverage(
    text: str, claims: tuple[Claim, ...], matcher: Matcher, budget: int = MATCH_BUDGET
) -> tuple[tuple[FlagRecord, ...], int]:
    """Flags raised by a new article: each paragraph matched against the claims, the
    first ones up to ``budget`` sentences. Returns the flags and how many sentences were
    left unmatched."""
    found, left = [], 0
    for n, paragraph in enumerate(text.split("\n"), start=1):
        size = len(sentences(paragraph))
        if left or size > budget:  # the first paragraphs that fit, in the page's order
            left += size
            continue
        budget -= size
        found.append((n, match(paragraph, claims, matcher)))
    return whole_text_flags(found, "new coverage"), left


def whole_text_flags(
    paragraphs: Iterable[tuple[int, Sequence[Flag]]], why: str
) -> tuple[FlagRecord, ...]:
    """A whole text's flags from its paragraphs' ((number, flags) each): the strongest
    per claim, each saying which paragraph it came from. A new article's, and what
    ``flags scan`` finds in an archived text."""
    found = [
        FlagRecord(
            flag.claim,
            flag.stance,
            flag.score,
            flag.evidence,
            [f"{why}, paragraph {n}", *flag.reasons],
            from_change=False,
        )
        for n, flags in paragraphs
        for flag in flags
    ]
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
