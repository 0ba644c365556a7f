"""The ``claimwatch`` command. Errors become exit codes in one place: ``main``.

Exit codes: 0 success; 1 the work failed (a check failed, the store is
damaged); 2 bad usage or bad input. Errors print one line on stderr.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import platformdirs
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from archiver import __version__, pipeline
from archiver.claims import Claim, MatchOptions, claim_from_dict, match
from archiver.claimsfile import load_claims
from archiver.config import Config
from archiver.config import load as load_config
from archiver.diff import DiffOptions, change_to_dict, diff
from archiver.digest import DigestOptions
from archiver.errors import ClaimwatchError, UsageError
from archiver.fetch import FetchOptions
from archiver.mailer import SendError, settings_from_env
from archiver.normalize import compile_patterns
from archiver.render import KINDS as UNIT_KINDS
from archiver.render import (
    Header,
    RenderOptions,
    render_html,
    render_side_by_side,
    render_terminal,
    render_unified,
    terminal_safe,
)
from archiver.schedule import format_duration, next_cron, parse_cron, parse_duration
from archiver.seeds import default_seeds_dir
from archiver.topic import parse as parse_topic
from jobs import digest as digest_job
from jobs.metrics import Metrics
from jobs.service import Service, ServiceOptions, default_worker_id
from store import digests as digest_state
from store import leases
from store.db import mask_url
from store.leases import ServeLock
from store.models import KINDS, Source, SourceSpec, StoredFlag, Version
from store.repo import Store


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


JSON_LINES = click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
SINCE = click.option("--since", help="Only what is newer than this: 2d, 12h, or an ISO date.")
SOURCE = click.option("--source", "source_ref", metavar="SOURCE", help="Only this source.")


def emit_json(rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _when(value: datetime | None) -> str:
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
    seeds_dir = seeds_dir or default_seeds_dir()
    if seeds_dir is None:
        raise UsageError("no seeds directory found; pass --seeds DIR or --no-seeds")
    seeds = pipeline.load_seeds(seeds_dir)  # validate everything before writing anything
    store.migrate()
    click.echo(f"store ready: {mask_url(store.url)}")
    for label, number, created in pipeline.import_seeds(store, seeds, app.now):
        state = f"version {number}" if created else f"unchanged (version {number})"
        click.echo(f"seed {label}: {state}")
    click.echo(f"watchlist: {len(seeds.sources)} sources from {seeds_dir / 'sources.yaml'}")
    if seeds.claims:
        click.echo(f"claims: {len(seeds.claims)} from {seeds_dir / 'claims.yaml'}")


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
        "url": s.url,
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
        "next_check_at": s.next_check_at,
        "last_checked_at": s.last_checked_at,
        "consecutive_failures": s.consecutive_failures,
        "retired": s.retired_at is not None,
    }


@sources.command("list")
@JSON_LINES
@click.pass_obj
def sources_list(app: App, as_json: bool) -> None:
    """List watched sources: kind, where each came from, schedule, next check, health."""
    rows = app.store().list_sources()
    names = {s.id: s.name for s in rows}
    if as_json:
        emit_json(source_row(s, names) for s in rows)
        return
    table = Table("id", "label", "kind", "from", "schedule", "next check", "health", "url")
    for s in rows:
        if s.retired_at is not None:
            health = "retired"
        elif s.consecutive_failures:
            health = f"[red]{s.consecutive_failures} failing[/]"
        else:
            health = "ok"
        table.add_row(
            str(s.id),
            terminal_safe(s.label or "-"),
            s.kind,
            terminal_safe(_found_by(s, names)),
            _schedule(s),
            _when(s.next_check_at),
            health,
            terminal_safe(s.url),
        )
    _console().print(table)


@sources.command("add")
@click.argument("url")
@click.option(
    "--kind",
    type=click.Choice([k for k in KINDS if k != "seed"]),
    default="page",
    show_default=True,
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
) -> None:
    """Watch URL. A feed (RSS, Atom, or a sitemap) turns its matching entries into
    article sources, rechecked often at first and less as they age."""
    if not re.match(r"^https?://[^\s/]+", url):
        raise UsageError(f"{url!r} is not an http(s) URL")
    if every and cron:
        raise UsageError("give --every or --cron, not both")
    if (topic or match_claims) and kind != "feed":
        raise UsageError("--topic and --match-claims are for feeds (--kind feed)")
    compile_patterns(ignore, "--ignore")
    if topic:
        parse_topic(topic)
    if cron:
        parse_cron(cron)
    spec = SourceSpec(
        url=url,
        kind=kind,
        label=label,
        tags=tags,
        interval_seconds=parse_duration(every) if every else None,
        cron=cron,
        ignore=ignore,
        robots=not no_robots,
        topic=topic,
        match_claims=match_claims,
    )
    source_id = app.store().add_source(spec, app.now)
    click.echo(f"added source {source_id}: {label or url}")


@sources.command("retire")
@click.argument("refs", nargs=-1, required=True, metavar="SOURCE...")
@click.pass_obj
def sources_retire(app: App, refs: tuple[str, ...]) -> None:
    """Stop checking SOURCE; its history stays."""
    store = app.store()
    for s in [store.get_source(r) for r in refs]:
        store.retire_source(s, app.now)
        click.echo(f"retired source {s.id}: {s.name}")


@sources.command("revive")
@click.argument("refs", nargs=-1, required=True, metavar="SOURCE...")
@click.pass_obj
def sources_revive(app: App, refs: tuple[str, ...]) -> None:
    """Check a retired SOURCE again (now, then on its schedule)."""
    store = app.store()
    for s in [store.get_source(r) for r in refs]:
        store.retire_source(s, app.now, retire=False)
        click.echo(f"revived source {s.id}: {s.name}")


@sources.command("remove")
@click.argument("source")
@click.pass_obj
def sources_remove(app: App, source: str) -> None:
    """Stop watching SOURCE and delete its versions and captures."""
    store = app.store()
    s = store.get_source(source)
    store.remove_source(s)
    click.echo(f"removed source {s.id}: {s.name}")


# -- check --------------------------------------------------------------------

_SYMBOLS = {"new_version": "[green]+[/]", "failed": "[red]x[/]"}


@cli.command()
@click.argument("refs", nargs=-1, metavar="[SOURCE]...")
@click.option("--all", "all_", is_flag=True, help="Check every source (except retired ones).")
@click.option("--due", is_flag=True, help="Check the sources that are due now.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
@click.pass_obj
def check(app: App, refs: tuple[str, ...], all_: bool, due: bool, as_json: bool) -> int:
    """Fetch sources now and archive what changed. Exits 1 if any check failed."""
    store = app.store()
    if sum(map(bool, (refs, all_, due))) != 1:
        raise UsageError("name sources, or give --all or --due (one of them)")
    if refs:
        targets = [store.get_source(r) for r in refs]
    elif all_:
        targets = [s for s in store.list_sources() if s.kind != "seed" and s.retired_at is None]
    else:
        targets = store.due_sources(app.now)
    seeds = [s.name for s in targets if s.kind == "seed"]
    if seeds:
        raise UsageError(f"{seeds[0]} is a seed article; it is imported by 'init', not fetched")
    console = Console(stderr=False)
    results: list[pipeline.CheckResult] = []

    def report(r: pipeline.CheckResult) -> None:
        results.append(r)
        if as_json:
            emit_json(
                [
                    {
                        "source": r.source.id,
                        "label": r.source.label,
                        "url": r.source.url,
                        "outcome": r.outcome,
                        "version": r.version,
                        "status": r.status,
                        "error_class": r.error_class,
                        "error": r.error,
                        "duration_ms": r.duration_ms,
                    }
                ]
            )
            return
        what = {
            "new_version": f"new version {r.version}"
            + (f" (significance {r.significance:.2f})" if r.significance is not None else ""),
            "reverted": f"back to version {r.version}",
            "not_modified": "unchanged (304)",
            "same_bytes": "unchanged (same bytes)",
            "same_text": "unchanged (same text)",
            "failed": f"failed: {r.error_class}: {r.error}",
        }[r.outcome]
        line = (
            f"{_SYMBOLS.get(r.outcome, '=')} {terminal_safe(r.source.name)}  {terminal_safe(what)}"
        )
        console.print(line + f"  [dim]{r.duration_ms} ms[/]", highlight=False, soft_wrap=True)

    if console.is_terminal and not as_json and len(targets) > 1:
        with Progress(
            TextColumn("checking"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("check", total=len(targets))

            def tick(r: pipeline.CheckResult) -> None:
                report(r)
                progress.advance(task)

            pipeline.check(store, targets, clock=lambda: datetime.now(UTC), on_result=tick)
    else:
        pipeline.check(store, targets, clock=lambda: datetime.now(UTC), on_result=report)
    failed = sum(r.failed for r in results)
    if not as_json:
        new = sum(r.outcome == "new_version" for r in results)
        click.echo(
            f"{len(results)} checked: {new} new version{'s' if new != 1 else ''}, "
            f"{len(results) - new - failed} unchanged, {failed} failed",
            err=True,
        )
    return 1 if failed else 0


# -- history / show -------------------------------------------------------------


def version_row(source: Source, v: Version) -> dict[str, Any]:
    row = asdict(v)
    row["source"] = source.label or source.url
    return row


@cli.command()
@click.argument("source")
@JSON_LINES
@click.pass_obj
def history(app: App, source: str, as_json: bool) -> None:
    """List the versions of SOURCE."""
    store = app.store()
    s = store.get_source(source)
    rows = store.versions(s.id)
    if as_json:
        emit_json(version_row(s, v) for v in rows)
        return
    table = Table("#", "captured", "chars", "raw bytes", "title", title=terminal_safe(s.name))
    for v in rows:
        table.add_row(
            str(v.number),
            _when(v.captured_at),
            str(v.text_length),
            str(v.raw_length or "-"),
            terminal_safe(v.title or ""),
        )
    Console().print(table)


@cli.command()
@click.argument("source")
@click.argument("version", type=int, required=False)
@click.option("--raw", is_flag=True, help="The raw response body instead of the text.")
@click.pass_obj
def show(app: App, source: str, version: int | None, raw: bool) -> None:
    """Print a version's text (default: the latest), or its raw body."""
    store = app.store()
    s = store.get_source(source)
    if version is None:
        latest = store.latest_version(s.id)
        if latest is None:
            raise UsageError(f"{s.name} has no versions yet; run 'claimwatch check {s.name}'")
        v = latest
    else:
        v = store.get_version(s, version)
    data = store.read_raw(v) if raw else store.read_text(v).encode("utf-8") + b"\n"
    out = sys.stdout.buffer
    if sys.stdout.isatty():
        data = terminal_safe(data.decode("utf-8", "replace")).encode("utf-8")
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
    """Show what changed between two versions of SOURCE (default: the last two)."""
    store = app.store()
    s = store.get_source(source)
    numbers = [v.number for v in store.versions(s.id)]
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
    options = RenderOptions(context=context, only=frozenset(only or UNIT_KINDS), color=_use_color())
    header = Header(s.name, _version_label(old_v), _version_label(new_v), s.url)
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
        _console().print(renderer(change, new_text, header, options), highlight=False)


