"""Commands that set up and fill the archive: init, sources, check."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from archiver.app.schedule import format_duration
from archiver.app.seeds import default_seeds_dir
from archiver.app.words import counted
from archiver.cli.base import (
    JSON_LINES,
    LIMIT,
    SEMANTIC,
    App,
    aligned,
    check_options,
    cli,
    emit_json,
    make_console,
    note_limit,
    pages,
    use_color,
    use_semantic,
    when,
)
from archiver.text.shells import BROWSER_HINT
from archiver.text.terminal import terminal_safe
from store.db import mask_url
from store.errors import UsageError
from store.kinds import USER_KINDS, kind_of
from store.models import Source

if TYPE_CHECKING:
    from archiver import pipeline


@cli.command()
@click.option(
    "--seeds",
    "seeds_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Seeds directory (sources.yaml, *.meta.yaml) [env CLAIMWATCH_SEEDS; default ./seeds]",
)
@click.option("--no-seeds", is_flag=True, help="Only create or migrate the store.")
@click.pass_obj
def init(app: App, seeds_dir: Path | None, no_seeds: bool) -> None:
    """Create or migrate the store and import the seeds. Safe to run again."""
    store = app.store(current=False)
    if no_seeds:
        store.migrate()
        click.echo(f"store ready: {mask_url(store.url)}")
        return
    # Never the checkout's own story by surprise: only --seeds, the configured seeds,
    # or ./seeds. (Outside the checkout, init once imported 25 internet sources.)
    seeds_dir = seeds_dir or default_seeds_dir(app.config.seeds, bundled=False)
    if seeds_dir is None:
        raise UsageError(
            "no seeds directory here (./seeds); pass --seeds DIR, set service.seeds, "
            "or give --no-seeds for an empty store"
        )
    from archiver.app.story import SCAN_HINT, import_seeds, load_seeds

    seeds = load_seeds(seeds_dir)  # validate everything before writing anything
    store.migrate()
    click.echo(f"store ready: {mask_url(store.url)}")
    imported = import_seeds(store, seeds, app.now)
    for label, number, created in imported.articles:
        state = f"version {number}" if created else f"unchanged (version {number})"
        click.echo(f"seed {label}: {state}")
    click.echo(f"watchlist: {len(seeds.sources)} sources from {seeds_dir / 'sources.yaml'}")
    if seeds.claims:
        click.echo(f"claims: {len(seeds.claims)} from {seeds_dir / 'claims.yaml'}")
    if imported.claims_changed:
        click.echo(terminal_safe(f"  {imported.claims_changed}: {SCAN_HINT}"))


# -- sources ------------------------------------------------------------------


@cli.group()
def sources() -> None:
    """List, add and remove watched sources."""


def _found_by(s: Source, names: dict[int, str]) -> str:
    if s.origin == "feed":
        return f"feed {names.get(s.found_by, '(removed)') if s.found_by else '(removed)'}"
    return s.origin


def _schedule(s: Source) -> str:
    if s.cron:
        return f"cron {s.cron}"
    if s.decay_from is not None and not s.interval_seconds:
        return "decaying"
    return format_duration(s.interval_seconds)


def source_row(s: Source, names: dict[int, str] | None = None) -> dict[str, Any]:
    return {
        "id": s.id,
        "label": s.label,
        "url": s.shown_url,
        "kind": s.kind,
        "origin": s.origin,
        "found_by": s.found_by,
        "found_by_name": names.get(s.found_by) if names and s.found_by else None,
        "topic": s.topic,
        "schedule": _schedule(s),
        "tags": s.tags,
        "every": format_duration(s.interval_seconds) if s.interval_seconds else None,
        "cron": s.cron,
        "ignore": list(s.ignore),
        "robots": s.robots,
        "select": s.select,
        "exclude": list(s.exclude),
        "browser": s.browser,
        "warning": s.warning,
        "next_check_at": s.next_check_at,
        "last_checked_at": s.last_checked_at,
        "consecutive_failures": s.consecutive_failures,
        "retired": s.retired_at is not None,
    }


@sources.command("list")
@LIMIT
@JSON_LINES
@click.pass_obj
def sources_list(app: App, limit: int, as_json: bool) -> None:
    """List watched sources: kind, where each came from, schedule, next check, health."""
    store = app.store()
    shown = 0
    for page in pages(store.iter_sources(limit or None)):
        names = store.source_names({s.found_by for s in page if s.found_by})
        shown += len(page)
        if as_json:
            emit_json(source_row(s, names) for s in page)
        else:
            _print_sources(page, names)
    empty = "no sources yet: add one with 'claimwatch sources add URL', or a watchlist "
    empty += "with 'claimwatch sources import FILE' or 'claimwatch init --seeds DIR'"
    note_limit(shown, limit, None if as_json else empty)


def _print_sources(rows: list[Source], names: dict[int, str]) -> None:
    cells = [("id", "label", "kind", "from", "schedule", "next check", "health", "url")]
    failing = set()
    for n, s in enumerate(rows, start=1):
        if s.retired_at is not None:
            health = "retired"
        elif s.consecutive_failures:
            hint = ": needs --browser" if s.warning == BROWSER_HINT else ""
            health = f"{s.consecutive_failures} failing{hint}"
            failing.add(n)
        else:
            health = "ok"
        cells.append(
            (
                str(s.id),
                terminal_safe(s.label or "-"),
                s.kind,
                terminal_safe(_found_by(s, names)),
                _schedule(s),
                when(s.next_check_at),
                health,
                terminal_safe(s.shown_url),
            )
        )
    color = use_color()
    for n, line in enumerate(aligned(cells, right={0})):
        click.echo(click.style(line, fg="red") if color and n in failing else line)


def _selector_options(f: Any) -> Any:
    """--select and --exclude, shared by 'sources add' and 'sources edit'."""
    f = click.option(
        "--exclude",
        "excludes",
        metavar="CSS|XPATH",
        multiple=True,
        help="With --select: leave out these elements (repeatable), e.g. an ad box.",
    )(f)
    return click.option(
        "--select",
        metavar="CSS|XPATH",
        help="Watch only these elements' text instead of the extracted article "
        "(CSS, or XPath starting with /).",
    )(f)


@sources.command("add")
@click.argument("url")
@click.option(
    "--kind",
    type=click.Choice(USER_KINDS),
    default="page",
    show_default=True,
    help="page: only its changes are matched against the claims; article: coverage, "
    "its first version is matched too; feed: its entries become article sources.",
)
@click.option("--label", help="A short name to refer to the source by.")
@click.option("--every", help="Check interval, e.g. 30s, 15m, 2h, 1d.")
@click.option("--cron", help="Check on a cron schedule instead, e.g. '0 7 * * *' (UTC).")
@click.option(
    "--ignore",
    multiple=True,
    metavar="REGEX",
    help="Text to drop before comparing versions (repeatable).",
)
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--no-robots", is_flag=True, help="Do not honour robots.txt for this source.")
@click.option(
    "--topic",
    metavar="QUERY",
    help="Feeds: entries must match, e.g. 'meta AND (llama OR \"open source\") -cpp'.",
)
@click.option(
    "--match-claims", is_flag=True, help="Feeds: also accept entries that bear on a claim."
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Let this source's host be a loopback/private address (an intranet page, a local "
    "server). Never a cloud metadata address.",
)
@click.option(
    "--allow-redirects-anywhere",
    is_flag=True,
    help="With --allow-private: its redirects may reach other private hosts too.",
)
@_selector_options
@click.option(
    "--browser",
    is_flag=True,
    help="Render the page in headless Chromium first (a page built by JavaScript); "
    "needs pip install 'claimwatch[browser]' and the system's chromium.",
)
@click.option(
    "--block-third-party",
    is_flag=True,
    help="With --browser: refuse the page's requests to other sites (ads, trackers).",
)
@click.pass_obj
def sources_add(
    app: App,
    url: str,
    kind: str,
    label: str | None,
    every: str | None,
    cron: str | None,
    ignore: tuple[str, ...],
    tags: tuple[str, ...],
    no_robots: bool,
    topic: str | None,
    match_claims: bool,
    allow_private: bool,
    allow_redirects_anywhere: bool,
    select: str | None,
    excludes: tuple[str, ...],
    browser: bool,
    block_third_party: bool,
) -> None:
    """Watch URL. A feed (RSS, Atom, or a sitemap) turns its matching entries into
    article sources, rechecked often at first and less as they age."""
    from archiver.app.seeds import spec_from_mapping  # the one parser sources.yaml uses too

    if allow_redirects_anywhere and not allow_private:
        raise UsageError("--allow-redirects-anywhere goes with --allow-private")
    item: dict[str, Any] = {"url": url, "kind": kind, "robots": not no_robots}
    for key, value in (
        ("label", label),
        ("every", every),
        ("cron", cron),
        ("ignore", list(ignore)),
        ("tags", list(tags)),
        ("topic", topic),
        ("match_claims", match_claims),
        ("select", select),
        ("exclude", list(excludes)),
        ("browser", browser),
        ("block_third_party", block_third_party),
    ):
        if value:
            item[key] = value
    spec = replace(
        spec_from_mapping(item, "sources add"),
        origin="user",
        allow_private=allow_private,
        allow_redirects_anywhere=allow_redirects_anywhere,
    )
    _reachable(spec.url, allow_private or app.config.allow_private)
    source_id = app.store().add_source(spec, app.now)
    click.echo(terminal_safe(f"added source {source_id}: {label or mask_url(url)}"))


def _reachable(url: str, private_allowed: bool) -> None:
    """Refuse a URL whose host is an address the fetcher will never reach, rather than
    add a source whose every check fails. Only a literal address (or localhost) is
    judged here; a name is judged when a check resolves it."""
    from urllib.parse import urlsplit

    from archiver.net.addresses import literal_url_kind

    host, kind = urlsplit(url).hostname, literal_url_kind(url)
    if kind == "metadata":
        raise UsageError(
            f"{host} is a link-local or cloud metadata address, which claimwatch never "
            "fetches, with --allow-private too"
        )
    if kind == "private" and not private_allowed:
        raise UsageError(
            f"{host} is a loopback or private address, which claimwatch fetches only when "
            "asked: add --allow-private (or set CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES=1)"
        )


@sources.command("edit")
@click.argument("source", metavar="SOURCE")
@_selector_options
@click.option("--no-select", is_flag=True, help="Go back to the extracted article text.")
@click.option(
    "--url",
    "new_url",
    metavar="URL",
    help="The page's new address (it moved, or the login in its URL changed); its "
    "history stays and it is checked next.",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="With --url: the new host may be a loopback/private address, as with "
    "'sources add --allow-private'.",
)
@click.pass_obj
def sources_edit(
    app: App,
    source: str,
    select: str | None,
    excludes: tuple[str, ...],
    no_select: bool,
    new_url: str | None,
    allow_private: bool,
) -> None:
    """Change what SOURCE watches: its selector, or its URL. A new selector's first
    text is recorded as a new version with the reason "selector changed", not as an
    edit of the page. Every change is checked before any is made."""
    if no_select and (select or excludes):
        raise UsageError("give --select (with --exclude), or --no-select, not both")
    if allow_private and new_url is None:
        raise UsageError("--allow-private goes with --url")
    if not (select or excludes or no_select or new_url):
        raise UsageError("nothing to change: give --url, --select, --exclude or --no-select")
    found = app.store().get_source(source)
    steps = []
    if new_url is not None:
        steps.append(_move(app, found, new_url, allow_private))
    if select or excludes or no_select:
        steps.append(_reselect(app, found, select, excludes, no_select))
    for step in steps:
        step()


def _move(app: App, found: Source, url: str, allow_private: bool) -> Callable[[], None]:
    """Check the new URL; what gives it to the source."""
    from archiver.app.seeds import spec_from_mapping  # the one parser sources.yaml uses too

    if not kind_of(found.kind).fetched:
        raise UsageError(f"{found.name} is a {found.kind}: it is not fetched, so has no URL")
    if allow_private and found.origin == "feed":
        raise UsageError(f"{found.name} was found by a feed: it never reaches a private address")
    url = spec_from_mapping({"url": url, "kind": found.kind}, "sources edit --url").url
    if url == found.url and allow_private <= found.allow_private:
        return lambda: click.echo(terminal_safe(f"{found.name}: its URL is unchanged"))
    _reachable(url, allow_private or found.allow_private or app.config.allow_private)

    def move() -> None:
        app.store().set_url(found.id, url, app.now, allow_private)
        click.echo(terminal_safe(f"{found.name} is now {mask_url(url)}; it is checked next"))

    return move


def _reselect(
    app: App, found: Source, select: str | None, excludes: tuple[str, ...], no_select: bool
) -> Callable[[], None]:
    """Check the new selection; what gives it to the source."""
    from archiver.text.selection import Selector, check

    store = app.store()
    if not kind_of(found.kind).renders:
        raise UsageError(
            f"{found.name} is a {found.kind}: its text is not read from HTML, no selector"
        )
    new_select = None if no_select else (select or found.select)
    if new_select is None and not no_select:
        raise UsageError("--exclude goes with --select")
    # A new --select starts without exclusions unless it brings its own.
    new_exclude = () if no_select else (excludes or (found.exclude if not select else ()))
    if new_select is not None:
        check(Selector(new_select, tuple(new_exclude)))
    if (new_select, tuple(new_exclude)) == (found.select, found.exclude):
        return lambda: click.echo(terminal_safe(f"{found.name}: unchanged"))

    def reselect() -> None:
        store.set_selector(found.id, new_select, tuple(new_exclude))
        what = f"selects {new_select!r}" if new_select else "uses the extracted article again"
        click.echo(terminal_safe(f"{found.name} {what}; the next check records its text"))

    return reselect


@sources.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "yaml", "opml", "urls"]),
    default="auto",
    show_default=True,
    help="sources.yaml, an OPML file (its feeds), or one URL a line; auto goes by the name.",
)
@click.pass_obj
def sources_import(app: App, file: Path, fmt: str) -> None:
    """Add every source in FILE, in one transaction (all or nothing). URLs already
    watched are left as they are."""
    from archiver.app.seeds import read_source_file

    specs = read_source_file(file, fmt)
    try:
        added, known = app.store().add_sources(specs, app.now)
    except UsageError as exc:  # a label another source holds: nothing was added
        raise UsageError(f"{file}: {exc}; nothing was imported") from None
    click.echo(
        terminal_safe(f"imported {counted(added, 'source')} from {file} ({known} already watched)")
    )
    if not app.config.allow_private:
        from archiver.net.addresses import literal_url_kind

        blocked = [s.url for s in specs if literal_url_kind(s.url) in ("private", "metadata")]
        if blocked:  # a file cannot allow them (sources add --allow-private can)
            shown = ", ".join(blocked[:3]) + (", ..." if len(blocked) > 3 else "")
            click.echo(
                terminal_safe(
                    f"note: {counted(len(blocked), 'source')} with a loopback, private or "
                    f"metadata address ({shown}) will not be fetched: add them with "
                    "'sources add URL --allow-private', or set CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES=1"
                ),
                err=True,
            )


@sources.command("export")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout.")
@click.pass_obj
def sources_export(app: App, out: Path | None) -> None:
    """Write the watchlist (not the seed articles or feed-found coverage) as sources.yaml,
    which 'sources import' and init's seeds read back."""
    from archiver.app.seeds import export_sources

    rows, private = [], []
    for s in app.store().iter_sources():
        if not kind_of(s.kind).user_adds or s.origin == "feed":
            continue
        if s.allow_private:
            private.append(s.name)
        row: dict[str, Any] = {"url": s.url, "kind": s.kind}
        if s.label:
            row["label"] = s.label
        if s.interval_seconds:
            row["every"] = format_duration(s.interval_seconds)
        if s.cron:
            row["cron"] = s.cron
        for key, value in (
            ("tags", list(s.tags)),
            ("ignore", list(s.ignore)),
            ("topic", s.topic),
            ("match_claims", s.match_claims or None),
            ("select", s.select),
            ("exclude", list(s.exclude)),
            ("browser", s.browser or None),
            ("block_third_party", s.block_third_party or None),
        ):
            if value:
                row[key] = value
        if not s.robots:
            row["robots"] = False
        rows.append(row)
    text = export_sources(rows)
    note = None
    if private:  # a file never opens private addresses (sources.yaml refuses the field)
        names = ", ".join(private)
        note = (
            f"{counted(len(private), 'source')} added with --allow-private ({names}): a "
            "watchlist file cannot carry that, so after importing, add them again with "
            "--allow-private, or set CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES=1"
        )
        text = "".join(f"# {line}\n" for line in textwrap.wrap(f"Note: {note}.", 86)) + text
    if out is None:
        click.echo(text, nl=False)
    else:
        from archiver.app.files import write_file

        write_file(out, text)
        click.echo(f"exported {len(rows)} sources to {terminal_safe(str(out))}", err=True)
    if note:
        click.echo(terminal_safe(f"note: {note}"), err=True)


