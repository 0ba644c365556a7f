"""Commands about the claims: claims list|show|match|eval|train (flags: cli/flags.py)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from rich.text import Text

from archiver.app.seeds import default_seeds_dir
from archiver.app.words import score_words
from archiver.cli.base import (
    JSON_LINES,
    SEMANTIC,
    App,
    cli,
    emit_json,
    make_console,
    use_semantic,
    when,
)
from archiver.text.terminal import terminal_safe
from store.errors import NESTED, ConfigError, UsageError
from store.models import FlagFilter, StoredFlag

if TYPE_CHECKING:
    from archiver.claims.rules import Claim
    from store.repo import Store

# -- claims and flags -------------------------------------------------------------

_CLAIMS_FILE = click.option(
    "--claims",
    "claims_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use this claims file instead of the claims stored by 'init'.",
)
# match, eval and train read no store: their claims come from a file.
_STORY_FILE = click.option(
    "--claims",
    "claims_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The claims file [default: claims.yaml in the seeds directory: service.seeds "
    "(CLAIMWATCH_SEEDS), else ./seeds].",
)


def _claims(app: App, claims_file: Path | None) -> list[Claim]:
    from archiver.app.claimsfile import load_claims
    from archiver.app.story import stored_claims  # the stemmers load only when needed

    if claims_file is not None:
        return list(load_claims(claims_file))
    return list(stored_claims(app.store()))


@cli.group("claims")
def claims_group() -> None:
    """The article's claims, and the evidence gathered for and against them."""


@claims_group.command("list")
@_CLAIMS_FILE
@JSON_LINES
@click.pass_obj
def claims_list(app: App, claims_file: Path | None, as_json: bool) -> None:
    """Each claim with its count of supporting and contradicting flags, and the latest."""
    store = app.store()
    from archiver.app.claimsfile import load_story

    story = load_story(claims_file) if claims_file is not None else None
    if story is not None:
        labelled = [(e.claim, e.stance) for e in story.bank().examples]
    else:  # the story's examples and the reviewer's verdicts, as the matcher reads them
        labelled = [(claim, stance) for claim, stance, _text, _origin in store.examples()]
    rows = claim_rows(store, story.claims if story is not None else None, labelled)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo(
            "(no claims yet: write a claims.yaml, as docs/claims.md says, and load it with "
            "'claimwatch init --seeds DIR')",
            err=True,
        )
        return
    # A short paragraph each: a claim's id is what 'claims show ID' takes, so it is
    # never cut short, and its statement is read whole.
    console = make_console()
    summary = story.summary if story is not None else store.story_summary()
    if summary:
        console.print(terminal_safe(summary), style="italic")
        console.print()
    for r in rows:
        latest = f"; latest {when(r['latest'])}" if r["latest"] else ""
        removed = f", {r['removed']} removed from pages" if r["removed"] else ""
        console.print(
            f"{terminal_safe(r['id'])}  {r['supports']} for, "
            f"{r['contradicts']} against, {r['mentions']} mentions{removed}{latest}"
        )
        console.print(f"  {terminal_safe(r['statement'])}")
        ex = r["examples"]
        if sum(ex.values()):
            console.print(
                f"  examples: {ex['supports']} for, {ex['contradicts']} against, "
                f"{ex['mentions']} mentions",
                style="dim",
            )
        else:  # docs/claims.md, "Stance needs examples"
            console.print(
                "  no examples yet: its flags cannot tell support from contradiction", style="dim"
            )
    misses = sum(1 for claim, _stance in labelled if claim is None)
    if misses:
        console.print(f"\nnear misses (examples of no claim): {misses}", style="dim")
    elif any(claim for claim, _stance in labelled):  # docs/claims.md, "Reviewing flags"
        console.print(
            "\nno near misses yet: everyday news stands in for them until a flag is "
            "rejected or a passage without a label is added to the examples",
            style="dim",
        )