def _use_color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _console() -> Console:
    return Console(no_color=not _use_color(), highlight=False, soft_wrap=not sys.stdout.isatty())


def parse_since(value: str, now: datetime) -> datetime:
    """``2d``, ``36h`` (ago) or an ISO date/time."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return now - timedelta(seconds=parse_duration(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@cli.command()
@SINCE
@SOURCE
@click.option("--min-significance", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many.")
@JSON_LINES
@click.pass_obj
def changes(
    app: App,
    since: str | None,
    source_ref: str | None,
    min_significance: float,
    limit: int | None,
    as_json: bool,
) -> None:
    """The change log across all sources, newest first."""
    store = app.store()
    source_id = store.get_source(source_ref).id if source_ref else None
    rows = store.changes(
        parse_since(since, app.now) if since else None, source_id, min_significance, limit
    )
    if as_json:
        emit_json(
            {
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
            for c in rows
        )
        return
    table = Table("when", "source", "versions", "sig.", "summary")
    for c in rows:
        table.add_row(
            _when(c.created_at),
            terminal_safe(c.source_name),
            f"{c.from_version} -> {c.to_version}",
            f"{c.significance:.2f}",
            terminal_safe(
                c.summary + (f" ({c.reasons[0]})" if c.reasons and c.kind == "edit" else "")
            ),
        )
    _console().print(table)


# -- claims and flags -------------------------------------------------------------

_CLAIMS_FILE = click.option(
    "--claims",
    "claims_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use this claims file instead of the claims stored by 'init'.",
)


def _claims(app: App, claims_file: Path | None) -> list[Claim]:
    if claims_file is not None:
        return list(load_claims(claims_file))
    return [claim_from_dict(c.data) for c in app.store().claims()]


@cli.group("claims")
def claims_group() -> None:
    """The article's claims, and the evidence gathered for and against them."""


