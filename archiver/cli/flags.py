"""Commands about the flags: flags (the list), flags review|confirm|reject|add|scan."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.text import Text

from archiver.app.evidence import add_evidence, require_active
from archiver.claims.matcher import stance_unsure
from archiver.cli.base import (
    JSON_LINES,
    LIMIT,
    SEMANTIC,
    SINCE,
    SOURCE,
    App,
    Share,
    cli,
    emit_json,
    make_console,
    note_limit,
    parse_since,
    use_semantic,
    version_of,
)
from archiver.cli.claims import MODEL, STANCE_NAMES, WORKERS, flag_row, model_path, print_flag
from archiver.text.terminal import terminal_safe
from store.errors import UsageError
from store.models import FlagFilter
from store.repo import Store

if TYPE_CHECKING:
    from rich.console import Console

    from archiver.app.matching import Parallel
    from archiver.app.scan import Found
    from archiver.claims.matcher import Matcher
    from archiver.claims.rules import Claim
    from store.models import Source


@cli.group("flags", invoke_without_command=True)
@click.option("--claim", "claim_id", help="Only this claim.")
@click.option("--stance", type=click.Choice(["supports", "contradicts", "mentions"]))
@SINCE
@click.option("--min-score", type=Share(), default=0.0, show_default=True)
@SOURCE
@click.option(
    "--removed/--no-removed",
    default=None,
    help="Only flags of sentences an edit removed (the page no longer says them); "
    "--no-removed leaves them out [default: both].",
)
@LIMIT
@JSON_LINES
@click.pass_context
def flags_cmd(
    ctx: click.Context,
    claim_id: str | None,
    stance: str | None,
    since: str | None,
    min_score: float,
    source_ref: str | None,
    removed: bool | None,
    limit: int,
    as_json: bool,
) -> None:
    """Flags: where new text bears on a claim, with stance, score and evidence.

    Review them with 'flags review' (or 'flags confirm ID' / 'flags reject ID'): a
    verdict is kept, a rejected sentence is never flagged again for that claim, and
    'claims train' learns from the verdicts. 'flags add' flags a sentence the matcher
    missed; 'flags scan' matches the archive's texts again, for a claim added or
    improved after they were archived."""
    if ctx.invoked_subcommand is not None:
        return
    app: App = ctx.obj
    store = app.store()
    source_id = store.get_source(source_ref).id if source_ref else None
    _known_claim(store, claim_id)
    which = FlagFilter(
        claim_id=claim_id,
        stance=stance,
        since=parse_since(since, app.now) if since else None,
        min_score=min_score,
        source_id=source_id,
        limit=limit or None,
        removed=removed,
    )
    found = store.flags(which)
    if as_json:
        emit_json(flag_row(f) for f in found)
        note_limit(len(found), limit)
        return
    console = make_console()
    for i, f in enumerate(found):
        if i:
            console.print()
        print_flag(console, f, claim=True)
    filtered = claim_id or stance or since or min_score or source_ref or removed is not None
    note_limit(
        len(found),
        limit,
        "no flags match these options"
        if filtered
        else "no flags yet: a flag is raised when new text bears on a claim (a page's "
        "first version is its baseline; an article's is matched); 'claimwatch flags scan' "
        "matches what is archived now",
    )


def _known_claim(store: Store, claim_id: str | None) -> None:
    """A misspelt --claim is an error, not an empty list (retired claims still count:
    their flags are kept)."""
    if claim_id is not None and not store.has_claim(claim_id):
        raise UsageError(f"no claim {claim_id!r}; see 'claimwatch claims list'")


_STANCE = click.option(
    "--stance",
    type=click.Choice(STANCE_NAMES),
    help="The right stance, when the matcher's was wrong.",
)


@flags_cmd.command("confirm")
@click.argument("flag_id", type=int, metavar="ID")
@_STANCE
@click.pass_obj
def flags_confirm(app: App, flag_id: int, stance: str | None) -> None:
    """The flag is right: it bears on its claim (with --stance, the stance it really has)."""
    f = app.store().review(flag_id, "confirmed", app.now, stance)
    click.echo(terminal_safe(f"flag {f.id} confirmed: {f.claim_id}, {f.verdict_stance}"))


@flags_cmd.command("reject")
@click.argument("flag_id", type=int, metavar="ID")
@click.pass_obj
def flags_reject(app: App, flag_id: int) -> None:
    """The flag is wrong: its sentence does not bear on its claim (and never will be
    flagged for it again)."""
    f = app.store().review(flag_id, "rejected", app.now)
    click.echo(terminal_safe(f"flag {f.id} rejected: {f.claim_id}"))


@flags_cmd.command("add")
@click.argument("source")
@click.argument("version", type=int, required=False)
@click.option("--claim", "claim_id", required=True, help="The claim the sentence bears on.")
@click.option("--stance", type=click.Choice(STANCE_NAMES), required=True)
@click.option(
    "--sentence",
    "fragment",
    required=True,
    help="The sentence, or enough of it to tell it from the version's other sentences.",
)
@click.pass_obj
def flags_add(
    app: App, source: str, version: int | None, claim_id: str, stance: str, fragment: str
) -> None:
    """Flag a sentence the matcher missed: it bears on a claim (VERSION: default the
    current one). The flag is stored confirmed, and the sentence teaches the matcher
    at once, as a confirmed flag does."""
    store = app.store()
    s, v = version_of(store, source, version)
    added = add_evidence(store, s, v, claim_id, stance, fragment, app.now)
    f = added.flag
    done = "added" if f.added else "confirmed (the matcher had flagged it)"
    click.echo(terminal_safe(f"flag {f.id} {done}: {f.claim_id}, {f.verdict_stance}"))
    click.echo(terminal_safe(f"  {f.evidence}"))
    if added.replaced:
        click.echo(f"({added.replaced} earlier rejection(s) of the sentence for it replaced)")


_ANSWERS = {"c": "confirm", "r": "reject", "s": "skip", "q": "quit", "y": "confirm", "n": "reject"}


@flags_cmd.command("review")
@click.option("--claim", "claim_id", help="Only this claim's flags.")
@LIMIT
@click.pass_obj
def flags_review(app: App, claim_id: str | None, limit: int) -> None:
    """Walk the flags nobody has reviewed yet, newest first: confirm, reject, skip."""
    store = app.store()
    _known_claim(store, claim_id)
    pending = store.flags(FlagFilter(claim_id=claim_id, limit=limit or None, unreviewed=True))
    if not pending:
        click.echo("nothing to review")
        return
    console = make_console()
    said = {c.id: c.statements[0][1] for c in store.claims(active_only=False) if c.statements}
    done = 0
    for f in pending:
        guess = (
            ", stance unsure: the claim has no examples yet"
            if stance_unsure(f.reasons, None)
            else ""
        )
        console.print(
            Text(
                terminal_safe(f"\nflag {f.id}  {f.claim_id}  {f.stance} ({f.score:.2f}{guess})"),
                style="bold",
            )
        )
        gone = ", removed from the page (the stance is the removed sentence's)" if f.removed else ""
        if f.claim_id in said:  # what the sentence is judged against
            console.print(Text(terminal_safe(f"claim: {said[f.claim_id]}"), style="dim"))
        console.print(terminal_safe(f"{f.source_name} v{f.version}{gone}"), markup=False)
        console.print(terminal_safe(f"  {f.evidence}"), markup=False)
        answer = _ask(
            "[c]onfirm (y), [r]eject (n), [s]kip, [q]uit",
            type=click.Choice(list(_ANSWERS), case_sensitive=False),
            show_choices=False,
        )
        action = "quit" if answer is None else _ANSWERS[answer.lower()]
        if action == "quit":
            break
        if action == "skip":
            continue
        if action == "confirm":
            stance = _ask(
                "stance", type=click.Choice(STANCE_NAMES), default=f.stance, show_default=True
            )
            if stance is None:
                break
            store.review(f.id, "confirmed", app.now, stance)
        else:
            store.review(f.id, "rejected", app.now)
        done += 1
    click.echo(f"{done} reviewed")


def _ask(text: str, **options: Any) -> str | None:
    """``click.prompt``, or None when piped answers run out: the end of the input quits
    the review like [q]uit (every verdict is stored as it is given). Ctrl-C at a
    terminal still aborts."""
    try:
        return str(click.prompt(text, **options))
    except click.Abort:
        if sys.stdin.isatty():
            raise
        click.echo("")
        return None


@flags_cmd.command("scan")
@click.option(
    "--claim",
    "claim_ids",
    multiple=True,
    help="Keep only this claim's flags (repeatable; every claim is still matched, since "
    "the model weighs each claim against the others).",
)
@SOURCE
@click.option(
    "--history",
    is_flag=True,
    help="Read every version, not only the current one: each paragraph once per source, "
    "in the first version that has it (a flag on text since dropped says so).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be flagged; store nothing.")
@MODEL
@SEMANTIC
@WORKERS
@JSON_LINES
@click.pass_obj
def flags_scan(
    app: App,
    claim_ids: tuple[str, ...],
    source_ref: str | None,
    history: bool,
    dry_run: bool,
    model: Path | None,
    semantic: bool | None,
    workers: int | None,
    as_json: bool,
) -> None:
    """Match the text every watched page shows now (with --history, every version's)
    against the claims, and flag what bears on them. A check matches only new text, so a
    claim added to the claims file (or given a statement in another language, examples
    or verdicts) never meets what was archived before: this does. Feeds and seed
    articles are not scanned; a flag a check already raised, or a sentence the reviewer
    rejected, is not flagged again."""
    from archiver.app.scan import ScanOptions, scan, scanned
    from archiver.app.story import stored_claims

    use_semantic(app, semantic)
    store = app.store()
    claims = stored_claims(store)
    if not claims:
        raise UsageError("no claims to scan for; load a claims file with 'claimwatch init'")
    for claim_id in claim_ids:
        require_active(store, claim_id)
    source = store.get_source(source_ref) if source_ref else None
    if source is not None and not scanned(source):
        raise UsageError(f"{source.name} is a {source.kind}: only pages and articles are scanned")
    options = ScanOptions(frozenset(claim_ids), source.id if source else None, dry_run, history)
    console = make_console()

    def show(found: Found) -> None:
        if found.stored:
            for f in store.flags(FlagFilter(ids=found.stored)):
                if as_json:
                    emit_json([flag_row(f)])
                else:
                    print_flag(console, f, claim=True)
                    console.print()
            return
        where = f"{found.source.name} v{found.version.number}"
        for r in found.flags:  # a dry run: the flags as the matcher gave them
            if as_json:  # the fields of flags --json that a flag not yet stored has
                row = {"claim": r.claim_id, "stance": r.stance, "score": r.score}
                row |= {"evidence": r.evidence, "reasons": r.reasons}
                emit_json([{**row, "source": found.source.name, "version": found.version.number}])
                continue
            console.print(terminal_safe(f"{r.claim_id}  {r.stance} ({r.score:.2f})  {where}"))
            console.print(terminal_safe(f"  {r.evidence}"))
            console.print(f"  why: {terminal_safe('; '.join(r.reasons[:4]))}", style="dim")
            console.print()

    with (
        _matching(app, store, claims, model, workers) as how,
        _progress(console, store, source) as tick,
    ):
        report = scan(store, claims, how, options, app.now, on_found=show, on_source=tick)
    if dry_run:
        done = f"would flag {sum(len(f.flags) for f in report.found)}; dry run, nothing stored"
    else:
        done = f"{len(report.stored)} new flag(s)"
    click.echo(f"scanned {report.versions} text(s): {done}", err=True)


@contextmanager
def _progress(
    console: Console, store: Store, source: Source | None
) -> Iterator[Callable[[Source], None] | None]:
    """A progress bar over the sources on a terminal (a scan of a large archive takes
    minutes); elsewhere nothing, so logs and pipes get only the flags and the summary."""
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), console=console, transient=True
    ) as progress:
        task = progress.add_task("scan", total=store.count_scanned() if source is None else 1)
        yield lambda _source: progress.advance(task)


@contextmanager
def _matching(
    app: App, store: Store, claims: tuple[Claim, ...], model: Path | None, workers: int | None
) -> Iterator[Matcher | Parallel]:
    """How ``flags scan`` matches: as ``check`` does (the story's bank, vectors and probes
    from the store), in worker processes when there are cores for them."""
    from archiver.app.matching import Parallel, default_workers
    from archiver.app.story import prepare_matching
    from archiver.claims.matcher import Matcher, make_matcher

    if not app.config.semantic:
        yield Matcher()
        return
    workers = default_workers() if workers is None else workers
    with tempfile.TemporaryDirectory(prefix="claimwatch-") as workdir:
        spec = prepare_matching(store, claims, model_path(app, model), Path(workdir), app.now)
        yield Parallel(spec, workers) if workers >= 1 else make_matcher(spec)