def claim_rows(
    store: Store,
    claims: Sequence[Claim] | None = None,
    examples: Sequence[tuple[str | None, str | None]] | None = None,
) -> list[dict[str, Any]]:
    """Each claim as `claims list --json` (and /api/v1/claims) give it: its statements,
    its flags' counts by stance as the reviewer left them, the latest flag's time, and
    its examples by stance. ``claims`` and ``examples`` ((claim, stance) each) default
    to the store's: the active claims, and the story's examples with the reviewer's
    verdicts, as the matcher reads them."""
    from archiver.claims.rules import claim_from_dict  # the stemmers load only when needed

    counts = {c.id: c for c in store.claims(active_only=False)}
    if claims is None:
        claims = [claim_from_dict(c.data) for c in counts.values() if c.active]
    if examples is None:
        examples = [(claim, stance) for claim, stance, _text, _origin in store.examples()]
    labelled = Counter(examples)
    rows: list[dict[str, Any]] = []
    for claim in claims:
        stored = counts.get(claim.id)
        rows.append(
            {
                "id": claim.id,
                "statement": claim.text,
                "statements": dict(claim.statements),
                "supports": stored.supports if stored else 0,
                "contradicts": stored.contradicts if stored else 0,
                "mentions": stored.mentions if stored else 0,
                "removed": stored.removed if stored else 0,
                "latest": stored.latest if stored else None,
                "examples": {s: labelled[(claim.id, s)] for s in STANCE_NAMES},
            }
        )
    return rows


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
        "verdict": f.verdict,
        "verdict_stance": f.verdict_stance,
        "added": f.added,  # flagged by the reviewer (flags add), not the matcher
        "removed": f.removed,  # an edit took the sentence away: the version no longer says it
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
    found = app.store().flags(FlagFilter(claim_id=claim_id))
    if as_json:
        emit_json(flag_row(f) for f in found)
        return
    console = make_console()
    console.print(Text(terminal_safe(claim.id), style="bold"))
    for lang, text in claim.statements:
        console.print(terminal_safe(f"[{lang}] {text}"), markup=False)
    if not found:
        console.print("no evidence yet")
    for f in found:
        console.print()
        print_flag(console, f)


def print_flag(console: Any, f: StoredFlag, *, claim: bool = False) -> None:
    """One flag as a short paragraph, the evidence sentence whole on its own lines (in
    a table's column, 80 columns wrapped it a word a line): when, id, stance and score,
    the claim (``claim``), the source and version, the evidence, and why."""
    reviewed = ""
    if f.verdict == "confirmed":
        reviewed = f"  confirmed as {f.final_stance}"
    elif f.verdict == "rejected":
        reviewed = "  rejected by a reviewer"
    about = f"  {terminal_safe(f.claim_id)}" if claim else ""
    gone = "  removed from the page" if f.removed else ""
    console.print(
        f"{when(f.created_at)}  #{f.id} {f.stance} ({score_words(f.score, f.added)}){about}  "
        f"{terminal_safe(f.source_name)} v{f.version}{gone}{reviewed}"
    )
    console.print(f"  {terminal_safe(f.evidence)}", style="dim" if f.stance == "mentions" else None)
    console.print(f"  why: {terminal_safe('; '.join(f.reasons[:4]))}", style="dim")


def _story(app: App, claims_file: Path | None) -> Path:
    """The claims file to use: --claims, else the seeds directory's claims.yaml. Never
    the checkout's own story by surprise (as ``init``): outside it, a story set up with
    ``init --seeds DIR`` was matched against the seed story's claims without a word."""
    if claims_file is not None:
        return claims_file
    seeds_dir = default_seeds_dir(app.config.seeds, bundled=False)
    if seeds_dir is None or not (seeds_dir / "claims.yaml").exists():
        where = seeds_dir / "claims.yaml" if seeds_dir is not None else "./seeds/claims.yaml"
        raise UsageError(
            f"no claims file ({where} does not exist); pass --claims FILE, or set "
            "service.seeds (CLAIMWATCH_SEEDS) to your story's seeds directory"
        )
    return seeds_dir / "claims.yaml"


