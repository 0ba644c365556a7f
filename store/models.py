"""Plain data passed between the pipeline and the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from store.kinds import KindName, Origin


def _login_part(url: str) -> tuple[str, str, str, str] | None:
    """(scheme, user information, host, the rest) of a URL with user information, else
    None. Parsed by hand: the authority ends at the first '/', '?' or '#' after the
    scheme, and the user information at the *last* '@' before the host, so a raw '@'
    in a password belongs to the password (as httpx reads it)."""
    scheme, sep, rest = url.partition("://")
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    if not sep or not at:
        return None
    return scheme, userinfo, host, rest[end:]


def link_url(url: str) -> str:
    """The URL without any user information, for a link (an ``href``): a browser
    that follows it asks for the login itself rather than send ``***`` as the
    password. ``mask_url``'s form is for reading."""
    parts = _login_part(url)
    if parts is None:
        return url
    scheme, _userinfo, host, tail = parts
    return f"{scheme}://{host}{tail}"


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``: how a database URL or a source's
    URL is shown (listings, messages, the web view, digests, exports), so a password
    in it never leaves; a raw '@' in a password is masked whole (``_login_part``)."""
    parts = _login_part(url)
    if parts is None:
        return url
    scheme, userinfo, host, tail = parts
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}{tail}"


Outcome = Literal[
    "new_version",
    "not_modified",
    "same_bytes",
    "same_text",
    "reverted",
    "superseded",  # another check of the same source wrote first; this one wrote nothing
    "failed",
]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)


@dataclass(frozen=True)
class SourceSpec:
    """What a user (or a seeds file) asks to watch."""

    url: str
    kind: KindName = "page"
    label: str | None = None
    tags: tuple[str, ...] = ()
    interval_seconds: int | None = None
    cron: str | None = None
    ignore: tuple[str, ...] = ()  # regexes removed from the text before comparing
    robots: bool = True  # honour robots.txt
    origin: Origin = "user"
    topic: str | None = None  # feeds: the topic query entries must match
    match_claims: bool = False  # feeds: also accept entries that bear on a claim
    found_by: int | None = None  # the feed that found this source
    entry: dict[str, Any] | None = None  # the feed entry it came from
    allow_private: bool = False  # may reach loopback/private addresses (explicit sources only)
    allow_redirects_anywhere: bool = False  # ... and so may its redirects to other hosts
    select: str | None = None  # CSS or XPath: watch only these elements (no extraction)
    exclude: tuple[str, ...] = ()  # ... minus these
    browser: bool = False  # render in headless Chromium (pages built by JavaScript)
    block_third_party: bool = False  # ... refusing requests to other sites


@dataclass(frozen=True)
class Source:
    id: int
    url: str
    kind: KindName
    label: str | None
    tags: list[str]
    origin: Origin
    found_by: int | None
    interval_seconds: int | None
    cron: str | None
    options: dict[str, Any]
    etag: str | None
    last_modified: str | None
    last_raw_digest: str | None
    next_check_at: datetime | None
    last_checked_at: datetime | None
    consecutive_failures: int
    created_at: datetime
    retired_at: datetime | None
    current_version_id: int | None = None
    decay_from: datetime | None = None
    body_hint: dict[str, Any] | None = None  # where the article was found (fingerprint)
    warning: str | None = None  # the last successful check's warning, if any

    @property
    def shown_url(self) -> str:
        """The URL as shown anywhere but the fetcher: any password in it masked."""
        return mask_url(self.url)

    @property
    def name(self) -> str:
        return self.label or self.shown_url

    @property
    def ignore(self) -> tuple[str, ...]:
        return tuple(self.options.get("ignore", ()))

    @property
    def robots(self) -> bool:
        return bool(self.options.get("robots", True))

    @property
    def allow_private(self) -> bool:
        """Only a source the user added explicitly may reach non-public addresses."""
        return self.origin != "feed" and bool(self.options.get("allow_private", False))

    @property
    def allow_redirects_anywhere(self) -> bool:
        """With ``allow_private``: redirects may reach other non-public hosts too."""
        return self.allow_private and bool(self.options.get("allow_redirects_anywhere", False))

    @property
    def topic(self) -> str | None:
        return self.options.get("topic")

    @property
    def match_claims(self) -> bool:
        return bool(self.options.get("match_claims", False))

    @property
    def select(self) -> str | None:
        """The CSS or XPath selector whose elements are the watched text, if any."""
        return self.options.get("select")

    @property
    def exclude(self) -> tuple[str, ...]:
        return tuple(self.options.get("exclude", ()))

    @property
    def browser(self) -> bool:
        return bool(self.options.get("browser", False))

    @property
    def block_third_party(self) -> bool:
        return bool(self.options.get("block_third_party", False))

    @property
    def selector_changed(self) -> bool:
        """The selector was changed since the last version: the next text is a new
        selection, not an edit of the page."""
        return bool(self.options.get("selector_changed", False))


@dataclass(frozen=True)
class Version:
    id: int
    source_id: int
    number: int
    captured_at: datetime
    text_digest: str
    raw_digest: str | None
    text_length: int
    raw_length: int | None
    title: str | None
    authors: list[str]
    published: str | None
    updated: str | None
    site_name: str | None
    language: str | None
    final_url: str | None
    content_type: str | None


@dataclass(frozen=True)
class CaptureRecord:
    """One attempt at a source, successful or not."""

    source_id: int
    started_at: datetime
    duration_ms: int
    outcome: Outcome
    http_status: int | None = None
    final_url: str | None = None
    content_type: str | None = None
    bytes: int | None = None
    raw_digest: str | None = None
    encoding: str | None = None
    headers: dict[str, str] | None = None
    attempts: int = 1
    error_class: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class SourceUpdate:
    """How a source's scheduling and HTTP state move after a check."""

    next_check_at: datetime | None
    last_checked_at: datetime
    consecutive_failures: int
    etag: str | None = None
    last_modified: str | None = None
    last_raw_digest: str | None = None
    retire: bool = False  # coverage that aged out: stop checking it
    decay_from: datetime | None = None  # coverage that changed: its schedule steps back
    body_hint: dict[str, Any] | None = None  # a new article location (None: keep the old)
    warning: str | None = None  # this check's warning; None clears the last one
    options: dict[str, Any] | None = None  # the source's options replaced (None: kept)


