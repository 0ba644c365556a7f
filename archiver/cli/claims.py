"""Commands about the claims: claims list|show|match, flags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from rich.text import Text

from archiver.cli.base import (
    JSON_LINES,
    LIMIT,
    SINCE,
    SOURCE,
    App,
    cli,
    emit_json,
    make_console,
    note_limit,
    parse_since,
    when,
)
from archiver.errors import UsageError
from archiver.render import (
    terminal_safe,
)
from archiver.seeds import default_seeds_dir
from store.models import StoredFlag

if TYPE_CHECKING:
    from archiver.claims import Claim

# -- claims and flags -------------------------------------------------------------

_CLAIMS_FILE = click.option(
    "--claims",
    "claims_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use this claims file instead of the claims stored by 'init'.",
)


def _claims(app: App, claims_file: Path | None) -> list[Claim]:
    from archiver.claims import claim_from_dict  # the stemmers load only when needed
    from archiver.claimsfile import load_claims

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
            when(r["latest"]),
            terminal_safe(r["en"]),
        )
    make_console().print(table)


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
    console = make_console()
    console.print(Text(terminal_safe(claim.id), style="bold"))
    console.print(terminal_safe(f"{claim.en}\n{claim.ar}"))
    if not found:
        console.print("no evidence yet")
    for f in found:
        console.print(
            f"\n{when(f.created_at)}  {f.stance} ({f.score:.2f})  "
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
        seeds_dir = default_seeds_dir(app.config.seeds)
        if seeds_dir is None or not (seeds_dir / "claims.yaml").exists():
            raise UsageError("no claims file found; pass --claims FILE")
        claims_file = seeds_dir / "claims.yaml"
    from archiver.claims import MatchOptions, match
    from archiver.claimsfile import load_claims

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
@LIMIT
@JSON_LINES
@click.pass_obj
def flags_cmd(
    app: App,
    claim_id: str | None,
    stance: str | None,
    since: str | None,
    min_score: float,
    source_ref: str | None,
    limit: int,
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
        limit or None,
    )
    if as_json:
        emit_json(flag_row(f) for f in found)
        note_limit(len(found), limit)
        return
    table = Table("when", "claim", "stance", "score", "source", "evidence")
    for f in found:
        table.add_row(
            when(f.created_at),
            f.claim_id,
            f.stance,
            f"{f.score:.2f}",
            terminal_safe(f"{f.source_name} v{f.version}"),
            terminal_safe(f.evidence),
        )
    make_console().print(table)
    note_limit(len(found), limit)