def model_path(app: App, model: Path | None) -> str | None:
    return str(model) if model else app.config.claims_model


def _matched(
    app: App,
    story: Any,
    model: Path | None,
    items: Iterable[tuple[Any, str]],
    workers: int | None,
    batch: int,
) -> Iterator[tuple[Any, list[Any]]]:
    """(id, flags) for each (id, passage) of ``items``, in order: in worker processes
    when the semantic layer is on and passages come in batches, with the story's bank
    file kept in the user's cache directory between runs (``archiver.app.matching``)."""
    from archiver.app.matching import Parallel, default_workers, match_stream
    from archiver.claims.matcher import Matcher, make_matcher

    if not app.config.semantic:
        yield from match_stream(items, story.claims, Matcher(), batch)
        return
    workers = default_workers() if workers is None else workers
    with _spec(app, story, model) as (spec, embedder):
        if workers < 1 or batch < 2:
            matcher = make_matcher(spec, embedder=embedder())
            yield from match_stream(items, story.claims, matcher, batch)
        else:
            yield from match_stream(items, story.claims, Parallel(spec, workers), batch)


def _explained(
    app: App, story: Any, model: Path | None, items: Iterable[tuple[Any, str]], batch: int
) -> Iterator[tuple[Any, list[Any], list[Any]]]:
    """(id, flags, every claim's weighing) for each (id, passage), in this process:
    ``claims match --explain`` is for a few passages at a time."""
    from archiver.claims.matcher import batches, explain, make_matcher, prefetch

    with _spec(app, story, model) as (spec, embedder):
        matcher = make_matcher(spec, embedder=embedder())
        for chunk in batches(items, batch):
            prefetch([text for _id, text in chunk], matcher.embedder)
            for item_id, text in chunk:
                yield item_id, *explain(text, story.claims, matcher)


@contextmanager
def _spec(app: App, story: Any, model: Path | None) -> Iterator[tuple[Any, Any]]:
    """The story's matcher spec, its bank file kept in the user's cache directory
    between runs, and the embedder (loaded on first call: only to write a bank file,
    or to match in this process)."""
    from functools import cache

    from archiver.app.matching import kept_spec
    from archiver.claims.bank import with_background
    from archiver.claims.semantic import E5Embedder

    embedder = cache(E5Embedder)
    bank, path = with_background(story.bank()), model_path(app, model)
    with kept_spec(bank, story.claims, path, bank_cache_dir(), embedder) as spec:
        yield spec, embedder


def bank_cache_dir() -> Path:
    """Where ``claims match`` and ``claims eval`` keep a story's bank file between runs
    (``$XDG_CACHE_HOME/claimwatch/banks`` on Linux)."""
    import platformdirs

    return platformdirs.user_cache_path("claimwatch") / "banks"


WORKERS = click.option(
    "--workers",
    type=click.IntRange(0, 256),  # as service.workers: not a process per number typed
    default=None,
    help="Processes to match in [default: one per core on 2 or more cores; 0: this one].",
)


