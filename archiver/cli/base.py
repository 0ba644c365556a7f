"""The ``claimwatch`` command. Errors become exit codes in one place: ``main``.

Exit codes: 0 success; 1 the work failed (a check failed, the store is
damaged); 2 bad usage or bad input. Errors print one line on stderr.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import shutil
import sys
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import platformdirs

from archiver import __version__
from archiver.app.schedule import parse_duration
from archiver.config import Config
from archiver.config import load as load_config
from store.db import MAX_ID
from store.errors import (
    ClaimwatchError,
    SchemaAhead,
    SchemaBehind,
    SourceNotFound,
    StoreMissing,
    UsageError,
)
from store.repo import Store

if TYPE_CHECKING:
    from rich.console import Console

    from archiver import pipeline
    from store.models import Source, Version


T = TypeVar("T")


def default_db_url() -> str:
    path = platformdirs.user_data_path("claimwatch") / "claimwatch.db"
    return f"sqlite:///{path}"


@dataclass
class App:
    db_url: str
    config: Config = field(default_factory=Config)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    _store: Store | None = None

    def store(self, *, current: bool = True) -> Store:
        if self._store is None:
            self._store = Store(self.db_url)
            if current:
                self._store.ensure_current()
        return self._store


SEMANTIC = click.option(
    "--semantic/--no-semantic",
    "semantic",
    default=None,
    help="Score claims with the multilingual embedding model, or with lexical rules only "
    "[default: the config's matching.semantic, on].",
)


def use_semantic(app: App, semantic: bool | None) -> None:
    """Apply a command's --semantic/--no-semantic over the configuration."""
    if semantic is not None:
        app.config = replace(app.config, semantic=semantic)


JSON_LINES = click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
SINCE = click.option("--since", help="Only what is newer than this: 2d, 12h, or an ISO date.")
SOURCE = click.option("--source", "source_ref", metavar="SOURCE", help="Only this source.")


class Share(click.FloatRange):
    """A score or significance from 0 to 1. click's FloatRange lets "nan" through (no
    comparison with it fails), and a filter at NaN kept nothing without a word."""

    def __init__(self) -> None:
        super().__init__(0, 1)

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number from 0 to 1.", param, ctx)
        return number


class Count(click.IntRange):
    """A whole number of at least `least`; one past any store's rows means "all of them".

    click's `clamp` clamps both ends, so a count below the least would pass as the least
    instead of failing; here only the top is clamped."""

    def __init__(self, least: int) -> None:
        super().__init__(min=least)

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        return min(super().convert(value, param, ctx), MAX_ID)


LIMIT = click.option(
    "--limit",
    type=Count(0),  # more rows than any store holds: all of them
    default=1000,
    show_default=True,
    help="At most this many (0: all of them, read and printed a page at a time).",
)


def pages(items: Iterable[T], size: int = 1000) -> Iterator[list[T]]:
    """``items`` in lists of ``size``: listings print a page while reading the next."""
    page: list[T] = []
    for item in items:
        page.append(item)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def note_limit(shown: int, limit: int, empty: str | None = None) -> None:
    """Say on stderr when a listing stopped at its limit, or (``empty``, for the
    human format) that it found nothing, so an empty listing is not mistaken for a
    command that did nothing."""
    if limit and shown >= limit:
        click.echo(f"(the first {limit}; --limit 0 lists them all)", err=True)
    elif not shown and empty:
        click.echo(f"({empty})", err=True)


def check_options(cfg: Config, concurrency: int | None = None) -> pipeline.CheckOptions:
    """How checks run, from the configuration (one place for check, serve and reloads)."""
    # Imported here: the fetch and extraction stack is a quarter second that commands
    # which only read the archive (history, diff, show) should not pay.
    from archiver import pipeline
    from archiver.net.fetch import FetchOptions

    fetch = FetchOptions(
        concurrency=concurrency or cfg.concurrency,
        per_host=cfg.per_host,
        host_delay=cfg.host_delay,
        allow_private=cfg.allow_private,
        ca_file=cfg.ca_file,
    )
    if cfg.user_agent:
        fetch = replace(fetch, user_agent=cfg.user_agent)
    from archiver.net.browser import BrowserOptions

    browser = BrowserOptions(
        executable=cfg.browser_executable,
        timeout=cfg.browser_timeout,
        max_pages=cfg.browser_pages,
        allow_private=cfg.allow_private,
        user_agent=cfg.user_agent,
    )
    return pipeline.CheckOptions(
        fetch=fetch,
        browser=browser,
        processes=cfg.workers,
        semantic=cfg.semantic,
        claims_model=cfg.claims_model,
        default_interval=cfg.default_every,
        max_new_per_poll=cfg.max_new_per_poll,
    )


def version_of(store: Store, source: str, number: int | None) -> tuple[Source, Version]:
    """A source and one of its versions: ``number``, or the current one (the text the
    page shows now, which after a flip-back is an earlier version)."""
    s = store.get_source(source)
    if number is not None:
        return s, store.get_version(s, number)
    current = store.current_version(s) or store.latest_version(s.id)
    if current is None:
        raise UsageError(no_versions(store, s))
    return s, current


def no_versions(store: Store, s: Source) -> str:
    """Why a source has no version, and what to do: check it, or, when its last check
    failed, what failed (checking again as told would fail the same way)."""
    last = store.captures(s.id, limit=1)
    if last and last[0].error_class:
        failed = last[0]
        return (
            f"{s.name} has no versions yet: its last check ({when(failed.started_at)} UTC) "
            f"failed with {failed.error_class}: {failed.error_message or 'no message'}"
        )
    return f"{s.name} has no versions yet; run 'claimwatch check {s.name}'"