@sources.command("retire")
@click.argument("refs", nargs=-1, required=True, metavar="SOURCE...")
@click.pass_obj
def sources_retire(app: App, refs: tuple[str, ...]) -> None:
    """Stop checking SOURCE; its history stays."""
    store = app.store()
    for s in [store.get_source(r) for r in refs]:
        store.retire_source(s, app.now)
        click.echo(terminal_safe(f"retired source {s.id}: {s.name}"))


@sources.command("revive")
@click.argument("refs", nargs=-1, required=True, metavar="SOURCE...")
@click.pass_obj
def sources_revive(app: App, refs: tuple[str, ...]) -> None:
    """Check a retired SOURCE again (now, then on its schedule)."""
    store = app.store()
    for s in [store.get_source(r) for r in refs]:
        store.retire_source(s, app.now, retire=False)
        click.echo(terminal_safe(f"revived source {s.id}: {s.name}"))


@sources.command("remove")
@click.argument("source")
@click.option("--yes", is_flag=True, help="Do not ask; needed when not at a terminal.")
@click.pass_obj
def sources_remove(app: App, source: str, yes: bool) -> None:
    """Stop watching SOURCE and delete its versions and captures (asks first; to stop
    checking it but keep its history, use 'sources retire')."""
    store = app.store()
    s = store.get_source(source)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"removing {s.name} deletes its whole history; add --yes to confirm "
                "(or use 'sources retire' to keep it)"
            )
        click.confirm(
            terminal_safe(f"Delete {s.name} and all {len(store.versions(s.id))} versions?"),
            abort=True,
        )
    store.remove_source(s)
    click.echo(terminal_safe(f"removed source {s.id}: {s.name}"))