@claims_group.command("list")
@_CLAIMS_FILE
@JSON_LINES
@click.pass_obj
def claims_list(app: App, claims_file: Path | None, as_json: bool) -> None:
    """Each claim with its count of supporting and contradicting flags, and the latest."""
    counts = {c.id: c for c in app.store().claims(active_only=False)}
    rows: list[dict[str, Any]] = []
    for claim in _claims(app, claims_file):
        stored = counts.get(claim.id)
        rows.append(
            {
                "id": claim.id,
                "en": claim.en,
                "ar": claim.ar,
                "supports": stored.supports if stored else 0,
                "contradicts": stored.contradicts if stored else 0,
                "mentions": stored.mentions if stored else 0,
                "latest": stored.latest if stored else None,
            }
        )
    if as_json:
        emit_json(rows)
        return
    table = Table("claim", "for", "against", "mentions", "latest", "statement")
    for r in rows:
        table.add_row(
            r["id"],
            str(r["supports"]),
            str(r["contradicts"]),
            str(r["mentions"]),
            _when(r["latest"]),
            terminal_safe(r["en"]),
        )
    _console().print(table)


def flag_row(f: StoredFlag) -> dict[str, Any]:
    return {
        "id": f.id,
        "claim": f.claim_id,
        "stance": f.stance,
        "score": f.score,
        "evidence": f.evidence,
        "reasons": f.reasons,
        "source": f.source_name,
        "url": f.source_url,
        "version": f.version,
        "title": f.title,
        "captured_at": f.created_at,
        "change_id": f.change_id,
    }


