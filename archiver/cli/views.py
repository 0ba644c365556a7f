"""Commands that read the archive: history, show, diff, changes, search."""

from __future__ import annotations

import itertools
import shutil
import sys
from dataclasses import asdict
from typing import Any

import click
from rich.text import Text

from archiver.app.search import SaidNow, SaidOverTime, archive_search
from archiver.cli.base import (
    JSON_LINES,
    LIMIT,
    SINCE,
    SOURCE,
    App,
    Share,
    aligned,
    cli,
    emit_json,
    make_console,
    no_versions,
    note_limit,
    pages,
    parse_since,
    use_color,
    version_of,
    when,
)
from archiver.text.diff import DiffOptions, change_to_dict, diff
from archiver.text.render import KINDS as UNIT_KINDS
from archiver.text.render import (
    Header,
    RenderOptions,
    render_html,
    render_side_by_side,
    render_terminal,
    render_unified,
    terminal_safe,
)
from store.errors import UsageError
from store.models import Source, StoredChange, Version

# -- history / show -------------------------------------------------------------


def version_row(source: Source, v: Version) -> dict[str, Any]:
    row = asdict(v)
    row["source"] = source.name
    row["current"] = v.id == source.current_version_id
    return row


@cli.command()
@click.argument("source")
@JSON_LINES
@click.pass_obj
def history(app: App, source: str, as_json: bool) -> None:
    """List the versions of SOURCE; '*' marks the current one (the text the page shows
    now, an earlier version after a flip-back)."""
    store = app.store()
    s = store.get_source(source)
    rows = store.versions(s.id)
    if as_json:
        emit_json(version_row(s, v) for v in rows)
        return
    # Plain aligned columns: a rich Table took 0.4 s to lay out 1,000 versions.
    cells = [("#", "captured", "chars", "raw bytes", "title")] + [
        (
            ("*" if v.id == s.current_version_id else "") + str(v.number),
            when(v.captured_at),
            str(v.text_length),
            "-" if v.raw_digest is None else str(v.raw_length or "-"),
            terminal_safe(v.title or ""),
        )
        for v in rows
    ]
    lines = aligned(cells, right={0, 2, 3})
    if sys.stdout.isatty():  # on a terminal, a long title is cut at its edge
        room = shutil.get_terminal_size().columns
        lines = [line if len(line) <= room else line[: room - 1] + "…" for line in lines]
    click.echo("\n".join([terminal_safe(s.name), *lines]))
    if not rows:
        click.echo(terminal_safe(f"({no_versions(store, s)})"), err=True)


@cli.command()
@click.argument("source")
@click.argument("version", type=int, required=False)
@click.option("--raw", is_flag=True, help="The raw response body instead of the text.")
@click.pass_obj
def show(app: App, source: str, version: int | None, raw: bool) -> None:
    """Print a version's text (default: the current one, the text the page shows now,
    which after a flip-back is an earlier version), or its raw body."""
    store = app.store()
    _s, v = version_of(store, source, version)
    # The text is always made terminal-safe; the raw body keeps its bytes in a pipe
    # (to save the page as archived) and is made safe only for a terminal.
    if raw:
        data = store.read_raw(v)
        if sys.stdout.isatty():
            data = terminal_safe(data.decode("utf-8", "replace")).encode("utf-8")
    else:
        data = terminal_safe(store.read_text(v)).encode("utf-8") + b"\n"
    out = sys.stdout.buffer
    out.write(data)
    out.flush()


# -- diff / changes -------------------------------------------------------------


def _version_label(v: Version) -> str:
    return f"version {v.number} ({v.captured_at:%Y-%m-%d %H:%M} UTC)"


@cli.command("diff")
@click.argument("source")
@click.argument("from_", metavar="[FROM]", type=int, required=False)
@click.argument("to", metavar="[TO]", type=int, required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["terminal", "side-by-side", "unified", "html", "json"]),
    default="terminal",
    show_default=True,
)
@click.option(
    "--context",
    type=click.IntRange(0, 50),
    default=1,
    show_default=True,
    help="Unchanged sentences shown around each change.",
)
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(UNIT_KINDS),
    help="Show only these kinds of change (repeatable), e.g. --only added.",
)
@click.pass_obj
def diff_cmd(
    app: App,
    source: str,
    from_: int | None,
    to: int | None,
    fmt: str,
    context: int,
    only: tuple[str, ...],
) -> None:
    """Show what changed between two versions of SOURCE (default: its latest change,
    which after a flip-back is the way back to the version the page shows now)."""
    store = app.store()
    s = store.get_source(source)
    numbers = [v.number for v in store.versions(s.id)]
    if from_ is None and to is None:
        last = next(store.iter_changes(source_id=s.id, limit=1), None)
        if last is not None:
            from_, to = last.from_version, last.to_version
    if len(numbers) < 2 and (from_ is None or to is None):
        raise UsageError(f"{s.name} has {len(numbers)} version(s); a diff needs two")
    to = to if to is not None else (numbers[-1] if from_ is None else max(numbers))
    from_ = (
        from_ if from_ is not None else numbers[numbers.index(to) - 1] if to in numbers else None
    )
    if from_ is None:
        raise UsageError(f"{s.name} has no version {to}")
    old_v, new_v = store.get_version(s, from_), store.get_version(s, to)
    old_text, new_text = store.read_text(old_v), store.read_text(new_v)
    change = diff(old_text, new_text, DiffOptions(), old_v.title, new_v.title)
    options = RenderOptions(context=context, only=frozenset(only or UNIT_KINDS), color=use_color())
    header = Header(s.name, _version_label(old_v), _version_label(new_v), s.shown_url)
    if fmt == "json":
        data = change_to_dict(change)
        data["units"] = [u for u in data["units"] if u["kind"] in options.only]
        emit_json([{"source": s.name, "from": old_v.number, "to": new_v.number, **data}])
    elif fmt == "unified":
        click.echo(render_unified(change, new_text, header, options), nl=False)
    elif fmt == "html":
        click.echo(render_html(change, new_text, header, options))
    else:
        renderer = render_terminal if fmt == "terminal" else render_side_by_side
        make_console().print(renderer(change, new_text, header, options), highlight=False)


