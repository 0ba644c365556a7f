"""Instant alerts: a message through Apprise (Slack, Matrix, Telegram, ntfy, email,
generic webhooks, ...) for each change and each flag that passes a threshold, and
for each change that made its page start or stop saying a watched phrase.

Each item is announced once: after a successful send it is recorded as sent; a
failed send is recorded with its error (``claimwatch status`` shows them) and
retried at the next pass, up to ``max_attempts``. Only items from the last
``max_age`` are considered, so turning alerts on does not replay the archive.
``serve`` runs a pass after every dispatch; ``claimwatch alerts`` runs one now. On
PostgreSQL one pass runs at a time across every worker (an advisory lock): two
workers finishing their dispatches together would otherwise both send an item.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from archiver.app.links import change_link, flag_link
from archiver.app.words import score_words
from archiver.claims.matcher import stance_unsure
from archiver.text.search import moves
from store import alerts as state
from store.leases import advisory_lock
from store.models import FlagFilter
from store.repo import Store

ALERT_LOCK = 0x636C6D61  # advisory lock key for a pass of alerts ("clma")

Notify = Callable[[list[str], str, str], None]  # (urls, title, body); raises on failure


@dataclass(frozen=True)
class AlertOptions:
    urls: tuple[str, ...] = ()
    min_significance: float = 0.5
    min_score: float = 0.7
    stances: tuple[str, ...] = ("supports", "contradicts")
    max_attempts: int = 5
    max_age: timedelta = field(default_factory=lambda: timedelta(days=1))
    web_url: str | None = None  # [web] url: each alert links to its page there
    phrases: tuple[str, ...] = ()  # an alert when a page starts or stops saying one


@dataclass
class AlertReport:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    elsewhere: bool = False  # another worker's pass was running: it sends them


class AlertFailed(Exception):
    pass


def unreadable_alert_url(url: str) -> str | None:
    """Why Apprise cannot send to ``url``, or None. The reason names only the address's
    scheme: the rest often holds a token."""
    try:
        import apprise
    except ImportError:
        return "alerts need Apprise: pip install 'claimwatch[alerts]'"
    quiet = logging.getLogger("apprise")  # which would log the whole address, token and all
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        if apprise.Apprise().add(url):
            return None
    finally:
        quiet.setLevel(level)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    shown = f"a {scheme}:// address" if scheme.isalnum() else "an address without a scheme"
    return (
        f"{shown} that Apprise does not understand; see its list of services "
        "(docs/config.md, [alerts])"
    )


def apprise_notify(urls: list[str], title: str, body: str) -> None:
    """Send through Apprise; raise AlertFailed when a service did not take it."""
    try:
        import apprise
    except ImportError:
        raise AlertFailed("alerts need Apprise: pip install 'claimwatch[alerts]'") from None
    sender = apprise.Apprise()
    for url in urls:
        if not sender.add(url):
            raise AlertFailed("an alert URL is not one Apprise understands (see docs/config.md)")
    if not sender.notify(title=title, body=body):
        raise AlertFailed(f"Apprise could not deliver to every one of {len(urls)} service(s)")


def send_pending(
    store: Store, options: AlertOptions, now: datetime, notify: Notify = apprise_notify
) -> AlertReport:
    report = AlertReport()
    if not options.urls:
        return report
    with advisory_lock(store, ALERT_LOCK) as mine:
        if not mine:
            report.elsewhere = True
            return report
        _send(store, options, now, notify, report)
    return report


def _send(
    store: Store, options: AlertOptions, now: datetime, notify: Notify, report: AlertReport
) -> None:
    """One pass: every pending item announced once, each outcome recorded at once."""
    change_ids, flag_ids = state.pending(
        store,
        options.min_significance,
        options.min_score,
        options.stances,
        now - options.max_age,
        options.max_attempts,
    )
    items: list[tuple[str, int, str, str]] = []
    for c in store.changes(ids=change_ids) if change_ids else []:
        title = f"claimwatch: {c.source_name} changed (significance {c.significance:.2f})"
        body = (
            f"{c.summary}\n{'; '.join(c.reasons[:3])}\nversions {c.from_version} -> {c.to_version}"
        )
        body += f"\n{c.source_url}"  # the page, as a flag's alert has
        link = change_link(options.web_url, c.source_id, c.from_version, c.to_version)
        body += f"\nside by side: {link}" if link else ""
        items.append(("change", c.id, title, body))
    for f in store.flags(FlagFilter(ids=tuple(flag_ids))) if flag_ids else []:
        stance = f.final_stance
        unsure = ", stance unsure" if stance_unsure(f.reasons, f.verdict) else ""
        gone = ", removed from the page" if f.removed else ""
        title = f"claimwatch: {f.claim_id} {stance} ({score_words(f.score, f.added)}{unsure}{gone})"
        body = f"{f.evidence}\n{f.source_name}, version {f.version}\n{f.source_url}"
        link = flag_link(options.web_url, f.id)
        body += f"\nreview: {link}" if link else ""
        items.append(("flag", f.id, title, body))
    if options.phrases:
        items += _phrase_items(store, options, now)
    for kind, item_id, title, body in items:
        try:
            notify(list(options.urls), title, body)
        except Exception as exc:  # one failing service must not stop the others' alerts
            error = str(exc) or type(exc).__name__
            state.record(store, kind, item_id, now, error[:500])
            report.failed += 1
            report.errors.append(error)
            continue
        state.record(store, kind, item_id, now, None)
        report.sent += 1


def _phrase_items(
    store: Store, options: AlertOptions, now: datetime
) -> list[tuple[str, int, str, str]]:
    """An alert for each recent change that made its page start or stop saying a
    watched phrase; a change that moved none is recorded as read, with no alert."""
    ids = state.unchecked_changes(store, now - options.max_age, options.max_attempts)
    items = []
    for c in store.changes(ids=ids) if ids else []:
        source = store.get_source(c.source_id)
        old = store.read_text(store.get_version(source, c.from_version))
        new = store.read_text(store.get_version(source, c.to_version))
        moved = moves(old, new, options.phrases)
        if not moved:
            state.record(store, "phrase", c.id, now, None)
            continue
        what = [f'{"now" if m.said else "no longer"} says "{m.phrase}"' for m in moved]
        title = f"claimwatch: {c.source_name} {'; '.join(what)}"
        lines = []
        for m in moved:
            where = f"version {c.to_version}"
            if not m.said:
                where = f"version {c.from_version}, gone in {c.to_version}"
            lines.append(f"{m.hit.before}[{m.hit.match}]{m.hit.after} ({where})")
        body = "\n".join([*lines, c.source_url])
        link = change_link(options.web_url, c.source_id, c.from_version, c.to_version)
        body += f"\nside by side: {link}" if link else ""
        items.append(("phrase", c.id, title, body))
    return items