def emit_json(rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, default=json_default))


def use_color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def make_console() -> Console:
    """The one console the commands print through. Markup and emoji codes are off:
    page text, titles, URLs and headers are data, so ``[link=…]`` or ``[/]`` in them
    prints as itself. Our own styling uses ``rich.text.Text`` with a style."""
    from rich.console import Console  # a command that prints a table pays for rich

    return Console(
        no_color=not use_color(),
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=not sys.stdout.isatty(),
    )


_AGO = re.compile(r"[0-9smhdw ]+", re.IGNORECASE)  # what a time ago is written with


def parse_since(value: str, now: datetime) -> datetime:
    """``2d``, ``36h`` (ago) or an ISO date/time."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    if not _AGO.fullmatch(value) or not any(ch.isdigit() for ch in value):  # "yesterday",
        # "2025-13-01": neither form
        raise UsageError(
            f"since {value!r} is not understood; give a time ago such as 2d or 36h, "
            "or a date such as 2025-07-14"
        )
    return now - timedelta(seconds=parse_duration(value))


def json_default(value: Any) -> Any:
    """Times as ISO 8601 in --json output (and the web API, which gives the same records)."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def aligned(cells: Sequence[Sequence[str]], right: Collection[int] = ()) -> list[str]:
    """Rows of cells as plain columns two spaces apart (``right``: the right-aligned
    ones), the last column as it is: a title or a URL is never padded or cut. Plain text
    lays out 1,000 rows in milliseconds where a rich Table took 0.4 s, and at 80
    columns a Table cut URLs and labels to a few letters."""
    if not cells:
        return []
    last = len(cells[0]) - 1
    widths = [max(len(c[i]) for c in cells) for i in range(last)]
    lines = []
    for c in cells:
        parts = [c[i].rjust(w) if i in right else c[i].ljust(w) for i, w in enumerate(widths)]
        lines.append("  ".join([*parts, c[last]]).rstrip())
    return lines


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="CLAIMWATCH_DB",
    default=None,
    metavar="URL",
    help="Database URL: sqlite:///FILE or postgresql://… [env CLAIMWATCH_DB; default: an "
    "SQLite file in the user data directory]",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file [env CLAIMWATCH_CONFIG; default: claimwatch.toml in the user config "
    "directory, if it exists]",
)
@click.version_option(__version__, prog_name="claimwatch")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config_path: Path | None) -> None:
    """Archive a story's coverage, diff every version, and flag what bears on its claims."""
    cfg = load_config(config_path)
    ctx.obj = App(db or cfg.db or default_db_url(), cfg)
    ctx.call_on_close(lambda: ctx.obj._store.close() if ctx.obj._store else None)


def _what_to_do(exc: ClaimwatchError) -> str:
    """The CLI's advice for errors that carry data instead of a command to run."""
    if isinstance(exc, SourceNotFound):
        return "; see 'claimwatch sources list'"
    if isinstance(exc, StoreMissing):
        return "; run 'claimwatch init'"
    if isinstance(exc, SchemaBehind):
        return (
            "; run 'claimwatch init' in the story's directory to migrate it "
            "('claimwatch init --no-seeds' migrates it without importing seeds)"
        )
    if isinstance(exc, SchemaAhead):
        return "; upgrade claimwatch to read it"
    return ""


def program_name(argv0: str, on_path: str | None) -> str:
    """How to type this program in a command printed for copying: ``claimwatch`` when
    that name on PATH is this very program (or it runs as ``python -m archiver.cli``),
    else the path it was started by. After the README's ``.venv/bin/claimwatch demo``,
    in a shell that never activated the virtualenv, the printed lines then work as
    they are."""
    started = Path(argv0)
    if started.name != "claimwatch":
        return "claimwatch"
    if on_path and Path(on_path).resolve() == started.resolve():
        return "claimwatch"
    return shlex.quote(argv0)


def named_as_started(line: str, argv0: str, on_path: str | None) -> str:
    """``line`` with its hints ('claimwatch init') naming the program as it was started
    (``program_name``), so they run as printed from a shell that never activated the
    virtualenv. A path that would need quoting inside the quotes is left alone."""
    program = program_name(argv0, on_path)
    if program == "claimwatch" or program != argv0:
        return line
    return line.replace("'claimwatch ", f"'{program} ")


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _error(line: str) -> None:
    click.echo(named_as_started(line, sys.argv[0], shutil.which("claimwatch")), err=True)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map every error to one stderr line and an exit code."""
    try:
        rv = cli.main(args=argv, prog_name="claimwatch", standalone_mode=False)
        sys.stdout.flush()  # a full disk under the output is this run's error, not exit's
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("claimwatch: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # bad usage: click's own message
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _error(f"claimwatch: error: {exc.format_message()}{hint}")
        sys.exit(2)
    except ClaimwatchError as exc:
        _error(f"claimwatch: error: {exc}{_what_to_do(exc)}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("claimwatch: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: one line, the traceback on request
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            # Writing the output (stdout redirected to a file) ran out of room; files
            # named by --out say so themselves (archiver.app.files).
            click.echo(
                f"claimwatch: error: the output could not be written ({exc.strerror}); "
                "free some space and run it again",
                err=True,
            )
            sys.exit(1)
        if os.environ.get("CLAIMWATCH_DEBUG"):
            raise
        click.echo(
            f"claimwatch: internal error: {type(exc).__name__}: {exc} "
            "(set CLAIMWATCH_DEBUG=1 for the traceback, and please report it)",
            err=True,
        )
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