@cli.command()
@SINCE
@SOURCE
@click.option("--min-significance", type=Share(), default=0.0, show_default=True)
@LIMIT
@JSON_LINES
@click.pass_obj
def changes(
    app: App,
    since: str | None,
    source_ref: str | None,
    min_significance: float,
    limit: int,
    as_json: bool,
) -> None:
    """The change log across all sources, newest first."""
    store = app.store()
    source_id = store.get_source(source_ref).id if source_ref else None
    found = store.iter_changes(
        parse_since(since, app.now) if since else None, source_id, min_significance, limit or None
    )
    shown = 0
    for page in pages(found, 500):
        shown += len(page)
        _print_changes(page, as_json)
    filtered = since or source_ref or min_significance
    empty = (
        "no changes match these options"
        if filtered
        else "no changes yet: a change is recorded when a page's text differs from its last version"
    )
    note_limit(shown, limit, None if as_json else empty)


def change_row(c: StoredChange) -> dict[str, Any]:
    """A change as `changes --json` (and the web API) give it."""
    return {
        "id": c.id,
        "source": c.source_name,
        "from": c.from_version,
        "to": c.to_version,
        "kind": c.kind,
        "created_at": c.created_at,
        "significance": c.significance,
        "summary": c.summary,
        "reasons": c.reasons,
        "stats": c.stats,
    }


def _print_changes(rows: list[StoredChange], as_json: bool) -> None:
    if as_json:
        emit_json(change_row(c) for c in rows)
        return
    # A short paragraph each, as flags and claims print theirs: in a table's column the
    # summary wrapped a few words a line, and a source's name or URL was cut short.
    console = make_console()
    for c in rows:
        console.print(
            f"{when(c.created_at)}  {terminal_safe(c.source_name)}  "
            f"{c.from_version} -> {c.to_version}  significance {c.significance:.2f}"
        )
        detail = f" ({c.reasons[0]})" if c.reasons and c.kind == "edit" else ""
        console.print(f"  {terminal_safe(c.summary + detail)}")


# -- search ---------------------------------------------------------------------


@cli.command()
@click.argument("phrase")
@SOURCE
@click.option(
    "--history",
    is_flag=True,
    help="Read every version, not only the current text: from when to when each source "
    "said it, and which version's edit took it away.",
)
@LIMIT
@JSON_LINES
@click.pass_obj
def search(
    app: App, phrase: str, source_ref: str | None, history: bool, limit: int, as_json: bool
) -> None:
    """Which sources say PHRASE (any case, any spacing), with the words around it. By
    default the current text of each source; --history reads every version (slower:
    each version's text is read from the archive)."""
    from archiver.text.search import MIN_PHRASE, too_short

    if too_short(phrase):
        raise UsageError(f"search for at least {MIN_PHRASE} characters, not {phrase!r}")
    store = app.store()
    chosen = [store.get_source(source_ref)] if source_ref else store.iter_sources()
    found = archive_search(store, chosen, phrase, history)
    console = None if as_json else make_console()
    shown = 0
    for item in itertools.islice(found, limit or None):
        shown += 1
        s = item.source
        if console is None:
            emit_json([{"source": s.name, "url": s.shown_url, **search_row(item)}])
        else:
            for line in _search_lines(item):
                console.print(line)
    if console is not None:
        where = "version" if history else "current text"
        note_limit(shown, limit, f"no {where} says {phrase!r}")


def search_row(item: SaidNow | SaidOverTime) -> dict[str, Any]:
    """A search result's JSON record (less the source): the current version and its
    hits, or the runs of versions that said the phrase."""
    if isinstance(item, SaidOverTime):
        return {"spans": [_span_row(x) for x in item.spans]}
    hits = [asdict(h) for h in item.hits]
    return {"version": item.version.number, "captured_at": item.version.captured_at, "hits": hits}


def _search_lines(item: SaidNow | SaidOverTime) -> list[Text]:
    if isinstance(item, SaidOverTime):
        lines = [Text(terminal_safe(item.source.name), style="bold")]
        return lines + [Text(f"  {_span_line(x)}") for x in item.spans]
    v = item.version
    head = f"{item.source.name}  v{v.number}  {when(v.captured_at)}"
    lines = [Text(terminal_safe(head), style="bold")]
    for h in item.hits:
        line = Text("  " + terminal_safe(h.before))
        line.append(terminal_safe(h.match), style="bold reverse")
        line.append(terminal_safe(h.after))
        lines.append(line)
    return lines


def _span_row(span: Any) -> dict[str, Any]:
    return {
        "from_version": span.first[0],
        "from_captured_at": span.first[1],
        "to_version": span.last[0],
        "to_captured_at": span.last[1],
        "gone_in_version": span.gone[0] if span.gone else None,
        "gone_at": span.gone[1] if span.gone else None,
    }


def _span_line(span: Any) -> str:
    (a, a_at), (b, b_at) = span.first, span.last
    said = f"v{a} ({when(a_at)})" if a == b else f"v{a} ({when(a_at)}) to v{b} ({when(b_at)})"
    if span.gone is None:
        return f"said in {said}, and still"
    return f"said in {said}; gone in v{span.gone[0]} ({when(span.gone[1])})"
