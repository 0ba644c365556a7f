"""Composing the email digest (pure): gathered items in, subject + text + HTML out.

Sections, each ordered by significance (or score) and capped: claims with new
evidence for or against them; changed sources with the top passages of each
diff (rendered like ``diff --format html``, shortened); the watched phrases that
pages started or stopped saying; new coverage found by feeds; sources failing for
several checks in a row. What the caps leave out is
counted, with the command that shows it. Both parts come from Jinja2
templates; the HTML one autoescapes everything and uses inline styles only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from jinja2 import Environment, PackageLoader

from archiver.app.links import change_link, flag_link, story_link
from archiver.app.words import counted, score_words
from archiver.text.diff import Change
from archiver.text.render import Header, Hunk, RenderOptions, hunks, plain_line
from archiver.text.search import Hit
from archiver.text.terminal import terminal_safe
from store.models import link_url

_HTML = Environment(loader=PackageLoader("archiver", "templates"), autoescape=True)
_HTML.filters["link"] = link_url  # an href never carries a login, even masked
# The text part is not HTML: escaping would show "&amp;" to the reader. Page text
# is made safe for it by ``terminal_safe`` instead (no control characters).
_TEXT = Environment(loader=PackageLoader("archiver", "templates"), autoescape=False)
_RTL = re.compile(r"[\u0590-\u08ff]")


@dataclass(frozen=True)
class ChangeItem:
    id: int
    source: str
    url: str
    title: str | None
    from_version: int
    to_version: int
    captured_at: datetime
    change: Change
    new_text: str
    source_id: int | None = None  # for the link to the web view


@dataclass(frozen=True)
class FlagItem:
    id: int
    claim_id: str
    claim: str  # the claim's statement
    stance: str
    score: float
    evidence: str
    source: str
    url: str
    title: str | None
    version: int
    captured_at: datetime
    verdict: str | None = None  # the reviewer's: confirmed | rejected (None: not reviewed)
    unsure: bool = False  # the claim had no examples: the stance is a guess (matcher.UNSURE)
    added: bool = False  # the reviewer flagged it (flags add): its score is not the matcher's
    removed: bool = False  # an edit took the sentence away: the page no longer says it


@dataclass(frozen=True)
class PhraseItem:
    """A watched phrase a change made its page start (``said``) or stop saying, with
    the words around it in the version that says it."""

    phrase: str
    said: bool
    source: str
    url: str
    from_version: int
    to_version: int
    captured_at: datetime
    hit: Hit
    source_id: int | None = None  # for the link to the web view


@dataclass(frozen=True)
class CoverageItem:
    id: int
    url: str
    title: str
    feed: str
    found_at: datetime


@dataclass(frozen=True)
class FailingItem:
    source: str
    url: str
    failures: int
    error: str | None


@dataclass(frozen=True)
class DigestData:
    now: datetime
    since: datetime | None  # None: everything not yet covered by a sent digest
    changes: list[ChangeItem] = field(default_factory=list)
    flags: list[FlagItem] = field(default_factory=list)
    coverage: list[CoverageItem] = field(default_factory=list)
    failing: list[FailingItem] = field(default_factory=list)
    story: str = ""  # the story's summary from its claims file, shown under the header
    phrases: list[PhraseItem] = field(default_factory=list)  # [watch] phrases that moved


@dataclass(frozen=True)
class DigestOptions:
    max_changes: int = 10
    max_flags: int = 20
    max_coverage: int = 20
    max_hunks: int = 3  # passages shown per changed source
    subject_prefix: str = "[claimwatch]"
    send_empty: bool = False  # send "nothing changed" rather than nothing
    web_url: str | None = None  # [web] url: link flags and changes to the web view
    phrases: tuple[str, ...] = ()  # [watch] phrases: the pages that started or stopped saying one


@dataclass(frozen=True)
class Composed:
    subject: str
    text: str
    html: str
    empty: bool
    counts: dict[str, int]
    left_out: dict[str, int]


def header_safe(text: str, limit: int = 200) -> str:
    """Text fit for a mail header: one line, no control characters, bounded length."""
    text = terminal_safe(text.replace("\r", " ").replace("\n", " "))
    text = "".join(ch for ch in text if ch.isprintable())
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_rtl(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(bool(_RTL.match(ch)) for ch in letters) > len(letters) / 2


@dataclass(frozen=True)
class _ShownChange:
    item: ChangeItem
    header: Header
    hunks: list[Hunk]
    more: int
    lines: list[str]  # the plain-text rendering
    rtl: bool


def compose(data: DigestData, options: DigestOptions | None = None) -> Composed:
    options = options or DigestOptions()
    # A reviewer's rejection removes a flag; a confirmation keeps it (with their stance).
    evidence = [
        f for f in data.flags if f.stance in ("supports", "contradicts") and f.verdict != "rejected"
    ]
    evidence.sort(key=lambda f: (-f.score, f.captured_at))
    claims: dict[str, list[FlagItem]] = {}
    for f in evidence[: options.max_flags]:
        claims.setdefault(f.claim_id, []).append(f)
    changes = sorted(data.changes, key=lambda c: (-c.change.significance, c.captured_at))
    shown = [_show_change(c, options) for c in changes[: options.max_changes]]
    coverage = sorted(data.coverage, key=lambda c: c.found_at, reverse=True)[: options.max_coverage]
    left_out = {
        "flags": max(0, len(evidence) - options.max_flags),
        "changes": max(0, len(changes) - options.max_changes),
        "coverage": max(0, len(data.coverage) - options.max_coverage),
    }
    counts = {
        "changes": len(changes),
        "flags": len(evidence),
        "coverage": len(data.coverage),
        "failing": len(data.failing),
    }
    since = data.since.strftime("%Y-%m-%dT%H:%M") if data.since else None
    order = {phrase: n for n, phrase in enumerate(options.phrases)}  # as the user listed them
    context = {
        "data": data,
        "claims": claims,
        "changes": shown,
        "coverage": coverage,
        "phrases": sorted(data.phrases, key=lambda p: (order.get(p.phrase, 0), p.captured_at)),
        "failing": data.failing,
        "counts": counts,
        "left_out": left_out,
        "since": since,
        "is_rtl": is_rtl,
        "safe": terminal_safe,
        "story_link": story_link(options.web_url),
        "review_link": lambda f: flag_link(options.web_url, f.id),
        "compare_link": lambda c: (
            change_link(options.web_url, c.source_id, c.from_version, c.to_version)
            if c.source_id is not None
            else None
        ),
    }
    empty = not (changes or evidence or data.coverage or data.failing)
    return Composed(
        subject=_subject(counts, evidence, options),
        text=tidy_text(_TEXT.get_template("digest.txt.j2").render(**context)),
        html=_HTML.get_template("digest.html.j2").render(**context),
        empty=empty,
        counts=counts,
        left_out=left_out,
    )


def _show_change(item: ChangeItem, options: DigestOptions) -> _ShownChange:
    header = Header(
        item.source, f"version {item.from_version}", f"version {item.to_version}", item.url
    )
    all_hunks = hunks(item.change, item.new_text, RenderOptions(context=0, color=False))
    top = sorted(
        all_hunks, key=lambda h: -max((r.unit.significance for r in h.rows if r.unit), default=0)
    )
    kept = sorted(top[: options.max_hunks], key=all_hunks.index)
    lines = [plain_line(r) for h in kept for r in h.rows]
    return _ShownChange(
        item, header, kept, len(all_hunks) - len(kept), lines, is_rtl(item.new_text)
    )


def tidy_text(text: str) -> str:
    """The plain-text part with one blank line between blocks, whatever sections the
    template left empty, no trailing spaces, and one newline at the end."""
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def _subject(counts: dict[str, int], evidence: list[FlagItem], options: DigestOptions) -> str:
    if not (counts["changes"] or counts["flags"] or counts["coverage"] or counts["failing"]):
        body = "nothing changed"
    else:
        parts = [
            counted(counts["changes"], "change"),
            counted(counts["flags"], "flag"),
        ]
        if counts["coverage"]:
            parts.append(counted(counts["coverage"], "new article"))
        body = ", ".join(parts)
        if evidence:
            top = evidence[0]
            how = score_words(top.score, top.added) + (", removed" if top.removed else "")
            body = f"{top.claim_id} {top.stance} ({how}): {top.title or top.source} | {body}"
    return header_safe(f"{options.subject_prefix} {body}".strip(), 250)
