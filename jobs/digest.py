"""The digest job: gather what is new, compose it, record it, send it, record again.

Used by ``claimwatch digest`` and by the service's cron. Safe to run twice:
a second run finds nothing uncovered and sends nothing; a run after a crash
mid-send re-sends the same message (same Message-ID), and only then composes
what is new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

from archiver.app.digest import (
    ChangeItem,
    Composed,
    CoverageItem,
    DigestData,
    DigestOptions,
    FailingItem,
    FlagItem,
    PhraseItem,
    compose,
)
from archiver.app.files import write_file
from archiver.claims.matcher import stance_unsure
from archiver.net.mailer import (
    SendError,
    SmtpSettings,
    build_message,
    new_message_id,
    send,
    to_bytes,
)
from archiver.text.diff import change_from_dict
from archiver.text.search import moves
from store import digests as state
from store.errors import UsageError
from store.models import FlagFilter, StoredChange
from store.repo import Store


@dataclass(frozen=True)
class DigestResult:
    status: str  # sent | empty | dry-run | failed | resent
    composed: Composed | None
    message_id: str | None = None
    error: str | None = None
    files: tuple[Path, ...] = ()


def gather(
    store: Store,
    now: datetime,
    since: datetime | None,
    failing_after: int = 3,
    phrases: tuple[str, ...] = (),
) -> DigestData:
    """Items for a digest: those newer than ``since``, or (None) not yet covered; with
    ``phrases``, the changes among them that made a page start or stop saying one."""
    # A window (since) previews; otherwise exactly what no sent digest covered, asked
    # of the store by id so a digest never loads the whole history.
    change_ids, flag_ids, source_ids = (None, None, None) if since else state.uncovered_ids(store)
    claims = {c.id: c.first for c in store.claims(active_only=False)}
    change_items = [
        _change_item(store, c)
        for c in store.changes(since=since, ids=change_ids)
        if c.kind == "edit"
    ]
    flag_items = [
        FlagItem(
            id=f.id,
            claim_id=f.claim_id,
            claim=claims.get(f.claim_id, f.claim_id),
            stance=f.final_stance,
            score=f.score,
            evidence=f.evidence,
            source=f.source_name,
            url=f.source_url,
            title=f.title,
            version=f.version,
            captured_at=f.created_at,
            verdict=f.verdict,
            unsure=stance_unsure(f.reasons, f.verdict),
            added=f.added,
            removed=f.removed,
        )
        for f in store.flags(
            FlagFilter(since=since, ids=None if flag_ids is None else tuple(flag_ids))
        )
    ]
    everything = store.list_sources()
    new_sources = set(source_ids or ())
    names = {s.id: s.name for s in everything}
    coverage = [
        CoverageItem(
            id=s.id,
            url=s.shown_url,
            title=(s.options.get("entry") or {}).get("title", ""),
            feed=names.get(s.found_by, "?") if s.found_by else "?",
            found_at=s.created_at,
        )
        for s in everything
        if s.origin == "feed"
        and (s.created_at >= since if since is not None else s.id in new_sources)
    ]
    failing = [
        FailingItem(s.name, s.shown_url, s.consecutive_failures, _last_error(store, s.id))
        for s in everything
        if s.consecutive_failures >= failing_after and s.retired_at is None
    ]
    moved = [p for c in change_items for p in _phrase_items(store, c, phrases)]
    return DigestData(
        now, since, change_items, flag_items, coverage, failing, store.story_summary(), moved
    )


def _phrase_items(store: Store, item: ChangeItem, phrases: tuple[str, ...]) -> list[PhraseItem]:
    if not phrases or item.source_id is None:
        return []
    source = store.get_source(item.source_id)
    old = store.read_text(store.get_version(source, item.from_version))
    where = (item.source, item.url, item.from_version, item.to_version, item.captured_at)
    return [
        PhraseItem(m.phrase, m.said, *where, m.hit, item.source_id)
        for m in moves(old, item.new_text, phrases)
    ]


def _change_item(store: Store, stored: StoredChange) -> ChangeItem:
    source = store.get_source(stored.source_id)
    version = store.get_version(source, stored.to_version)
    change = change_from_dict(
        {
            "units": stored.units,
            "stats": stored.stats,
            "significance": stored.significance,
            "reasons": stored.reasons,
        }
    )
    return ChangeItem(
        id=stored.id,
        source=source.name,
        url=source.shown_url,
        title=version.title,
        from_version=stored.from_version,
        to_version=stored.to_version,
        captured_at=stored.created_at,
        change=change,
        new_text=store.read_text(version),
        source_id=source.id,
    )


def _last_error(store: Store, source_id: int) -> str | None:
    return next(
        (c.error_message for c in store.captures(source_id, limit=5) if c.error_message), None
    )


def run(
    store: Store,
    settings: SmtpSettings,
    now: datetime,
    *,
    send_mail: bool,
    since: datetime | None = None,
    out_dir: Path | None = None,
    options: DigestOptions | None = None,
) -> DigestResult:
    """Compose (and with ``send_mail``, send and record) one digest."""
    options = options or DigestOptions(subject_prefix=settings.subject_prefix)
    if send_mail:
        pending = state.unfinished(store)
        if pending is not None:  # a crash after sending: the same message again
            try:
                send(pending.message, settings)
            except SendError as exc:
                state.finish(store, pending.id, now, error=str(exc))
                return DigestResult("failed", None, pending.message_id, str(exc))
            state.finish(store, pending.id, now)
            return DigestResult("resent", None, pending.message_id)
    data = gather(store, now, since, phrases=options.phrases)
    composed = compose(data, options)
    message_id = new_message_id(settings)
    message = build_message(
        composed.subject, composed.text, composed.html, settings, message_id, format_datetime(now)
    )
    raw = to_bytes(message)
    files: tuple[Path, ...] = ()
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot write {out_dir}: {exc.strerror or exc}") from None
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        eml, html = out_dir / f"digest-{stamp}.eml", out_dir / f"digest-{stamp}.html"
        write_file(eml, raw)
        write_file(html, composed.html)
        files = (eml, html)
    if not send_mail:
        return DigestResult("dry-run", composed, message_id, files=files)
    if composed.empty and not options.send_empty:
        return DigestResult("empty", composed, None, files=files)
    digest_id = state.begin(
        store,
        message_id=message_id,
        subject=composed.subject,
        recipients=list(settings.recipients),
        change_ids=[c.id for c in data.changes],
        flag_ids=[f.id for f in data.flags],
        source_ids=[c.id for c in data.coverage],
        message=raw,
        now=now,
    )
    try:
        send(raw, settings)
    except SendError as exc:
        state.finish(store, digest_id, now, error=str(exc))
        return DigestResult("failed", composed, message_id, str(exc), files)
    state.finish(store, digest_id, now)
    return DigestResult("sent", composed, message_id, files=files)
