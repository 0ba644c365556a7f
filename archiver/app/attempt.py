"""What one check records: its capture row and its source's schedule update.

``Attempt`` collects what a check learns as it goes (the response, the digests,
where the article was found, warnings) and turns it into plain rows for the
store: ``capture`` for the capture log, ``success`` or ``failure`` for the
source's next check, backoff and validators.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from archiver.app import schedule
from archiver.net.fetch import FetchResult
from archiver.text.shells import BROWSER_HINT
from store.errors import JavaScriptShell
from store.models import CaptureRecord, Outcome, Source, SourceUpdate, Version


def _one_line(text: str) -> str:
    """An error message as one line of text: no NUL (PostgreSQL refuses it), no breaks."""
    return " ".join(text.replace("\x00", " ").split())


@dataclass
class Attempt:
    """What one check has learned so far; builds its capture row and schedule update."""

    source: Source
    started: datetime
    default_interval: int = schedule.DEFAULT_INTERVAL
    t0: float = field(default_factory=time.monotonic)
    fetched: FetchResult | None = None
    current: Version | None = None  # the source's current version, if the run read it ahead
    raw_digest: str | None = None
    encoding: str | None = None
    body_hint: dict[str, str] | None = None  # where extraction found the article this time
    extracted: bool = False
    raw_headers: bool = True  # keep the response headers on the capture
    notes: list[str] = field(default_factory=list)  # warnings kept on a successful capture

    def capture(self, outcome: Outcome, error: Exception | None = None) -> CaptureRecord:
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
            headers=f.headers if f and self.raw_headers else None,
            attempts=f.attempts if f else getattr(error, "attempts", 1),
            error_class=type(error).__name__ if error else None,
            error_message=self._message(error),
        )

    def _message(self, error: Exception | None) -> str | None:
        """The error of a failed capture; on a successful one, its warnings, if any."""
        text = (str(error) or type(error).__name__) if error else "; ".join(self.notes)
        return _one_line(text)[:2000] or None

    def success(self, changed: bool = False, hint: int | None = None) -> SourceUpdate:
        """The schedule after a successful check. A change moves coverage's decay one
        stage back; ``hint`` is how long a feed asked to be left alone."""
        assert self.fetched is not None
        s = self.source
        decay_from = moved = None
        if s.decay_from is not None:
            decay_from = s.decay_from
            if changed:
                decay_from = moved = schedule.decay_after_change(s.decay_from, self.started)
        plan = schedule.plan_next(
            now=self.started,
            interval=s.interval_seconds or (None if s.decay_from else self.default_interval),
            cron=s.cron,
            coverage_from=decay_from,
            hint=hint,
        )
        options = None
        if s.selector_changed and self.extracted:  # the new selection's text is recorded
            options = {k: v for k, v in s.options.items() if k != "selector_changed"}
        return SourceUpdate(
            next_check_at=plan.next_check_at,
            last_checked_at=self.started,
            consecutive_failures=0,
            etag=self.fetched.etag,
            last_modified=self.fetched.last_modified,
            last_raw_digest=self.raw_digest,
            retire=plan.retire,
            decay_from=moved,
            body_hint=self.body_hint,
            warning=self._message(None),
            options=options,
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
            # Kept on the source, so status and sources list say what to do about it.
            warning=BROWSER_HINT if isinstance(error, JavaScriptShell) else None,
        )