# -- check --------------------------------------------------------------------

_SYMBOLS = {"new_version": ("+", "green"), "failed": ("x", "red")}


@cli.command()
@click.argument("refs", nargs=-1, metavar="[SOURCE]...")
@click.option("--all", "all_", is_flag=True, help="Check every source (except retired ones).")
@click.option("--due", is_flag=True, help="Check the sources that are due now.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
@SEMANTIC
@click.pass_obj
def check(
    app: App, refs: tuple[str, ...], all_: bool, due: bool, as_json: bool, semantic: bool | None
) -> int:
    """Fetch sources now and archive what changed. Exits 1 if any check failed."""
    store = app.store()
    if sum(map(bool, (refs, all_, due))) != 1:
        raise UsageError("name sources, or give --all or --due (one of them)")
    targets: Iterable[Source]
    if refs:
        targets = [store.get_source(r) for r in refs]
        total = len(targets)
        seeds = [s.name for s in targets if not kind_of(s.kind).fetched]
        if seeds:
            raise UsageError(f"{seeds[0]} is a seed article; it is imported by 'init', not fetched")
    elif all_:
        # Read a page at a time as checks start: memory stays flat at any number.
        targets, total = store.iter_sources(checkable=True), store.count_checkable()
    else:
        # Claimed through the lease table, as serve claims: a source that a running
        # serve holds is not checked twice, and this run's own are leased meanwhile.
        import os
        import socket

        from store import leases

        owner = f"check-{socket.gethostname()}-{os.getpid()}"
        targets = leases.claim(store, owner, app.now, app.config.lease, 10**9).sources
        total = len(targets)
    console = make_console()
    use_semantic(app, semantic)
    options = check_options(app.config)
    from archiver import pipeline

    def now() -> datetime:
        return datetime.now(UTC)

    counts = {"checked": 0, "new": 0, "failed": 0}

    from rich.text import Text

    def report(r: pipeline.CheckResult) -> None:
        counts["checked"] += 1
        counts["new"] += r.outcome == "new_version"
        counts["failed"] += r.failed
        if as_json:
            emit_json(
                [
                    {
                        "source": r.source.id,
                        "label": r.source.label,
                        "url": r.source.shown_url,
                        "outcome": r.outcome,
                        "version": r.version,
                        "status": r.status,
                        "error_class": r.error_class,
                        "error": r.error,
                        "duration_ms": r.duration_ms,
                        "extracted": r.extracted,
                    }
                ]
            )
            return
        what = {
            "new_version": f"new version {r.version}"
            + (f" (significance {r.significance:.2f})" if r.significance is not None else ""),
            "reverted": f"back to version {r.version}",
            "superseded": "another check wrote first; nothing stored",
            "not_modified": "unchanged (304)",
            "same_bytes": "unchanged (same bytes)",
            "same_text": "unchanged (same text)",
            "failed": f"failed: {r.error_class}: {r.error}",
        }[r.outcome]
        console.print(
            Text.assemble(
                _SYMBOLS.get(r.outcome, ("=", "")),
                f" {terminal_safe(r.source.name)}  {terminal_safe(what)}",
                (f"  {r.duration_ms} ms", "dim"),
            ),
            soft_wrap=True,
        )

    if console.is_terminal and not as_json and total > 1:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(
            TextColumn("checking"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("check", total=total)

            def tick(r: pipeline.CheckResult) -> None:
                report(r)
                progress.advance(task)

            pipeline.check(store, targets, options, clock=now, on_result=tick, keep=False)
    else:
        pipeline.check(store, targets, options, clock=now, on_result=report, keep=False)
    checked, new, failed = counts["checked"], counts["new"], counts["failed"]
    if not as_json:
        click.echo(
            f"{checked} checked: {counted(new, 'new version')}, "
            f"{checked - new - failed} unchanged, {failed} failed",
            err=True,
        )
    return 1 if failed else 0