@claims_group.command("show")
@click.argument("claim_id", metavar="ID")
@_CLAIMS_FILE
@click.option("--json", "as_json", is_flag=True, help="One JSON object per flag.")
@click.pass_obj
def claims_show(app: App, claim_id: str, claims_file: Path | None, as_json: bool) -> None:
    """The claim and its evidence timeline, newest first."""
    known = {c.id: c for c in _claims(app, claims_file)}
    if claim_id not in known:
        raise UsageError(f"no claim {claim_id!r}; see 'claimwatch claims list'")
    claim = known[claim_id]
    found = app.store().flags(claim_id=claim_id)
    if as_json:
        emit_json(flag_row(f) for f in found)
        return
    console = _console()
    console.print(f"[bold]{claim.id}[/]\n{terminal_safe(claim.en)}\n{terminal_safe(claim.ar)}")
    if not found:
        console.print("no evidence yet")
    for f in found:
        console.print(
            f"\n{_when(f.created_at)}  {f.stance} ({f.score:.2f})  "
            f"{terminal_safe(f.source_name)} v{f.version}"
        )
        console.print(
            f"  {terminal_safe(f.evidence)}", style="dim" if f.stance == "mentions" else None
        )
        console.print(f"  why: {terminal_safe('; '.join(f.reasons[:4]))}", style="dim")


