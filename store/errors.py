"""Every error claimwatch raises on purpose, in one hierarchy.

::

    ClaimwatchError                 base; ``exit_code`` is what the CLI exits with
    ├── UsageError                  bad input from the user (exit 2)
    │   ├── ConfigError             a malformed seeds/config file (names file, line, field)
    │   ├── NotFoundError           a SOURCE, version or claim that does not exist
    │   │   └── SourceNotFound      no source has this id, URL or label (``ref``)
    │   ├── StoreMissing            no store at the URL: run init (``url``)
    │   └── SchemaMismatch          the store's schema is not the code's (``current``, ``head``)
    │       ├── SchemaBehind        older: init migrates it
    │       └── SchemaAhead         newer: written by a newer claimwatch
    ├── FetchError                  a check could not get the page (recorded on the capture)
    │   ├── FetchTimeout            connect/read timeout or the total deadline ran out
    │   ├── ConnectFailed           DNS failure, refused or reset connection
    │   ├── HTTPStatusError         a 4xx/5xx answer (``status``, ``retry_after``)
    │   ├── TooManyRedirects        a redirect loop or chain longer than allowed
    │   ├── UnsupportedURL          a scheme other than http(s), or a malformed URL
    │   ├── BodyTooLarge            the body (decompressed) passed the size cap while streaming
    │   ├── BadResponse             a malformed answer: short body, corrupt compression
    │   ├── UnsupportedContentType  not HTML, XHTML, plain text or PDF
    │   ├── RobotsDisallowed        robots.txt forbids the URL for our User-Agent
    │   ├── BlockedAddress          the host resolves to a loopback/private/link-local address
    │   └── BrowserFailed           Chromium could not start, or died during the check
    ├── ExtractionError             the page was fetched but yielded no usable text
    │   ├── EmptyExtraction         no article text in the page or PDF (``reason``)
    │   ├── PageTooLarge            HTML over the extraction limit (extraction time grows fast)
    │   ├── TooSlow                 extracting and comparing one page ran out of its CPU time
    │   ├── SelectorMatchedNothing  a source's selector found no element (or no text) in the page
    │   ├── JavaScriptShell         the page is an app shell its scripts fill in: use --browser
    │   └── FeedError               a feed or sitemap that cannot be read
    └── StoreError                  the archive could not be read or written (exit 1)
        ├── IntegrityError          a blob's bytes do not match its digest, or a base is missing
        ├── StoreBusy               the database is locked by another process
        └── Superseded              another check of the source wrote first (compare-and-set)

A failed check is data, not a crash: the pipeline catches ``FetchError`` and
``ExtractionError`` and records them on the capture row (``error_class`` is the
class name). Only the CLI turns errors into exit codes, in ``cli.main``.
"""

from __future__ import annotations


class ClaimwatchError(Exception):
    """Base class. ``str(err)`` is one line meant for a human.

    Errors cross process boundaries (an extraction worker raises, the pipeline
    records): they pickle as their message and attributes, never by calling
    ``__init__`` again (which would prefix the message twice, or fail for the
    classes whose ``__init__`` takes data)."""

    exit_code = 1

    def __reduce__(self) -> tuple[object, ...]:
        return _rebuild, (type(self), self.args, dict(self.__dict__))


def _rebuild(
    cls: type[ClaimwatchError], args: tuple[object, ...], state: dict[str, object]
) -> ClaimwatchError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class UsageError(ClaimwatchError):
    exit_code = 2


# Python's parsers recurse: a file of 5,000 nested brackets ended a command with an
# internal RecursionError. Every reader of an outside file says this instead.
NESTED = "nested too deeply to be read (thousands of brackets or indents); is it the right file?"


class ConfigError(UsageError):
    """A seeds or config file is malformed. The message names file, line and field."""

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = path, line, field
        where = path + (f":{line}" if line is not None else "")
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {message}")


class NotFoundError(UsageError):
    pass


class SourceNotFound(NotFoundError):
    """No source has this id, URL or label (``ref``)."""

    def __init__(self, ref: str):
        self.ref = ref
        super().__init__(f"no source {ref!r}")


class StoreMissing(UsageError):
    """No claimwatch store at ``url`` (the file or the schema is not there)."""

    def __init__(self, url: str):
        self.url = url
        super().__init__(f"no claimwatch store at {url}")


class SchemaMismatch(UsageError):
    """The store's schema revision (``current``) is not the code's (``head``)."""

    def __init__(self, url: str, current: str, head: str, message: str):
        self.url, self.current, self.head = url, current, head
        super().__init__(message)


class SchemaBehind(SchemaMismatch):
    """The store is older than the code: ``init`` migrates it."""

    def __init__(self, url: str, current: str, head: str):
        super().__init__(
            url, current, head, f"store {url} is at schema {current}, the code wants {head}"
        )


class SchemaAhead(SchemaMismatch):
    """A newer claimwatch wrote the store."""

    def __init__(self, url: str, current: str, head: str):
        super().__init__(
            url,
            current,
            head,
            f"store {url} was written by a newer claimwatch (schema {current}; "
            f"this one knows up to {head})",
        )


class FetchError(ClaimwatchError):
    """A page could not be fetched. ``transient`` errors are retried within the check."""

    transient = False


class FetchTimeout(FetchError):
    transient = True


class ConnectFailed(FetchError):
    transient = True


class HTTPStatusError(FetchError):
    def __init__(self, status: int, url: str, retry_after: float | None = None, hint: str = ""):
        self.status, self.url, self.retry_after = status, url, retry_after
        super().__init__(f"HTTP {status} from {url}" + (f": {hint}" if hint else ""))

    @property
    def transient(self) -> bool:  # type: ignore[override]
        return self.status == 429 or self.status >= 500


class TooManyRedirects(FetchError):
    pass


class UnsupportedURL(FetchError):
    pass


class BodyTooLarge(FetchError):
    pass


class BadResponse(FetchError):
    transient = True  # a truncated body is often a dropped connection


class BrowserFailed(FetchError):
    """The browser fetcher could not render the page: Chromium did not start, or died
    mid-check (that check fails alone; the next starts a new browser)."""


class UnsupportedContentType(FetchError):
    pass


class RobotsDisallowed(FetchError):
    pass


class BlockedAddress(FetchError):
    pass


class ExtractionError(ClaimwatchError):
    pass


class EmptyExtraction(ExtractionError):
    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"no article text found: {reason}")


class PageTooLarge(ExtractionError):
    pass


class JavaScriptShell(ExtractionError):
    """The fetched HTML is a JavaScript app's shell (an empty root element, or an
    "enable JavaScript" notice): never stored as the page's text."""


class SelectorMatchedNothing(ExtractionError):
    """The source's selector found nothing: a failed capture, never an empty version."""


class FeedError(ExtractionError):
    pass


class TooSlow(ExtractionError):
    pass


class StoreError(ClaimwatchError):
    pass


class IntegrityError(StoreError):
    pass


class StoreBusy(StoreError):
    pass


class Superseded(StoreError):
    """A check compared its text against version ``expected`` (an id, or None for no
    version), but by the time it wrote, another check had made ``found`` current."""

    def __init__(self, source_id: int, expected: int | None, found: int | None):
        self.source_id, self.expected, self.found = source_id, expected, found
        super().__init__(
            f"source {source_id}: another check wrote first (current version id {found}, "
            f"this check compared against {expected})"
        )
