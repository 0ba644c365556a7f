"""Commands that prove, export and tidy the archive: verify, export, gc."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click

from archiver.app.files import atomic_write
from archiver.cli.base import JSON_LINES, SOURCE, App, Count, cli, emit_json
from archiver.text.terminal import terminal_safe
from store.errors import IntegrityError, UsageError
from store.gc import GcOptions, collect
from store.models import Source
from store.verify import Report


@cli.command()
@SOURCE
@JSON_LINES
@click.pass_obj
def verify(app: App, source_ref: str | None, as_json: bool) -> None:
    """Re-read every blob and check every delta chain and reference.

    Prints each problem with its source and version; exits 1 if there is any.
    """
    store = app.store()
    source = store.get_source(source_ref) if source_ref else None
    report = Report()
    for problem in store.verify(source, report):
        if as_json:
            emit_json([problem.__dict__])
        else:
            click.echo(terminal_safe(problem.line()))
    summary = (
        f"verified {report.sources} source(s), {report.versions} version(s), {report.blobs} blob(s)"
    )
    if report.problems:
        raise IntegrityError(f"{summary}: {report.problems} problem(s) found")
    click.echo(f"{summary}: no problems", err=as_json)


@contextmanager
def _atomic(path: Path | None) -> Iterator[IO[bytes]]:
    """Write ``path`` whole or not at all (``archiver.app.files``), or stdout."""
    if path is None or str(path) == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with atomic_write(path) as f:
        yield f


def _chosen(app: App, source: str | None, all_: bool) -> list[Source]:
    if bool(source) == all_:
        raise UsageError("give one SOURCE or --all")
    store = app.store()
    return [store.get_source(source)] if source else store.list_sources()


@cli.group("export")
def export_group() -> None:
    """Export the archive as WARC or JSON."""


@export_group.command("warc")
@click.argument("source", required=False)
@click.option("--all", "all_", is_flag=True, help="Every source.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The .warc.gz file to write (written whole, then renamed into place).",
)
@click.pass_obj
def export_warc(app: App, source: str | None, all_: bool, out: Path) -> None:
    """Write SOURCE's captures (or --all) as a gzipped WARC/1.1 file."""
    from archiver.app import export as exporter  # warcio, only when exporting

    sources = _chosen(app, source, all_)
    with _atomic(out) as f:
        n = exporter.write_warc(app.store(), sources, f, app.now)
    click.echo(f"wrote {n} WARC records to {out}", err=True)


@export_group.command("json")
@click.argument("source", required=False)
@click.option("--all", "all_", is_flag=True, help="Every source, one JSON document per line.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write [default: standard output].",
)
@click.pass_obj
def export_json(app: App, source: str | None, all_: bool, out: Path | None) -> None:
    """Write SOURCE's whole history (or --all) as JSON: versions with their text,
    captures, changes and flags. One document per source, one per line."""
    from archiver.app import export as exporter

    sources = _chosen(app, source, all_)
    store = app.store()
    with _atomic(out) as f:
        for s in sources:
            f.write((exporter.dumps(exporter.source_history(store, s)) + "\n").encode("utf-8"))


@cli.command()
@click.option(
    "--keep-raw-days",
    type=click.IntRange(0, 36600, clamp=True),  # a century: past it, datetime overflowed
    help="Release the raw HTML of versions older than this many days.",
)
@click.option(
    "--keep-raw-versions",
    type=Count(1),
    help="Keep the raw HTML of only the newest N versions of each source.",
)
@click.option("--dry-run", is_flag=True, help="Say what would go; change nothing.")
@click.option("--no-vacuum", is_flag=True, help="Skip VACUUM (the space stays in the file).")
@click.pass_obj
def gc(
    app: App,
    keep_raw_days: int | None,
    keep_raw_versions: int | None,
    dry_run: bool,
    no_vacuum: bool,
) -> None:
    """Delete blobs nothing uses and compact the store; release old raw HTML on request.

    The text of every version is kept: changes and flags point at versions, and gc
    deletes none. Each source's newest version keeps its raw HTML whatever the
    options. A blob stored as a delta on a deleted one is rewritten whole first.
    """
    options = GcOptions(keep_raw_days, keep_raw_versions, dry_run, vacuum=not no_vacuum)
    report = collect(app.store(), options, app.now)
    verb = "would" if dry_run else "did"
    click.echo(
        f"gc {verb}: release the raw HTML of {report.raw_released} version(s), delete "
        f"{report.blobs_deleted} blob(s), rewrite {report.blobs_rewritten} delta(s) whole; "
        f"blobs {report.bytes_before / 1024:.0f} KiB -> {report.bytes_after / 1024:.0f} KiB"
    )