@claims_group.command("match")
@click.argument("passages", type=click.File("r", encoding="utf-8"), metavar="FILE.jsonl")
@_CLAIMS_FILE
@click.option("--semantic", is_flag=True, help="Add the multilingual embedding layer (extra).")
@click.pass_obj
def claims_match(app: App, passages: Any, claims_file: Path | None, semantic: bool) -> None:
    """Match passages ({"id", "text"} per line; - for stdin) against the claims, without
    touching the store. Default claims: the seeds directory's claims.yaml."""
    if claims_file is None:
        seeds_dir = default_seeds_dir()
        if seeds_dir is None or not (seeds_dir / "claims.yaml").exists():
            raise UsageError("no claims file found; pass --claims FILE")
        claims_file = seeds_dir / "claims.yaml"
    claims = load_claims(claims_file)
    options = MatchOptions()
    if semantic:
        from archiver.semantic import E5Similarity

        options = MatchOptions(semantic=E5Similarity())
    name = getattr(passages, "name", "input")
    for n, line in enumerate(passages, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            text = item["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"{name}:{n}: expected a JSON object with 'id' and 'text' ({exc})"
            ) from None
        found = match(text, claims, options)
        emit_json(
            [
                {
                    "id": item.get("id"),
                    "flags": [
                        {
                            "claim": f.claim,
                            "stance": f.stance,
                            "score": f.score,
                            "evidence": f.evidence,
                            "reasons": list(f.reasons),
                        }
                        for f in found
                    ],
                }
            ]
        )


@cli.command("flags")
@click.option("--claim", "claim_id", help="Only this claim.")
@click.option("--stance", type=click.Choice(["supports", "contradicts", "mentions"]))
@SINCE
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@SOURCE
@click.option("--limit", type=click.IntRange(1), default=None)
@JSON_LINES
@click.pass_obj
def flags_cmd(
    app: App,
    claim_id: str | None,
    stance: str | None,
    since: str | None,
    min_score: float,
    source_ref: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Flags: where new text bears on a claim, with stance, score and evidence."""
    store = app.store()
    source_id = store.get_source(source_ref).id if source_ref else None
    found = store.flags(
        claim_id,
        stance,
        parse_since(since, app.now) if since else None,
        min_score,
        source_id,
        limit,
    )
    if as_json:
        emit_json(flag_row(f) for f in found)
        return
    table = Table("when", "claim", "stance", "score", "source", "evidence")
    for f in found:
        table.add_row(
            _when(f.created_at),
            f.claim_id,
            f.stance,
            f"{f.score:.2f}",
            terminal_safe(f"{f.source_name} v{f.version}"),
            terminal_safe(f.evidence),
        )
    _console().print(table)


# -- digest ---------------------------------------------------------------------


@cli.command()
@click.option("--dry-run", is_flag=True, help="Compose only: mark nothing as sent.")
@click.option("--send", "send_mail", is_flag=True, help="Send it (SMTP settings from the env).")
@SINCE
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the .eml and an .html preview here.",
)
@click.option("--send-empty", is_flag=True, help="Send a 'nothing changed' digest too.")
@click.pass_obj
def digest(
    app: App,
    dry_run: bool,
    send_mail: bool,
    since: str | None,
    out_dir: Path | None,
    send_empty: bool,
) -> int:
    """The email digest: what changed and what it means for the claims.

    Without --since it covers everything since the last digest that was sent.
    SMTP: CLAIMWATCH_SMTP_HOST, _PORT, _TLS (none|starttls|ssl), _USER,
    _PASSWORD (or _PASSWORD_FILE), _FROM, _TO (comma-separated)."""
    if dry_run == send_mail:
        raise UsageError("give --dry-run or --send")
    settings = settings_from_env()
    options = DigestOptions(subject_prefix=settings.subject_prefix, send_empty=send_empty)
    result = digest_job.run(
        app.store(),
        settings,
        app.now,
        send_mail=send_mail,
        since=parse_since(since, app.now) if since else None,
        out_dir=out_dir,
        options=options,
    )
    for path in result.files:
        click.echo(f"wrote {path}", err=True)
    if result.status == "dry-run" and result.composed is not None and not out_dir:
        click.echo(f"Subject: {result.composed.subject}\n")
        click.echo(result.composed.text)
    elif result.status == "failed":
        raise SendError(result.error or "the digest was not sent")
    else:
        subject = result.composed.subject if result.composed else "(the interrupted digest)"
        click.echo(
            {
                "sent": f"sent: {subject}",
                "resent": f"resent {result.message_id} "
                "(a previous send was interrupted); run again for anything newer",
                "empty": "nothing new since the last digest; nothing sent",
                "dry-run": f"composed: {subject}",
            }[result.status]
        )
    return 0


# -- service ----------------------------------------------------------------------


def _setup_logging(fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("claimwatch")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        for key in ("source", "outcome"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        return json.dumps(entry, ensure_ascii=False)


@cli.command()
@click.option(
    "--workers-id", "--worker-id", "worker_id", help="This worker's id (default: host-pid)."
)
@click.option(
    "--concurrency", type=click.IntRange(1), help="Checks at once (config: service.concurrency)."
)
@click.option(
    "--once", is_flag=True, help="Run everything due, then exit (for cron or a systemd timer)."
)
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Logs on stderr.")
@click.option(
    "--metrics-port", type=click.IntRange(1, 65535), help="Serve Prometheus metrics here."
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@click.pass_obj
def serve(
    app: App,
    worker_id: str | None,
    concurrency: int | None,
    once: bool,
    log_format: str | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run the service: check sources when due, send the digest on its cron.

    On SQLite one serve owns the store; on PostgreSQL run as many as you like.
    SIGTERM/SIGINT finish the running checks and exit; SIGHUP reloads the seeds."""
    cfg = app.config
    _setup_logging(log_format or cfg.log_format)
    store = app.store()
    options = ServiceOptions(
        worker_id=worker_id or default_worker_id(),
        tick=cfg.tick,
        lease=cfg.lease,
        jitter=0 if once else cfg.jitter,
        digest_cron=cfg.digest_cron,
        timezone=cfg.timezone,
        seeds=Path(cfg.seeds) if cfg.seeds else None,
    )
    fetch = FetchOptions(
        concurrency=concurrency or cfg.concurrency, per_host=cfg.per_host, host_delay=cfg.host_delay
    )
    if cfg.user_agent:
        fetch = replace(fetch, user_agent=cfg.user_agent)
    check_options = pipeline.CheckOptions(
        fetch=fetch, semantic=cfg.semantic, default_interval=cfg.default_every
    )
    metrics = Metrics() if metrics_port else None
    with ServeLock(store):
        service = Service(store, options, check_options, cfg.smtp, metrics=metrics)
        if once:
            sys.exit(service.run_once())
        if metrics is not None and metrics_port:
            metrics.serve(metrics_port, metrics_host)
        code = service.serve()
    if not service.drained:  # a check thread is still running: leave without joining it
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


@cli.group("config")
def config_group() -> None:
    """The configuration file (claimwatch.toml) and environment."""


@config_group.command("show")
@click.pass_obj
def config_show(app: App) -> None:
    """The effective configuration, secrets masked."""
    data = app.config.masked()
    data["database"]["url"] = mask_url(app.db_url)
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# -- status -------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
def status(app: App, as_json: bool) -> None:
    """Counts, workers, the due backlog, failing sources, and the digests."""
    store = app.store()
    st = store.status(app.now)
    backlog = leases.backlog(store, app.now)
    workers = leases.list_workers(store)
    sent = [d for d in digest_state.history(store) if d.status == "sent"]
    last_digest = sent[0].sent_at if sent else None
    next_digest = None
    if app.config.digest_cron:
        next_digest = next_cron(app.config.digest_cron, app.now, app.config.timezone)
    data = {
        "db": mask_url(app.db_url),
        "sources": st.sources,
        "versions": st.versions,
        "captures": st.captures,
        "failed_captures": st.failed_captures,
        "blob_bytes": st.blob_bytes,
        "backlog": {
            "due": backlog.due,
            "leased": backlog.leased,
            "oldest_due_at": backlog.oldest_due_at,
            "oldest_source": backlog.oldest_source,
        },
        "workers": [
            {
                "id": w["id"],
                "host": w["host"],
                "pid": w["pid"],
                "started_at": w["started_at"],
                "heartbeat_at": w["heartbeat_at"],
                "checks": w["checks"],
                "status": w["status"],
            }
            for w in workers
        ],
        "failing": [
            {"source": s.name, "consecutive_failures": s.consecutive_failures} for s in st.failing
        ],
        "next_due": [{"source": s.name, "next_check_at": s.next_check_at} for s in st.next_due],
        "last_digest": last_digest,
        "next_digest": next_digest,
    }
    if as_json:
        emit_json([data])
        return
    console = _console()
    console.print(f"store      {data['db']}", highlight=False)
    console.print(
        f"sources    {st.sources}\nversions   {st.versions}\n"
        f"captures   {st.captures} ({st.failed_captures} failed)\n"
        f"blob bytes {st.blob_bytes}",
        highlight=False,
    )
    oldest = ""
    if backlog.due:
        name = terminal_safe(backlog.oldest_source or "")
        oldest = f", oldest due since {_when(backlog.oldest_due_at)} ({name})"
    console.print(f"backlog    {backlog.due} due, {backlog.leased} leased{oldest}", highlight=False)
    console.print(
        f"digest     last sent {_when(last_digest)}, next {_when(next_digest)}",
        highlight=False,
    )
    for w in workers:
        console.print(
            f"worker     {w['id']} ({w['host']}, pid {w['pid']}) {w['status']}, "
            f"heartbeat {_when(w['heartbeat_at'])}, {w['checks']} checks",
            highlight=False,
        )
    if st.failing:
        console.print("[red]failing:[/]")
        for s in st.failing:
            console.print(
                f"  {terminal_safe(s.name)}: {s.consecutive_failures} in a row", highlight=False
            )
    if st.next_due:
        console.print("next due:")
        for s in st.next_due:
            console.print(f"  {_when(s.next_check_at)}  {terminal_safe(s.name)}", highlight=False)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map every error to one stderr line and an exit code."""
    try:
        rv = cli.main(args=argv, prog_name="claimwatch", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("claimwatch: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # bad usage: click's own message
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        click.echo(f"claimwatch: error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except ClaimwatchError as exc:
        click.echo(f"claimwatch: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("claimwatch: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: one line, the traceback on request
        if os.environ.get("CLAIMWATCH_DEBUG"):
            raise
        click.echo(
            f"claimwatch: internal error: {type(exc).__name__}: {exc} "
            "(set CLAIMWATCH_DEBUG=1 for the traceback, and please report it)",
            err=True,
        )
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