@dataclass(frozen=True)
class EntryDecision:
    """What became of one new feed entry."""

    url: str
    title: str
    published: str | None
    summary: str
    decision: str  # added | known | off_topic | failed
    reason: str
    spec: SourceSpec | None = None  # for "added": the source to create


@dataclass(frozen=True)
class NewVersion:
    """A distinct text state to archive, with its raw body and metadata."""

    text: str
    raw: bytes | None
    title: str | None = None
    authors: tuple[str, ...] = ()
    published: str | None = None
    updated: str | None = None
    site_name: str | None = None
    language: str | None = None
    final_url: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class ChangeRecord:
    """A computed change to store beside the version it leads to (plain JSON-able data)."""

    kind: str  # edit | revert
    significance: float
    summary: str
    reasons: list[str]
    stats: dict[str, Any]
    units: list[dict[str, Any]]


@dataclass(frozen=True)
class StoredChange:
    id: int
    source_id: int
    source_name: str
    from_version: int
    to_version: int
    kind: str
    created_at: datetime
    significance: float
    summary: str
    reasons: list[str]
    stats: dict[str, Any]
    units: list[dict[str, Any]]
    source_url: str = ""


@dataclass(frozen=True)
class FlagRecord:
    """A claims flag to store with the version (and change) whose text raised it."""

    claim_id: str
    stance: str
    score: float
    evidence: str
    reasons: list[str]
    from_change: bool = True  # raised by a change's units, not by a first version
    removed: bool = False  # raised by a sentence the change removed: the page no longer says it


# The reason a flag the reviewer added carries (``store.claims.add``), in place of the
# matcher's.
ADDED = "added by the reviewer: the matcher had not flagged this sentence"


@dataclass(frozen=True)
class FlagFilter:
    """Which flags a listing returns (``Store.flags``): each field set narrows it, and
    the defaults keep every flag."""

    claim_id: str | None = None
    stance: str | None = None
    since: datetime | None = None  # raised at or after
    min_score: float = 0.0
    source_id: int | None = None
    limit: int | None = None  # the newest this many
    ids: tuple[int, ...] | None = None
    unreviewed: bool = False  # only flags without a verdict
    removed: bool | None = None  # True: only flags of removed sentences; False: the others
    before: tuple[datetime, int] | None = None  # only flags listed after this (time, id)


@dataclass(frozen=True)
class StoredFlag:
    id: int
    claim_id: str
    stance: str
    score: float
    evidence: str
    reasons: list[str]
    status: str
    created_at: datetime
    source_id: int
    source_name: str
    source_url: str
    version: int
    title: str | None
    change_id: int | None
    verdict: str | None = None  # confirmed | rejected, once reviewed
    verdict_stance: str | None = None
    removed: bool = False  # an edit took the sentence away: the version no longer says it

    @property
    def final_stance(self) -> str:
        """The reviewer's stance when they gave one, else the matcher's."""
        return self.verdict_stance or self.stance

    @property
    def added(self) -> bool:
        """Whether the reviewer flagged the sentence (``flags add``): then its score of
        1.00 is not the matcher's, and is shown as "added by a reviewer"."""
        return ADDED in self.reasons


@dataclass(frozen=True)
class ClaimRow:
    id: str
    first: str  # the claim's first statement (the table's column "en", named in 0003)
    second: str  # its second, or "" (column "ar")
    data: dict[str, Any]
    active: bool
    supports: int = 0
    contradicts: int = 0
    mentions: int = 0
    removed: int = 0  # flags raised by sentences edits removed (not under their stance)
    latest: datetime | None = None

    @property
    def statements(self) -> list[tuple[str, str]]:
        """(language, text) of each statement, as the claims file gives them."""
        given = self.data.get("statements") if isinstance(self.data, dict) else None
        if given:
            return [(str(lang), str(text)) for lang, text in given]
        return [("und", text) for text in (self.first, self.second) if text]


@dataclass(frozen=True)
class StoreStatus:
    sources: int
    versions: int
    captures: int
    failed_captures: int
    blob_bytes: int
    failing: list[Source] = field(default_factory=list)
    next_due: list[Source] = field(default_factory=list)
    warned: list[Source] = field(default_factory=list)  # sources whose last check warned
    approximate: bool = False  # some counts are PostgreSQL's estimates (large tables)


def source_from_row(row: Any) -> Source:
    """A ``sources`` row (a mapping) as a Source."""
    return Source(**{k: row[k] for k in Source.__dataclass_fields__})


def version_from_row(row: Any) -> Version:
    """A ``versions`` row (a mapping) as a Version."""
    return Version(**{k: row[k] for k in Version.__dataclass_fields__})