MODEL = click.option(
    "--model",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A model written by 'claims train' [default: the config's matching.model, "
    "else the shipped one].",
)


@claims_group.command("match")
@click.argument("passages", type=click.File("rb"), metavar="FILE.jsonl")
@_STORY_FILE
@MODEL
@SEMANTIC
@WORKERS
@click.option(
    "--explain",
    is_flag=True,
    help="Also give every claim's bears-on probability, the threshold it had to reach, "
    "and the sentence it was weighed on: why a claim was flagged, or not.",
)
@click.pass_obj
def claims_match(
    app: App,
    passages: Any,
    claims_file: Path | None,
    model: Path | None,
    semantic: bool | None,
    workers: int | None,
    explain: bool,
) -> None:
    """Match passages ({"id", "text"} per line; - for stdin) against the claims, without
    touching the store. Default claims: the seeds directory's claims.yaml. The vectors
    of the claims and examples are kept in the user's cache directory for the next run."""
    from archiver.app.claimsfile import load_story
    from archiver.claims.matcher import BATCH

    use_semantic(app, semantic)
    if explain and not app.config.semantic:
        raise UsageError(
            "--explain needs the semantic layer: the lexical rules give no score to a "
            "claim they do not flag; drop --no-semantic (or set matching.semantic on)"
        )
    story = load_story(_story(app, claims_file))
    name = getattr(passages, "name", "input")

    def items() -> Iterator[tuple[Any, str]]:
        for n, raw in enumerate(passages, start=1):
            try:
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")  # a BOM is fine
            except UnicodeDecodeError as exc:  # read as bytes, so the line is known
                raise UsageError(
                    f"{name}:{n}: not UTF-8 text ({exc.reason} at byte {exc.start + 1} of the "
                    "line); save the file as UTF-8"
                ) from None
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
            except RecursionError:
                raise UsageError(f"{name}:{n}: {NESTED}") from None
            yield item.get("id"), text

    # From a pipe, passages are matched BATCH at a time (faster), and every good line
    # before a bad one is answered; typed at a terminal, each is answered at once.
    batch = 1 if getattr(passages, "isatty", lambda: False)() else BATCH
    if explain:
        for item_id, found, weighed in _explained(app, story, model, items(), batch):
            flags = [_flag_json(f) for f in found]
            emit_json([{"id": item_id, "flags": flags, "claims": [asdict(w) for w in weighed]}])
        return
    for item_id, found in _matched(app, story, model, items(), workers, batch):
        emit_json([{"id": item_id, "flags": [_flag_json(f) for f in found]}])


def _flag_json(f: Any) -> dict[str, Any]:
    return {
        "claim": f.claim,
        "stance": f.stance,
        "score": f.score,
        "evidence": f.evidence,
        "reasons": list(f.reasons),
    }


@claims_group.command("eval")
@click.argument("labelled", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@_STORY_FILE
@MODEL
@SEMANTIC
@WORKERS
@JSON_LINES
@click.pass_obj
def claims_eval(
    app: App,
    labelled: Path,
    claims_file: Path | None,
    model: Path | None,
    semantic: bool | None,
    workers: int | None,
    as_json: bool,
) -> None:
    """Measure the matcher on labelled passages (docs/claims.md gives the format):
    precision, recall and F1 per claim and per language, the stance confusion, 95%
    intervals of the overall figures (a bootstrap over the passages' pages), and what
    'flags --min-score' at 0.5 to 0.9 would keep ([alerts] min_score cuts the same way,
    on supporting and contradicting flags)."""
    from archiver.app.claimsfile import load_story
    from archiver.claims.labelled import read_labelled, tally
    from archiver.claims.matcher import BATCH

    use_semantic(app, semantic)
    story = load_story(_story(app, claims_file))
    rows = read_labelled(labelled, story.claims)
    if not rows:  # figures of nothing would read as a matcher that finds nothing
        raise ConfigError(
            str(labelled),
            "holds no passages to measure on: one JSON object a line, "
            '{"id", "text", "labels"} (docs/claims.md)',
        )
    found = _matched(app, story, model, ((r.id, r.text) for r in rows), workers, BATCH)
    report = tally(rows, story.claims, (flags for _id, flags in found)).to_dict()
    if as_json:
        emit_json([report])
        return
    console = make_console()
    o = report["overall"]
    stance = (
        f"stance accuracy {report['stance_accuracy']:.2f}"
        if report["stance_pairs"]
        else "stance accuracy n/a (no labelled pair was flagged)"
    )
    console.print(
        f"{report['passages']} passages: precision {o['precision']:.2f}, recall "
        f"{o['recall']:.2f}, F1 {o['f1']:.2f}; {stance}"
    )
    ci = report["intervals"]
    if ci:
        console.print(
            "95% intervals: "
            + ", ".join(
                f"{label} {ci[name][0]:.2f}-{ci[name][1]:.2f}"
                for name, label in (
                    ("precision", "precision"),
                    ("recall", "recall"),
                    ("f1", "F1"),
                    ("stance_accuracy", "stance"),
                )
            )
            + f" ({ci['method']})",
            markup=False,
        )
    for title, key in (("claim", "by_claim"), ("language", "by_language")):
        table = Table(title, "precision", "recall", "F1", "tp", "fp", "fn")
        for name, r in report[key].items():
            table.add_row(
                terminal_safe(name),
                f"{r['precision']:.2f}",
                f"{r['recall']:.2f}",
                f"{r['f1']:.2f}",
                str(r["tp"]),
                str(r["fp"]),
                str(r["fn"]),
            )
        console.print(table)
    table = Table("label \\ found", *STANCE_NAMES)
    for want, row in report["stance_confusion"].items():
        table.add_row(want, *(str(row[g]) for g in STANCE_NAMES))
    console.print(table)
    table = Table("flags --min-score", "flags", "precision", "recall", "F1")
    for cut, r in report["by_min_score"].items():
        table.add_row(
            cut,
            str(r["tp"] + r["fp"]),
            f"{r['precision']:.2f}",
            f"{r['recall']:.2f}",
            f"{r['f1']:.2f}",
        )
    console.print(table)


STANCE_NAMES = ("supports", "contradicts", "mentions")


@claims_group.command("train")
@_STORY_FILE
@click.option(
    "--corpus",
    "corpora",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Labelled passages to train on (repeatable) [default: the claims file's examples].",
)
@click.option(
    "--verdicts/--no-verdicts",
    default=True,
    show_default=True,
    help="Also learn from the reviewer's verdicts in the store.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Fold shuffling seed.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("claims-model.json"),
    show_default=True,
    help="Where to write the model (then set matching.model to it).",
)
@click.pass_obj
def claims_train(
    app: App,
    claims_file: Path | None,
    corpora: tuple[Path, ...],
    verdicts: bool,
    seed: int,
    out: Path,
) -> None:
    """Train the claims model on labelled passages (and the reviewer's verdicts), with
    a fixed seed: the same inputs give the same model."""
    from archiver.app.claimsfile import load_story
    from archiver.claims.labelled import Labelled, read_labelled
    from archiver.claims.training import FULL, SPARSE, Settings, too_few, train_model

    story = load_story(_story(app, claims_file))
    paths = corpora or story.examples
    if not paths:
        raise UsageError(
            "nothing to train on: pass --corpus FILE or list examples in the claims file"
        )
    rows = [row for path in paths for row in read_labelled(path, story.claims)]
    if verdicts and _has_store(app):
        known = {c.id for c in story.claims}
        for n, (claim, stance, text, origin) in enumerate(app.store().examples()):
            if origin == "verdict" and (claim is None or claim in known):
                rows.append(
                    Labelled(
                        f"verdict-{n}",
                        text,
                        {claim: stance or "mentions"} if claim else {},
                        group=f"v{n}",
                    )
                )
    settings = Settings(seed=seed)
    reason = too_few(rows, settings.folds)
    if reason:
        raise UsageError(f"{', '.join(map(str, paths))}: {reason}")
    model = train_model(rows, story.claims, settings, [str(p) for p in paths])
    from archiver.app.files import write_file

    write_file(out, json.dumps(model.to_dict(), indent=1) + "\n")
    cv = model.info["cv"]
    by_view = cv.get("by_view", {})
    click.echo(
        f"trained on {len(rows)} passages; cross-validated F1 "
        f"{by_view.get(FULL, cv['with_examples']['f1']):.2f} with every example, "
        f"{by_view.get(SPARSE, 0.0):.2f} with a few a claim, "
        f"{cv['statements_only']['f1']:.2f} from the statements alone; stance accuracy "
        f"{cv['with_examples']['stance_accuracy']:.2f}; wrote {out}"
    )


def _has_store(app: App) -> bool:
    from store.db import sqlite_path

    path = sqlite_path(app.db_url)
    return path is None or path.exists()
